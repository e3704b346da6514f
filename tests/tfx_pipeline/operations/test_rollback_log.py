"""Following the serving directory's rollback log: each rollback becomes one event, once."""

import json

from serving import rollback
from tfx_pipeline.notifications import events
from tfx_pipeline.operations import rollback_log


def served_versions(model_dir, *versions):
    for version in versions:
        (model_dir / str(version) / "variables").mkdir(parents=True)
        (model_dir / str(version) / "saved_model.pb").write_bytes(b"graph")


def test_only_rollbacks_after_the_first_look_are_events_and_each_only_once(tmp_path):
    model_dir, state_dir = tmp_path / "serving" / "taxi", tmp_path / "outputs" / "notifications"
    served_versions(model_dir, 1, 2, 3)
    rollback.rollback(str(model_dir), reason="before notifications were set up")
    follower = rollback_log.RollbackLogFollower(model_dir, state_dir)
    assert follower.new_events() == []  # history is not news
    rollback.rollback(str(model_dir), reason="AUC dropped on the Cash slice")
    (event,) = follower.new_events()
    assert event.kind == events.ROLLBACK
    assert event.title == "rolled back to version 1 (from 2): AUC dropped on the Cash slice"
    assert (event.details["from_version"], event.details["to_version"]) == (2, 1)
    assert event.details["model_dir"] == str(model_dir)
    assert follower.new_events() == []
    # A restarted loop (a new follower on the same state) does not send it again.
    assert rollback_log.RollbackLogFollower(model_dir, state_dir).new_events() == []


def test_a_line_still_being_written_waits_for_its_newline(tmp_path):
    model_dir, state_dir = tmp_path / "taxi", tmp_path / "state"
    model_dir.mkdir()
    follower = rollback_log.RollbackLogFollower(model_dir, state_dir)
    assert follower.new_events() == []  # no log yet: every line to come is news
    record = {"to_version": 4, "from_version": 5, "reason": "r", "moved_aside": [5]}
    line = json.dumps(record)
    log = model_dir / rollback_log.LOG_NAME
    log.write_text(line[:10])
    assert follower.new_events() == []
    log.write_text(line + "\n")
    assert [e.details["to_version"] for e in follower.new_events()] == [4]


def test_a_replaced_log_is_read_from_its_start_and_a_bad_line_still_tells(tmp_path):
    model_dir, state_dir = tmp_path / "taxi", tmp_path / "state"
    model_dir.mkdir()
    log = model_dir / rollback_log.LOG_NAME
    log.write_text('{"to_version": 1}\n{"to_version": 2}\n')
    follower = rollback_log.RollbackLogFollower(model_dir, state_dir)
    assert follower.new_events() == []
    log.write_text("not json\n")
    (event,) = follower.new_events()
    assert event.kind == events.ROLLBACK
    assert "not readable" in event.title and event.details["line"] == "not json"


def test_an_unreadable_state_file_starts_afresh(tmp_path):
    model_dir, state_dir = tmp_path / "taxi", tmp_path / "state"
    model_dir.mkdir()
    (model_dir / rollback_log.LOG_NAME).write_text('{"to_version": 1}\n')
    state_dir.mkdir()
    (state_dir / rollback_log.STATE_NAME).write_text("{broken")
    follower = rollback_log.RollbackLogFollower(model_dir, state_dir)
    assert follower.new_events() == []
    assert json.loads((state_dir / rollback_log.STATE_NAME).read_text()) == {
        str(model_dir.resolve()): 1
    }

"""The watch loop's parts: the run lock, span and trigger detection, flags and honest run lines."""

import json
import subprocess
import sys
import textwrap

import pytest

import local_runner
from serving import rollback
from tfx_pipeline import layout
from tfx_pipeline.notifications import config as notifications_config
from tfx_pipeline.notifications.notifier import Notifier
from tfx_pipeline.operations import output_lock, watch
from tfx_pipeline.problems import EXIT_USAGE


def test_a_second_run_on_the_same_output_dir_is_refused_until_the_first_ends(tmp_path):
    first = output_lock.OutputDirLock(tmp_path)
    first.acquire()
    with pytest.raises(output_lock.OutputDirLocked, match=rf"process \d+\) is using {tmp_path}"):
        output_lock.OutputDirLock(tmp_path).acquire()
    first.release()
    again = output_lock.OutputDirLock(tmp_path)
    again.acquire()
    again.release()


def test_a_run_started_by_the_lock_holder_proceeds_and_a_stranger_does_not(tmp_path):
    lock = output_lock.OutputDirLock(tmp_path)
    lock.acquire()
    child = textwrap.dedent(
        f"""
        import pathlib
        from tfx_pipeline.operations import output_lock
        try:
            output_lock.OutputDirLock(pathlib.Path({str(tmp_path)!r})).acquire()
            print("acquired")
        except output_lock.OutputDirLocked:
            print("locked")
        """
    )
    # Started by this process (the holder): proceeds, as a run under --watch does.
    direct = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    # Started by another process (a shell in between): refused.
    indirect = subprocess.run(
        ["/bin/sh", "-c", f'"{sys.executable}" -c "$0"; true', child],
        capture_output=True,
        text=True,
    )
    lock.release()
    assert direct.stdout.strip() == "acquired", direct.stderr
    assert indirect.stdout.strip() == "locked", indirect.stderr


def test_local_runner_refuses_to_run_while_the_output_dir_is_locked(tmp_path, capsys):
    lock = output_lock.OutputDirLock(tmp_path / "outputs")
    lock.acquire()
    try:
        code = local_runner.main(["--output-dir", str(tmp_path / "outputs")])
    finally:
        lock.release()
    assert code == EXIT_USAGE
    assert "another pipeline run" in capsys.readouterr().err


def test_latest_span_ignores_other_folders_and_files(tmp_path):
    assert layout.latest_span_number(tmp_path / "missing") is None
    for name in ("span-2", "span-10", ".span-11", "span-x"):
        (tmp_path / name).mkdir()
    (tmp_path / "span-12").write_text("a file, not a span")
    assert layout.latest_span_number(tmp_path) == 10


def test_triggers_are_consumed_once_and_name_their_features(tmp_path):
    folder = layout.OutputLayout(tmp_path).triggers_dir
    folder.mkdir(parents=True)
    (folder / "1.json").write_text(json.dumps({"features_moved": ["fare"]}))
    (folder / "2.json").write_text(
        json.dumps({"features_moved": ["payment_type"], "schema_anomalies": ["payment_type"]})
    )
    (folder / ".3.json.partial").write_text("{")
    found = watch.pending_triggers(tmp_path)
    assert [p.name for p in found] == ["1.json", "2.json"]
    assert watch.consume(found) == ["fare", "payment_type"]
    assert watch.pending_triggers(tmp_path) == []
    assert sorted(p.name for p in (folder / watch.CONSUMED).iterdir()) == ["1.json", "2.json"]


def test_runner_argv_drops_only_the_watch_flags():
    argv = ["--watch", "--watch-interval", "5", "--train-steps", "10", "--max-runs=2", "--tune"]
    assert watch.runner_argv(argv) == ["--train-steps", "10", "--tune"]
    # Each run notifies its own outcome with the loop's notifications file.
    argv = ["--watch", "--notifications", "n.json", "--max-runs", "1"]
    assert watch.runner_argv(argv) == ["--notifications", "n.json"]


def watch_one_cycle(tmp_path, config) -> list[str]:
    """Runs the loop for one cycle with nothing to train on; returns the lines it printed."""
    (tmp_path / "data").mkdir(exist_ok=True)
    settings = watch.WatchSettings(
        runner=tmp_path / "never_run.py",
        argv=[],
        data_root=tmp_path / "data",
        output_dir=tmp_path / "outputs",
        model_dir=tmp_path / "serving" / "taxi",
        interval_seconds=0.1,
        max_runs=0,
        notifications=config,
    )
    lines = []

    def print_and_stop_after_the_cycle(line: str) -> None:
        lines.append(line)
        if "nothing new" in line:
            watcher.stop()

    notifier = Notifier(config, pipeline="taxi")
    watcher = watch.Watcher(settings, print_and_stop_after_the_cycle, notifier=notifier)
    assert watcher.run() == 0
    notifier.close()
    return lines


def test_each_cycle_notifies_the_rollbacks_logged_since_the_last_one_once(tmp_path):
    model_dir = tmp_path / "serving" / "taxi"
    for version in (1, 2, 3):
        (model_dir / str(version)).mkdir(parents=True)
    rollback.rollback(str(model_dir), reason="an old rollback, before notifications")
    (tmp_path / "notifications.json").write_text(
        json.dumps(
            {
                "sinks": {"audit": {"type": "jsonl", "path": "audit.jsonl"}},
                "events": {"rollback": ["audit"]},
            }
        )
    )
    config = notifications_config.read_config(tmp_path / "notifications.json")
    audit = tmp_path / "audit.jsonl"

    watch_one_cycle(tmp_path, config)
    assert not audit.exists(), "a rollback from before notifications is not news"
    rollback.rollback(str(model_dir), reason="AUC dropped on the Cash slice")
    lines = watch_one_cycle(tmp_path, config)
    (record,) = [json.loads(line) for line in audit.read_text().splitlines()]
    assert (record["event"], record["details"]["to_version"]) == ("rollback", 1)
    assert record["details"]["reason"] == "AUC dropped on the Cash slice"
    assert any("rollback logged: rolled back to version 1 (from 2)" in line for line in lines)
    watch_one_cycle(tmp_path, config)
    assert len(audit.read_text().splitlines()) == 1, "each rollback is notified once"


@pytest.mark.parametrize(
    "code, before, after, new_data, expected",
    [
        (0, [1], [1, 2], True, "pushed version 2 (the server picks it up at its next poll)"),
        (
            0,
            [1],
            [1],
            False,
            "model unchanged (cached or identical), still serving version 1; no new span, so "
            "retraining had no new data to learn from",
        ),
        (3, [1], [1], True, "new model not blessed, nothing pushed; still serving version 1"),
        (1, [], [], True, "run failed (exit 1, see the run output); still nothing served yet"),
    ],
)
def test_each_run_line_says_what_the_run_did(code, before, after, new_data, expected):
    assert watch.describe_run(code, before, after, new_data) == expected


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--watch-interval", "0"], "must be at least 0.1"),
        (["--max-runs", "-1"], "must be at least 0"),
    ],
)
def test_bad_watch_flags_exit_2(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        local_runner.main(["--watch", *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_watch_flags_without_watch_are_refused(capsys):
    assert local_runner.main(["--max-runs", "2"]) == EXIT_USAGE
    assert local_runner.main(["--watch-interval", "5"]) == EXIT_USAGE
    assert "--watch-interval and --max-runs only apply with --watch" in capsys.readouterr().err


def test_the_runs_live_quality_line_follows_its_run_line(tmp_path):
    (tmp_path / "data" / "span-4").mkdir(parents=True)
    runner = tmp_path / "runner.py"
    runner.write_text(
        "print('Summary (run took 80 s)')\n"
        "print('Live:            version 7 on span 4 (614 rows): AUC 0.9000 [0.8800, 0.9200]')\n"
        "print('Blessed:         yes, every threshold passed')\n"
    )
    settings = watch.WatchSettings(
        runner=runner,
        argv=[],
        data_root=tmp_path / "data",
        output_dir=tmp_path / "outputs",
        model_dir=tmp_path / "serving" / "taxi",
        interval_seconds=0.1,
        max_runs=1,
    )
    lines = []
    assert watch.Watcher(settings, lines.append).run() == 0
    ran = next(index for index, line in enumerate(lines) if "ran the pipeline" in line)
    assert lines[ran + 1].endswith(
        "cycle 1: Live: version 7 on span 4 (614 rows): AUC 0.9000 [0.8800, 0.9200]"
    )

"""Notifier: per-event routing, delivery in the background, and a sink that is down or silent.

Timings are only generous upper bounds proving that nothing waits on a sink beyond its bound.
"""

import json
import logging
import time

import pytest

from tests.tfx_pipeline.notifications.conftest import make_config, webhook
from tfx_pipeline.notifications import events
from tfx_pipeline.notifications.config import NotificationConfig
from tfx_pipeline.notifications.notifier import (
    FAILURE_RECORD,
    NOTIFICATION_RECORD,
    Notifier,
    describe_outcomes,
)


def jsonl_records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_each_event_goes_only_to_its_sinks(tmp_path, receiver):
    config = make_config(
        tmp_path,
        sinks={"chat": webhook(receiver.url), "audit": {"type": "jsonl", "path": "audit.jsonl"}},
        events={"pushed": ["chat", "audit"], "run_failed": ["audit"], "rollback": []},
    )
    with Notifier(config, pipeline="taxi") as notifier:
        notifier.notify(events.PUSHED, "version 7 pushed", {"version": 7}, run_id="r7")
        notifier.notify(events.RUN_FAILED, "run failed at Trainer", {"node": "Trainer"})
        notifier.notify(events.ROLLBACK, "rolled back to version 6")
        notifier.notify(events.NOT_BLESSED, "new model not blessed")
    assert [b["event"] for b in receiver.bodies()] == ["pushed"]
    assert all(r["valid"] for r in receiver.requests)
    records = jsonl_records(tmp_path / "audit.jsonl")
    assert [(r["record"], r["event"]) for r in records] == [
        (NOTIFICATION_RECORD, "pushed"),
        (NOTIFICATION_RECORD, "run_failed"),
    ]
    # The file and the webhook get the same event.
    assert {k: v for k, v in records[0].items() if k != "record"} == receiver.bodies()[0]
    assert describe_outcomes(notifier.outcomes) == [
        "pushed -> audit: written; chat: delivered",
        "run_failed -> audit: written",
    ]


def test_no_file_means_no_notifications_and_no_thread(tmp_path):
    notifier = Notifier(NotificationConfig(), pipeline="taxi")
    notifier.notify(events.RUN_FAILED, "run failed")
    assert notifier.close() == []
    assert notifier._thread is None


def test_a_sink_that_is_down_never_blocks_or_raises_and_is_recorded(
    tmp_path, secret_env, refused_url, caplog
):
    config = make_config(
        tmp_path,
        sinks={
            "chat": webhook(refused_url, attempts=3, backoff_seconds=0.05),
            "audit": {"type": "jsonl", "path": "audit.jsonl"},
        },
        events={"pushed": ["chat"], "run_failed": ["chat", "audit"]},
    )
    notifier = Notifier(config, pipeline="taxi")
    started = time.monotonic()
    notifier.notify(events.PUSHED, "version 7 pushed")
    notifier.notify(events.RUN_FAILED, "run failed at Trainer")
    assert time.monotonic() - started < 2, "notify must not wait for the webhook"
    with caplog.at_level(logging.WARNING):
        outcomes = notifier.close(timeout=20)
    assert time.monotonic() - started < 20
    failed = [o for o in outcomes if not o.ok]
    assert [(o.event, o.sink) for o in failed] == [("pushed", "chat"), ("run_failed", "chat")]
    assert all("after 3 attempts: cannot connect" in o.detail for o in failed)
    records = jsonl_records(tmp_path / "audit.jsonl")
    # Failed deliveries go to every JSONL sink, also for events not routed to it (pushed).
    failures = [r for r in records if r["record"] == FAILURE_RECORD]
    assert [(r["sink"], r["notification"]["event"], r["attempts"]) for r in failures] == [
        ("chat", "pushed", 3),
        ("chat", "run_failed", 3),
    ]
    assert "cannot connect" in failures[0]["error"]
    assert "notification pushed to webhook chat (http://127.0.0.1:" in caplog.text


def test_a_silent_sink_is_given_up_at_close_within_the_bound(tmp_path, secret_env, silent_listener):
    silent_url = f"http://127.0.0.1:{silent_listener.getsockname()[1]}/hook"
    config = make_config(
        tmp_path,
        sinks={
            "chat": webhook(silent_url, timeout_seconds=60, attempts=3),
            "audit": {"type": "jsonl", "path": "audit.jsonl"},
        },
        events={"pushed": ["chat"], "not_blessed": ["chat"]},
        exit_wait_seconds=0.5,
    )
    notifier = Notifier(config, pipeline="taxi")
    started = time.monotonic()
    notifier.notify(events.PUSHED, "version 7 pushed")
    notifier.notify(events.NOT_BLESSED, "new model not blessed")
    outcomes = notifier.close()
    assert time.monotonic() - started < 15, "close must give up after exit_wait_seconds"
    assert [(o.event, o.ok) for o in outcomes] == [("pushed", False), ("not_blessed", False)]
    assert all("not delivered within the 0.5 s" in o.detail for o in outcomes)
    failures = jsonl_records(tmp_path / "audit.jsonl")
    assert [r["notification"]["event"] for r in failures] == ["pushed", "not_blessed"]
    # The delivery that was in flight ends (connection reset), is not retried after close()
    # gave up, and is not recorded a second time.
    silent_listener.close()
    notifier._thread.join(timeout=30)
    assert not notifier._thread.is_alive()
    assert len(notifier.outcomes) == 2
    assert len(jsonl_records(tmp_path / "audit.jsonl")) == 2


def test_an_unwritable_jsonl_file_is_an_outcome_not_an_error(tmp_path, caplog):
    (tmp_path / "blocked").write_text("a file where a folder should be")
    config = make_config(
        tmp_path,
        sinks={"audit": {"type": "jsonl", "path": "blocked/audit.jsonl"}},
        events={"pushed": ["audit"]},
    )
    with caplog.at_level(logging.WARNING), Notifier(config, pipeline="taxi") as notifier:
        notifier.notify(events.PUSHED, "version 7 pushed")
    (outcome,) = notifier.outcomes
    assert not outcome.ok and outcome.detail.startswith("not written:")
    assert "notification pushed not written to" in caplog.text


def test_notify_after_close_is_dropped_with_a_warning(tmp_path, receiver, caplog):
    config = make_config(tmp_path, {"chat": webhook(receiver.url)}, {"pushed": ["chat"]})
    notifier = Notifier(config, pipeline="taxi")
    notifier.close()
    with caplog.at_level(logging.WARNING):
        notifier.notify(events.PUSHED, "late")
    assert "dropped: the notifier is closed" in caplog.text
    assert receiver.requests == []


def test_an_unknown_kind_is_refused_before_anything_is_sent(tmp_path, receiver):
    config = make_config(tmp_path, {"chat": webhook(receiver.url)}, {"pushed": ["chat"]})
    with Notifier(config, pipeline="taxi") as notifier, pytest.raises(ValueError):
        notifier.notify("pushd", "typo")
    assert receiver.requests == []

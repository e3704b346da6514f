"""The notifications file: a good one read whole, a bad one refused naming every problem."""

import json

import pytest

from tests.tfx_pipeline.notifications.conftest import make_config, webhook
from tests.webhook_receiver import OPERATIONS_DOC, SECRET, SECRET_ENV
from tfx_pipeline.notifications import config as config_lib
from tfx_pipeline.notifications import events
from tfx_pipeline.problems import ConfigProblems


def test_a_good_file_gives_sinks_routes_defaults_and_the_secret(tmp_path, secret_env):
    config = make_config(
        tmp_path,
        sinks={
            "chat": webhook("https://hooks.example.com/services/x", attempts=2),
            "audit": {"type": "jsonl", "path": "logs/notifications.jsonl"},
        },
        events={"pushed": ["chat", "audit"], "run_failed": ["audit"]},
    )
    chat, audit = config.sinks["chat"], config.sinks["audit"]
    assert isinstance(chat, config_lib.WebhookSink) and isinstance(audit, config_lib.JsonlSink)
    assert (chat.secret, chat.attempts, chat.timeout_seconds, chat.backoff_seconds) == (
        SECRET.encode(),
        2,
        config_lib.TIMEOUT_SECONDS[0],
        config_lib.BACKOFF_SECONDS[0],
    )
    # Relative to the file's folder, whatever the working directory.
    assert audit.path == tmp_path.resolve() / "logs" / "notifications.jsonl"
    assert [s.name for s in config.sinks_for(events.PUSHED)] == ["chat", "audit"]
    assert [s.name for s in config.sinks_for(events.RUN_FAILED)] == ["audit"]
    assert config.sinks_for(events.ROLLBACK) == []
    assert config.exit_wait_seconds == config_lib.EXIT_WAIT_SECONDS[0]
    # The secret never shows in a repr (tracebacks, logs).
    assert SECRET not in repr(config)


def test_every_problem_is_named_at_once(tmp_path, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    path = tmp_path / "notifications.json"
    path.write_text(
        json.dumps(
            {
                "sinks": {
                    "chat": {
                        "type": "webhook",
                        "url": "ftp://hooks.example.com/secret-path",
                        "secret_env": SECRET_ENV,
                        "attempts": 0,
                        "timeout_seconds": "5",
                        "backoff_seconds": -1,
                        "colour": "red",
                    },
                    "pager": {"type": "sms"},
                    "audit": {"type": "jsonl"},
                },
                "events": {"pushed": ["chat", "nowhere"], "model_exploded": ["chat"]},
                "exit_wait_seconds": 1e9,
                "retries": 3,
            }
        )
    )
    with pytest.raises(ConfigProblems) as raised:
        config_lib.read_config(path)
    text = "\n".join(raised.value.problems)
    for expected in (
        "unknown keys ['retries']",
        "sink 'chat': unknown keys ['colour']",
        "sink 'chat': url must be an http:// or https:// URL",
        f"environment variable {SECRET_ENV} (secret_env",
        "sink 'chat': attempts must be within [1, 10], got 0",
        "sink 'chat': timeout_seconds must be a number, got '5'",
        "sink 'chat': backoff_seconds must be within [0, 60], got -1",
        "sink 'pager': type must be one of ['jsonl', 'webhook'], got 'sms'",
        "sink 'audit': missing path",
        "event 'pushed': no sink named 'nowhere'",
        "unknown event 'model_exploded'; known events: run_failed, data_refused",
        "exit_wait_seconds must be within [0, 300]",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"
    assert all(p.startswith(f"notifications file {path}: ") for p in raised.value.problems)
    # A Slack webhook's path is its secret: the refusal does not repeat it.
    assert "secret-path" not in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("{not json", "is not JSON"),
        ("[]", "must be a JSON object"),
        ("{}", "'sinks' is missing"),
    ],
)
def test_an_unusable_file_is_refused(tmp_path, content, message):
    path = tmp_path / "notifications.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigProblems, match=message):
        config_lib.read_config(path)


def test_a_whole_number_is_required_for_attempts_and_a_jsonl_path_is_a_file(tmp_path, secret_env):
    (tmp_path / "folder").mkdir()
    with pytest.raises(ConfigProblems) as raised:
        make_config(
            tmp_path,
            sinks={
                "chat": webhook("http://localhost:9/x", attempts=2.5),
                "audit": {"type": "jsonl", "path": "folder"},
            },
            events={},
        )
    text = "; ".join(raised.value.problems)
    assert "attempts must be a whole number, got 2.5" in text
    assert "is a folder; name a file" in text


def test_every_event_kind_is_documented_with_live_quality_drop_among_them():
    assert events.LIVE_QUALITY_DROP in events.EVENT_KINDS
    documented = OPERATIONS_DOC.read_text()
    for kind in events.EVENT_KINDS:
        assert f"| `{kind}` |" in documented, kind


def test_an_unknown_event_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown notification event 'pushd'"):
        events.Event("pushd", "typo")

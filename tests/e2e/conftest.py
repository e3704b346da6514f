"""The e2e runs notify a local webhook receiver that checks every signature, and a JSONL file.

One receiver for the whole session: each run passes `--notifications` with the file this fixture
writes (every event kind to both sinks), and each test checks the events of its own run.
"""

import json
import os

import pytest

from tests.webhook_receiver import SECRET, SECRET_ENV, Receiver
from tfx_pipeline.notifications import events


class NotificationSink:
    """The receiver, the notifications file routing every event to it, and the JSONL sink."""

    def __init__(self, folder) -> None:
        self.receiver = Receiver(SECRET.encode())
        self.jsonl = folder / "notifications.jsonl"
        self.config = folder / "notifications.json"
        sinks = {
            "receiver": {"type": "webhook", "url": self.receiver.url, "secret_env": SECRET_ENV},
            "file": {"type": "jsonl", "path": str(self.jsonl)},
        }
        self.config.write_text(
            json.dumps(
                {
                    "sinks": sinks,
                    "events": {kind: ["receiver", "file"] for kind in events.EVENT_KINDS},
                }
            )
        )

    def flags(self) -> list[str]:
        return ["--notifications", str(self.config)]

    def received(self, kind: str) -> list[dict]:
        """Bodies of `kind` the receiver took, each with a valid signature (asserted)."""
        found = []
        for request in list(self.receiver.requests):
            body = json.loads(request["body"])
            if body.get("event") == kind:
                assert request["valid"], f"bad signature on a {kind} notification: {request}"
                found.append(body)
        return found


@pytest.fixture(scope="session")
def notification_sink(tmp_path_factory):
    previous = os.environ.get(SECRET_ENV)
    os.environ[SECRET_ENV] = SECRET
    sink = NotificationSink(tmp_path_factory.mktemp("notifications"))
    yield sink
    sink.receiver.close()
    if previous is None:
        os.environ.pop(SECRET_ENV, None)
    else:
        os.environ[SECRET_ENV] = previous

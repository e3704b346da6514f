"""Fixtures of the notification tests: the receiver (tests/webhook_receiver.py), config helpers."""

import json
import socket
from collections.abc import Iterator

import pytest

from tests.webhook_receiver import SECRET, SECRET_ENV, Receiver
from tfx_pipeline.notifications import config as config_lib


@pytest.fixture
def secret_env(monkeypatch) -> str:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return SECRET_ENV


@pytest.fixture
def receiver(secret_env) -> Iterator[Receiver]:
    server = Receiver(SECRET.encode())
    yield server
    server.close()


@pytest.fixture
def refused_url() -> str:
    """A local port nothing listens on: every connection is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def silent_listener() -> Iterator[socket.socket]:
    """A local socket that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener


def make_config(tmp_path, sinks: dict, events: dict, **top) -> config_lib.NotificationConfig:
    """Writes a notifications file under tmp_path and reads it back with read_config."""
    path = tmp_path / "notifications.json"
    path.write_text(json.dumps({"sinks": sinks, "events": events, **top}))
    return config_lib.read_config(path)


def webhook(url: str, **settings) -> dict:
    return {"type": "webhook", "url": url, "secret_env": SECRET_ENV, **settings}

"""Fixtures: tiny SavedModels on disk and a running ModelServer (REST and gRPC) on loopback."""

import http.client as http_client
import json

import pytest

from serving.app import ServerSettings
from serving.server import ModelServer
from serving.versions import ModelSpec, VersionPolicy
from tests.serving.tiny_models import save_classifier, save_tiny


@pytest.fixture(scope="session")
def model_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    save_tiny(str(root / "tiny"), 1, scale=2.0)
    save_tiny(str(root / "tiny"), 2, scale=3.0)
    save_classifier(str(root / "classifier"), 1)
    return root


@pytest.fixture(scope="session")
def server(model_root):
    specs = [
        ModelSpec(
            name="tiny",
            base_path=str(model_root / "tiny"),
            policy=VersionPolicy.ALL,
            labels=(("stable", 1), ("canary", 2)),
        ),
        ModelSpec(name="classifier", base_path=str(model_root / "classifier")),
    ]
    settings = ServerSettings(max_request_bytes=64 * 1024)
    with ModelServer(
        specs, port=0, grpc_port=0, settings=settings, poll_seconds=0, access_log=False
    ) as running:
        yield running


class Http:
    """Raw HTTP calls, so tests see TF Serving's exact status, headers and bytes."""

    def __init__(self, port: int) -> None:
        self.port = port

    def call(self, method: str, path: str, body: bytes | str | None = None, headers=None):
        connection = http_client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        if isinstance(body, str):
            body = body.encode()
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, dict(response.getheaders()), data

    def json(self, method: str, path: str, body=None):
        payload = (
            None if body is None else (body if isinstance(body, str | bytes) else json.dumps(body))
        )
        status, _, data = self.call(method, path, payload)
        return status, json.loads(data) if data else None


@pytest.fixture(scope="session")
def http(server):
    return Http(server.port)

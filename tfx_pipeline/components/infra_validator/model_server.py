"""A model server in a child process: TF Serving's `tensorflow_model_server` or our `python -m serving`.

Both take the same flags (ports, a ModelServerConfig file, the poll interval), so one command line
serves either. The server listens on free loopback ports, its output goes to a log file, and
`wait_until_available` answers from TF Serving's ModelService: every model AVAILABLE, or the
server's own error for the one that failed to load.
"""

import dataclasses
import os
import socket
import subprocess
import sys
import time

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from tfx_pipeline.components.infra_validator.servers import (
    TF_SERVING_BINARY,
    ServerError,
    ServerExited,
)

# ModelVersionStatus.State values (get_model_status.proto).
AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.END
POLL_SECONDS = 0.25
# gRPC backs a channel off after each refused connection (1 s, 1.6 s, 2.6 s, ... by default), so
# polling a server that is still importing TensorFlow learned of its readiness up to 16 s late.
# Retrying the connection at the poll interval keeps the wait as long as the server's start-up.
POLL_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", int(POLL_SECONDS * 1000)),
    ("grpc.min_reconnect_backoff_ms", int(POLL_SECONDS * 1000)),
    ("grpc.max_reconnect_backoff_ms", int(POLL_SECONDS * 1000)),
]
LOG_FILE = "model_server.log"
LOG_TAIL_LINES = 20


@dataclasses.dataclass(frozen=True)
class ServedModel:
    """One model of the server's ModelServerConfig: its name and base path of version folders."""

    name: str
    base_path: str


def model_config_text(models: list[ServedModel]) -> str:
    """A ModelServerConfig text proto serving each model's latest version."""
    entries = "".join(
        f'  config {{ name: "{model.name}" base_path: "{model.base_path}" '
        f'model_platform: "tensorflow" }}\n'
        for model in models
    )
    return f"model_config_list {{\n{entries}}}\n"


def free_port() -> int:
    """A loopback port nothing listens on now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_command(server: str, grpc_port: int, rest_port: int, config_file: str) -> list[str]:
    """The command line: the same tensorflow_model_server flags for both servers."""
    program = (
        [TF_SERVING_BINARY] if server == TF_SERVING_BINARY else [sys.executable, "-m", "serving"]
    )
    return [
        *program,
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        f"--model_config_file={config_file}",
        # The versions are in place before the server starts: one look is enough.
        "--file_system_poll_wait_seconds=0",
    ]


class ModelServer:
    """A started server process; use as a context manager so it is always stopped."""

    def __init__(self, server: str, models: list[ServedModel], work_dir: str):
        self.server = server
        self.models = models
        self.grpc_port = free_port()
        self.rest_port = free_port()
        self.log_path = os.path.join(work_dir, LOG_FILE)
        config_file = os.path.join(work_dir, "models.config")
        with open(config_file, "w") as handle:
            handle.write(model_config_text(models))
        self.command = server_command(server, self.grpc_port, self.rest_port, config_file)
        self._process: subprocess.Popen | None = None
        self._log = None

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def __enter__(self) -> "ModelServer":
        self._log = open(self.log_path, "ab")
        self._log.write(f"$ {' '.join(self.command)}\n".encode())
        self._log.flush()
        try:
            self._process = subprocess.Popen(
                self.command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        except OSError as error:
            self._log.close()
            self._log = None
            raise ServerExited(f"cannot start {self.command[0]}: {error}") from error
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines the server printed."""
        if not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:]).rstrip()

    def wait_until_available(self, timeout_seconds: float) -> float:
        """Seconds until every model's latest version is AVAILABLE.

        Raises:
          ServerError: the server exited, a version failed to load (with the server's message),
            or `timeout_seconds` passed first.
        """
        started = time.monotonic()
        deadline = started + timeout_seconds
        waiting = [model.name for model in self.models]
        with grpc.insecure_channel(self.grpc_target, options=POLL_CHANNEL_OPTIONS) as channel:
            stub = model_service_pb2_grpc.ModelServiceStub(channel)
            while waiting:
                if self._process is None or self._process.poll() is not None:
                    code = None if self._process is None else self._process.returncode
                    raise ServerExited(
                        f"the model server exited (status {code}) before "
                        f"{', '.join(waiting)} became AVAILABLE"
                    )
                for name in list(waiting):
                    if self._model_is_available(stub, name):
                        waiting.remove(name)
                if waiting and time.monotonic() > deadline:
                    raise ServerError(
                        f"{', '.join(waiting)} did not become AVAILABLE within "
                        f"{timeout_seconds:g} s"
                    )
                if waiting:
                    time.sleep(POLL_SECONDS)
        return time.monotonic() - started

    @staticmethod
    def _model_is_available(stub: model_service_pb2_grpc.ModelServiceStub, name: str) -> bool:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        try:
            response = stub.GetModelStatus(request, timeout=5)
        except grpc.RpcError:
            return False  # not listening yet, or the model is not known yet
        for status in response.model_version_status:
            if status.state == AVAILABLE:
                return True
            if status.state == END and status.status.error_code != 0:
                raise ServerError(
                    f"model {name} version {status.version} failed to load: "
                    f"{status.status.error_message}"
                )
        return False

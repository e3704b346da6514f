"""Console and log file for a pipeline run: the person sees progress lines, the file gets everything.

TensorFlow's C++ runtime, Beam and absl write straight to the process's stdout/stderr, so the
redirect happens at the file-descriptor level; subprocesses (Beam workers) inherit it too.
"""

import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from absl import logging as absl_logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The messages TFX's LocalDagRunner logs around every component (tfx 1.16).
_RUNNING_MESSAGE = "Component %s is running."
_FINISHED_MESSAGE = "Component %s is finished."


def quiet_libraries() -> None:
    """For the read-only commands: TensorFlow only reads files there; its notices are noise."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)


class RedirectedOutput:
    """Sends fds 1 and 2 (and Python logging) to `log_path`; `console` still reaches the terminal."""

    def __init__(self, log_path: str):
        self.log_path = log_path
        self.console: TextIO = sys.stdout
        self._saved_fds: list[int] = []
        self._log_file: TextIO | None = None

    def __enter__(self) -> "RedirectedOutput":
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        self._log_file = open(self.log_path, "a", buffering=1)
        self._saved_fds = [os.dup(1), os.dup(2)]
        self.console = os.fdopen(os.dup(self._saved_fds[0]), "w", buffering=1)
        os.dup2(self._log_file.fileno(), 1)
        os.dup2(self._log_file.fileno(), 2)
        root = logging.getLogger()
        root.setLevel(logging.INFO)
        # absl keeps its own verbosity (default WARNING once anything touches it) and some
        # libraries save and restore it around noisy calls; start it at INFO so it returns there.
        absl_logging.set_verbosity(absl_logging.INFO)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in zip((1, 2), self._saved_fds, strict=True):
            os.dup2(saved, fd)
            os.close(saved)
        if self._log_file is not None:
            self._log_file.close()
        self.console.flush()


class ComponentProgress(logging.Handler):
    """Prints one console line per component as the local runner finishes it.

    Args:
      console: where the lines go.
      state_of: returns the MLMD state of a node's newest execution (COMPLETE, CACHED, ...).
      node_ids: the pipeline's node ids, in run order, for the [i/n] counter.
    """

    def __init__(
        self, console: TextIO, state_of: Callable[[str], str], node_ids: list[str]
    ) -> None:
        super().__init__(level=logging.INFO)
        self._console = console
        self._state_of = state_of
        self._node_ids = node_ids
        self._width = max((len(n) for n in node_ids), default=20)
        self.running: str | None = None
        self._started = 0.0
        self.finished: list[tuple[str, str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg not in (_RUNNING_MESSAGE, _FINISHED_MESSAGE) or not record.args:
            return
        node_id = str(record.args[0])
        if record.msg == _RUNNING_MESSAGE:
            self.running, self._started = node_id, time.monotonic()
            return
        seconds = time.monotonic() - self._started
        self.running = None
        try:
            state = self._state_of(node_id)
        except Exception as error:  # noqa: BLE001 - a progress line must never stop the run
            state = f"state unknown ({error})"
        self.finished.append((node_id, state, seconds))
        self.line(node_id, describe_state(node_id, state), seconds)

    def line(self, node_id: str, status: str, seconds: float) -> None:
        position = (
            self._node_ids.index(node_id) + 1 if node_id in self._node_ids else len(self.finished)
        )
        counter = f"[{position:>2}/{len(self._node_ids)}]"
        self._console.write(f"  {counter} {node_id:<{self._width}}  {status:<9}{seconds:7.1f} s\n")
        self._console.flush()

    def fail_running(self) -> str | None:
        """Prints the FAILED line for the component that was running, and returns its id."""
        if self.running is None:
            return None
        node_id, self.running = self.running, None
        self.line(node_id, "FAILED", time.monotonic() - self._started)
        return node_id


def describe_state(node_id: str, state: str) -> str:
    """One word for a node's MLMD state: ran, cached, resolved or FAILED."""
    if state == "COMPLETE" and node_id.endswith("_resolver"):
        return "resolved"
    return {"COMPLETE": "ran", "CACHED": "cached", "FAILED": "FAILED"}.get(state, state.lower())

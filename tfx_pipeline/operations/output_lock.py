"""One pipeline run at a time per output directory: an exclusive lock file held for the run.

A plain `local_runner.py` and a `--watch` loop take the same lock, so two runs never write the
same MLMD database and serving directory at once.
"""

import fcntl
import os
import pathlib

from tfx_pipeline.layout import OutputLayout


class OutputDirLocked(RuntimeError):
    """Another pipeline run holds the output directory."""


class OutputDirLock:
    """An exclusive flock on the output directory's lock file for a run (or a watch loop).

    A run started by a watch loop finds the lock held by its parent process and proceeds: the
    loop holds it on the run's behalf.
    """

    def __init__(self, output_dir: pathlib.Path) -> None:
        self.path = OutputLayout(output_dir).lock_path
        self._handle = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip()
            handle.close()
            if owner and owner == str(os.getppid()):
                return
            raise OutputDirLocked(
                f"another pipeline run (process {owner or '?'}) is using {self.path.parent}; "
                "wait for it to finish, or use another --output-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.truncate(0)
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

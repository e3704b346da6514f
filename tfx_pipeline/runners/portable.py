"""Beam's portability framework on this machine: the Beam components leave the driver as they do on Dataflow.

Dataflow (Runner v2) serializes each Beam pipeline, stages the project's code and runs every
bundle in SDK worker processes that have the project installed. `--beam-runner portable` does
the same here: Beam's PortableRunner with its job service embedded in the driver, and SDK workers
that a worker pool process (`runners/worker_pool.py`) starts per job, in an environment of their
own:

- the project as a wheel built from this checkout (what the pipeline image's `uv pip install .`
  installs), staged with `--extra_package` as `--setup_file` would stage it;
- the pinned stack (this environment's site-packages) and nothing else: not the source tree,
  not the editable install, not the driver's working directory (each worker starts in an empty
  folder), environment variables, imported modules or `__main__`.

So a DoFn that does not pickle, code the wheel does not ship, a global set in the driver or a
path relative to its working directory fails here as it would on Dataflow. Workers still share
this machine's disk: absolute paths the driver can read, they can read too.

Nothing here imports Beam or TensorFlow: the pool loads them in its own process.
"""

import contextlib
import dataclasses
import logging
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import tomllib
import venv
from collections.abc import Iterator

from tfx_pipeline.layout import REPO_ROOT
from tfx_pipeline.problems import ConfigProblems

POOL_MODULE = "tfx_pipeline.runners.worker_pool"
# How long the pool may take to listen (it loads Beam and gRPC), and to stop.
POOL_START_SECONDS = 120.0
POOL_STOP_SECONDS = 15.0
# The pool's log line for each SDK worker it starts.
WORKER_STARTED = "SDK worker process started"
# A worker that dies in its job (killed, out of memory) leaves Beam's embedded job service
# waiting for its data forever: the pool writes what happened to this file in the worker
# environment and sends the driver this signal, whose handler fails the job's component.
WORKER_FAILED_FILE = "worker-failed"
WORKER_FAILED_SIGNAL = signal.SIGUSR1


class WorkerPoolError(Exception):
    """The worker environment could not be built, or the pool did not start."""


@dataclasses.dataclass(frozen=True)
class WorkerPool:
    """A running pool: where it listens, the staged wheel, its log and its process id."""

    address: str
    wheel: pathlib.Path
    log_path: pathlib.Path
    pid: int

    def beam_args(self, workers: int = 1) -> tuple[str, ...]:
        """Beam pipeline args that run every Beam component through this pool.

        Args:
          workers: SDK worker processes per Beam job (the embedded job service's runner reads
            `--direct_num_workers`; `--sdk_worker_parallelism` is for Flink and Spark only).
        """
        return (
            "--runner=PortableRunner",
            "--job_endpoint=embed",
            "--environment_type=EXTERNAL",
            f"--environment_config={self.address}",
            f"--direct_num_workers={workers}",
            # Staged as Dataflow stages --setup_file's package; it also keeps TFX from building
            # a source package of itself before every Beam component (any dependency flag does).
            f"--extra_package={self.wheel}",
            # Dataflow's `pip freeze` of the submitting environment, a diagnostic: ~1 s a job.
            "--experiments=disable_logging_submission_environment",
        )


def check_source_checkout(repo_root: pathlib.Path = REPO_ROOT) -> None:
    """Raises ConfigProblems unless `repo_root` is a source checkout (not an installed copy)."""
    if not (repo_root / "pyproject.toml").is_file():
        raise ConfigProblems(
            [
                f"--beam-runner portable builds the project's wheel from its source checkout, "
                f"and {repo_root} has no pyproject.toml (run local_runner.py from a checkout)"
            ]
        )


def project_sources(repo_root: pathlib.Path = REPO_ROOT) -> list[pathlib.Path]:
    """What the project's wheel is built from: pyproject.toml, its readme, packages and modules."""
    check_source_checkout(repo_root)
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())
    setuptools_config = project["tool"]["setuptools"]
    tops = {name.split(".")[0] for name in setuptools_config["packages"]["find"]["include"]}
    sources = [repo_root / "pyproject.toml", repo_root / project["project"]["readme"]]
    sources += [repo_root / name for name in sorted(tops)]
    sources += [repo_root / f"{name}.py" for name in setuptools_config.get("py-modules", [])]
    return sources


def build_wheel(folder: pathlib.Path, repo_root: pathlib.Path = REPO_ROOT) -> pathlib.Path:
    """The project's wheel, built from a copy of its sources (the checkout gets no build/)."""
    source = folder / "source"
    source.mkdir(parents=True)
    for path in project_sources(repo_root):
        if path.is_dir():
            shutil.copytree(path, source / path.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / path.name)
    backend = tomllib.loads((source / "pyproject.toml").read_text())["build-system"][
        "build-backend"
    ]
    dist = folder / "dist"
    # The PEP 517 hook pip would call, without build isolation: the pinned setuptools is here.
    built = _run(
        [
            sys.executable,
            "-c",
            f"import sys, {backend} as backend; print(backend.build_wheel(sys.argv[1]))",
            str(dist),
        ],
        cwd=source,
        what="building the project's wheel",
    )
    return dist / built.strip().splitlines()[-1]


def make_worker_environment(folder: pathlib.Path, wheel: pathlib.Path) -> pathlib.Path:
    """A throwaway virtual environment: the wheel installed, the pinned stack on its path.

    Returns its Python. The stack's site-packages is added as a plain path entry, so its .pth
    files (the editable install of this checkout among them) are not processed.
    """
    environment = folder / "env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(environment)
    site_packages = pathlib.Path(
        sysconfig.get_path("purelib", vars={"base": environment, "platbase": environment})
    )
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-compile",
            "--disable-pip-version-check",
            "--target",
            str(site_packages),
            str(wheel),
        ],
        cwd=folder,
        what="installing the project's wheel for the workers",
    )
    stack = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_packages / "pinned_stack.pth").write_text("".join(f"{path}\n" for path in stack))
    return environment / "bin" / "python"


def worker_variables(python: pathlib.Path, home: pathlib.Path) -> dict[str, str]:
    """The pool's and workers' whole environment: none of the driver's own variables.

    Not even the pipeline image's TF_USE_LEGACY_KERAS, which only the Tuner and Trainer need:
    Dataflow's default container (the `--setup_file` route) does not set it either.
    """
    variables = {
        "PATH": f"{python.parent}{os.pathsep}{os.defpath}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "1",
    }
    if "TMPDIR" in os.environ:
        variables["TMPDIR"] = os.environ["TMPDIR"]
    return variables


class WorkerPoolProcess:
    """Builds the worker environment, starts the pool, and stops it (with its workers).

    `with WorkerPoolProcess(log_path) as workers:` starts preparing in the background (the
    driver loads TFX meanwhile); `workers.ready()` waits for the pool and returns it. Leaving
    the block, on success, error or Ctrl-C alike, stops the pool's process group and removes
    the environment. The pool also stops by itself once the driver is gone (killed, say).
    """

    def __init__(self, log_path: pathlib.Path, repo_root: pathlib.Path = REPO_ROOT):
        self.log_path = log_path
        self.repo_root = repo_root
        self._folder: pathlib.Path | None = None
        self._process: subprocess.Popen | None = None
        self._pool: WorkerPool | None = None
        self._error: BaseException | None = None
        self._stopping = threading.Event()
        self._previous_handler: object = None
        self._handling = False
        self._armed = False
        self._starting = threading.Thread(target=self._start, name="beam-worker-pool", daemon=True)

    def __enter__(self) -> "WorkerPoolProcess":
        self._folder = pathlib.Path(tempfile.mkdtemp(prefix="beam-workers-"))
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(WORKER_FAILED_SIGNAL, self._worker_failed)
            self._handling = True
        self._starting.start()
        return self

    def _worker_failed(self, signum: int, frame: object) -> None:
        """Fails the job waiting in `failing_jobs()` with the pool's news; else only keeps it."""
        if self._armed:
            self._armed = False
            raise self.failure() or WorkerPoolError(
                f"an SDK worker died in its job; the pool's log: {self.log_path}"
            )

    @contextlib.contextmanager
    def failing_jobs(self) -> Iterator[None]:
        """Within this block, an SDK worker's death fails the driver's waiting Beam job.

        Only within it: the pool's news can also arrive after Beam has failed the job by
        itself (it sometimes notices the closed channel first), while the driver reports.
        """
        self._armed = self._handling
        try:
            yield
        finally:
            self._armed = False

    def failure(self, wait_seconds: float = 0.0) -> WorkerPoolError | None:
        """The pool's news of SDK workers that died in their jobs, if any.

        Args:
          wait_seconds: how long to wait for news. The pool checks its workers every half
            second, so after a job failed, a second or so tells whether a worker died in it.
        """
        assert self._folder is not None
        news = self._folder / WORKER_FAILED_FILE
        deadline = time.monotonic() + wait_seconds
        while not news.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            what = news.read_text()
            news.unlink()  # told once: a later job's failure is its own
        except FileNotFoundError:
            return None
        return WorkerPoolError(f"{what}; the pool's log: {self.log_path}")

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def ready(self) -> WorkerPool:
        """The running pool, once it listens; raises WorkerPoolError if it could not start."""
        self._starting.join()
        if self._error is not None:
            raise self._error
        assert self._pool is not None
        return self._pool

    def _start(self) -> None:
        try:
            self._pool = self._launch()
        except BaseException as error:  # noqa: BLE001 - handed to ready()
            self._error = (
                error
                if isinstance(error, WorkerPoolError)
                else WorkerPoolError(f"the Beam worker pool did not start: {error}")
            )

    def _launch(self) -> WorkerPool:
        assert self._folder is not None
        wheel = build_wheel(self._folder / "build", self.repo_root)
        python = make_worker_environment(self._folder, wheel)
        empty, home = self._folder / "cwd", self._folder / "home"
        for folder in (empty, home):
            folder.mkdir()
        port_file = self._folder / "port"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._stopping.is_set():
            raise WorkerPoolError("stopped before the Beam worker pool started")
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [
                    str(python),
                    "-m",
                    POOL_MODULE,
                    "--port-file",
                    str(port_file),
                    "--work-dir",
                    str(self._folder / "workers"),
                    "--environment",
                    str(self._folder),
                ],
                cwd=empty,
                env=worker_variables(python, home),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: stopping it takes its workers along, and the
                # terminal's Ctrl-C reaches the driver only, which then stops the pool.
                start_new_session=True,
            )
        port = self._wait_for_port(self._process, port_file)
        return WorkerPool(
            address=f"localhost:{port}", wheel=wheel, log_path=self.log_path, pid=self._process.pid
        )

    def _wait_for_port(self, process: subprocess.Popen, port_file: pathlib.Path) -> int:
        deadline = time.monotonic() + POOL_START_SECONDS
        while time.monotonic() < deadline and not self._stopping.is_set():
            if port_file.exists():
                return int(port_file.read_text())
            if process.poll() is not None:
                raise WorkerPoolError(
                    f"the Beam worker pool exited with status {process.returncode} before it "
                    f"listened; its log: {self.log_path}"
                )
            time.sleep(0.1)
        raise WorkerPoolError(
            f"the Beam worker pool did not listen within {POOL_START_SECONDS:.0f} s; its log: "
            f"{self.log_path}"
        )

    def stop(self) -> None:
        """Stops the pool and every worker it started; removes the worker environment."""
        if self._handling:
            # The pool may still report the workers this stop kills.
            signal.signal(WORKER_FAILED_SIGNAL, signal.SIG_IGN)
        self._stopping.set()
        if self._starting.is_alive():
            self._starting.join()
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=POOL_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            except ProcessLookupError:
                pass
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        if self._handling:
            signal.signal(WORKER_FAILED_SIGNAL, self._previous_handler)
            self._handling = False


# After a job failed, how long to wait for the pool's news of a worker that died in it: the pool
# checks its workers every half second.
DEATH_NEWS_SECONDS = 1.5


def failing_jobs(
    workers: "WorkerPoolProcess | None",
) -> contextlib.AbstractContextManager[None]:
    """`workers.failing_jobs()`, or nothing to do without a worker pool (the DirectRunner)."""
    return workers.failing_jobs() if workers is not None else contextlib.nullcontext()


def job_failure(
    error: BaseException, job_errors: "JobErrors", workers: "WorkerPoolProcess | None"
) -> str | None:
    """What a failed Beam job's workers say of it: 'Type: message', or None if nothing.

    An error raised in an SDK worker reaches the driver as the job's failure only: the embedded
    job service logs it (`job_errors`), Dataflow's runner quotes its traceback (`error`). A
    worker that died is the cause of whatever its job then says.
    """
    died = workers.failure(wait_seconds=DEATH_NEWS_SECONDS) if workers is not None else None
    if died is not None:
        return f"{type(died).__name__}: {died}"
    return job_errors.last or worker_error(str(error))


class JobErrors(logging.Handler):
    """Keeps the SDK worker's error of the last Beam job that failed in the embedded job service.

    The PortableRunner raises "Pipeline job-... failed in state FAILED: Error running pipeline.",
    and Dataflow's runner a message whose first line is as bare: the worker's own exception (a
    CSV value that does not parse, naming file and line) is only in the job service's log record.
    Attached to that logger for a run, this hands the exception's line to the console.
    """

    LOGGER = "apache_beam.runners.portability.local_job_service"

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.last = worker_error(str(record.exc_info[1])) or self.last

    def __enter__(self) -> "JobErrors":
        logging.getLogger(self.LOGGER).addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        logging.getLogger(self.LOGGER).removeHandler(self)


# The last line of a Python traceback: the exception's (dotted) class name and its message.
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)(?:: .*)?$")


def worker_error(text: str) -> str | None:
    """The exception line of the last traceback in `text` (a failed job's worker traceback)."""
    if "Traceback (most recent call last)" not in text:
        return None
    lines = [line for line in text.splitlines() if EXCEPTION_LINE.match(line)]
    return lines[-1] if lines else None


def started_workers(log_path: pathlib.Path) -> int:
    """How many SDK worker processes the pool logged starting."""
    if not log_path.exists():
        return 0
    return log_path.read_text(errors="replace").count(WORKER_STARTED)


def _run(command: list[str], cwd: pathlib.Path, what: str) -> str:
    """Runs a preparation step; its stdout, or WorkerPoolError with the end of its output."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise WorkerPoolError(f"{what} failed (status {result.returncode}): {' | '.join(tail)}")
    return result.stdout

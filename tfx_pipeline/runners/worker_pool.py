"""The SDK worker pool of `--beam-runner portable`: one SDK worker process per request, as Beam's container boot starts them.

It runs in the worker environment `runners/portable.py` builds (the pinned stack and the project's
wheel, nothing of the checkout), never in the driver: `python -m tfx_pipeline.runners.worker_pool`.
Beam's job service asks it for workers (Beam's EXTERNAL environment); each worker is
`apache_beam.runners.worker.sdk_worker_main` with the job's pipeline options from the provision
service, as Dataflow's boot runs it. Beam's own `worker_pool_main` starts `python -c SdkHarness`
without the pipeline options, pipes worker stdout into a pipe nobody reads and never reaps its
workers; this one writes their output to its log, reaps them, and exits with its parent.

Beam and gRPC load in `serve`, after the first harness has started booting: loading them first
would keep the first job waiting seconds longer.
"""

import argparse
import concurrent.futures
import json
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
from typing import Any

from tfx_pipeline.runners.portable import (
    WORKER_FAILED_FILE,
    WORKER_FAILED_SIGNAL,
    WORKER_STARTED,
)

_LOGGER = logging.getLogger("worker_pool")


# A booted SDK harness waiting for its job, as a Dataflow worker's harness has booted before
# work arrives: it has loaded Beam's worker and TensorFlow, which every Beam component of this
# pipeline runs (about 10 s of each process's start on 2 cores), and nothing of any job's or of
# the project's code. Its job's boot variables arrive as one JSON line; end of input: none will.
_BOOTED_HARNESS = """
import json, os, sys
from apache_beam.runners.worker import sdk_worker_main
import tensorflow
line = sys.stdin.readline()
if not line:
    sys.exit(0)
os.environ.update(json.loads(line))
os.chdir(os.environ["SEMI_PERSISTENT_DIRECTORY"])
sdk_worker_main.main(sys.argv)
# Its job is over and its logs are sent: skip the interpreter's teardown of TensorFlow (seconds
# of CPU while the next component runs).
os._exit(0)
"""


class WorkerPool:
    """Hands each request a fresh `sdk_worker_main` process; reaps them; stops them on close.

    One booted harness is kept waiting, so a job's worker does not wait for Beam and TensorFlow
    to load.
    """

    def __init__(self, work_dir: pathlib.Path):
        self._work_dir = work_dir
        self._lock = threading.Lock()
        self._workers: dict[int, subprocess.Popen] = {}
        self._started = 0
        self._waiting: subprocess.Popen | None = self._boot()

    def _boot(self) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", _BOOTED_HARNESS], stdin=subprocess.PIPE, text=True
        )

    def StartWorker(self, request: Any, context: object) -> Any:  # noqa: N802 - the Fn API's
        """Hands the job a booted harness (a StartWorkerRequest in, a StartWorkerResponse out)."""
        from apache_beam.portability.api import beam_fn_api_pb2
        from google.protobuf import json_format, text_format

        try:
            info = _provision_info(request.provision_endpoint.url, request.worker_id)
            with self._lock:
                self._started += 1
                number = self._started
                process, self._waiting = self._waiting, None
            if process is None or process.poll() is not None:
                process = self._boot()
            # The boot's contract (Beam's sdks/python/container/boot.go): endpoints, the job's
            # pipeline options and a folder of the worker's own, its working directory.
            folder = self._work_dir / f"worker-{number}"
            folder.mkdir(parents=True)
            assignment = {
                "WORKER_ID": request.worker_id,
                "CONTROL_API_SERVICE_DESCRIPTOR": text_format.MessageToString(
                    request.control_endpoint
                ),
                "LOGGING_API_SERVICE_DESCRIPTOR": text_format.MessageToString(
                    request.logging_endpoint
                ),
                "PIPELINE_OPTIONS": json_format.MessageToJson(info.pipeline_options),
                "RUNNER_CAPABILITIES": " ".join(info.runner_capabilities),
                "SEMI_PERSISTENT_DIRECTORY": str(folder),
            }
            process.stdin.write(json.dumps(assignment) + "\n")
            process.stdin.close()
            with self._lock:
                self._workers[number] = process
                if self._waiting is None:
                    self._waiting = self._boot()
            _LOGGER.info(
                "%s: %d (job's %s), pid %d", WORKER_STARTED, number, request.worker_id, process.pid
            )
            return beam_fn_api_pb2.StartWorkerResponse()
        except Exception as error:  # noqa: BLE001 - returned to the job service, which fails the job
            _LOGGER.exception("could not start an SDK worker")
            return beam_fn_api_pb2.StartWorkerResponse(error=f"{type(error).__name__}: {error}")

    def StopWorker(self, request: Any, context: object) -> Any:  # noqa: N802 - the Fn API's
        """Nothing to do: a worker exits when its job's control channel closes; reap() collects it."""
        from apache_beam.portability.api import beam_fn_api_pb2

        return beam_fn_api_pb2.StopWorkerResponse()

    def reap(self) -> list[str]:
        """Collects workers that exited, logging how; what each one that failed says."""
        with self._lock:
            finished = {n: p for n, p in self._workers.items() if p.poll() is not None}
            for number in finished:
                del self._workers[number]
        failures = []
        for number, process in finished.items():
            _LOGGER.info("SDK worker %d exited with status %d", number, process.returncode)
            if process.returncode != 0:
                failures.append(
                    f"SDK worker {number} (pid {process.pid}) exited with status "
                    f"{process.returncode} before its job ended"
                )
        return failures

    def close(self) -> None:
        """Terminates every worker still running, and the waiting one."""
        with self._lock:
            workers = list(self._workers.values())
            if self._waiting is not None:
                workers.append(self._waiting)
                self._waiting = None
        for process in workers:
            process.terminate()
        for process in workers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _provision_info(url: str, worker_id: str) -> Any:
    """The worker's ProvisionInfo (its job's pipeline options) from the runner's service."""
    import grpc
    from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc

    with grpc.insecure_channel(url) as channel:
        stub = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel)
        return stub.GetProvisionInfo(
            beam_provision_api_pb2.GetProvisionInfoRequest(),
            metadata=[("worker_id", worker_id)],
            timeout=60,
        ).info


def serve(port_file: pathlib.Path, work_dir: pathlib.Path, environment: pathlib.Path) -> None:
    """Serves until SIGTERM, or until the process that started the pool is gone (killed, say):
    then it also removes `environment`, the worker environment that process would have removed.
    """
    parent = os.getppid()
    pool = WorkerPool(work_dir)
    import grpc
    from apache_beam.portability.api import beam_fn_api_pb2_grpc

    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8))
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
    port = server.add_insecure_port("localhost:0")
    server.start()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    # Written last and renamed into place: the driver reads a whole port number or none.
    partial = port_file.with_suffix(".partial")
    partial.write_text(str(port))
    partial.rename(port_file)
    _LOGGER.info("worker pool listening on localhost:%d (pid %d)", port, os.getpid())
    orphaned = False
    while not stopping.wait(0.5):
        if os.getppid() != parent:
            _LOGGER.info("the driver (pid %d) is gone: stopping", parent)
            orphaned = True
            break
        failures = pool.reap()
        if failures:
            # Beam's job service waits for a dead worker's data forever: tell the driver.
            # Renamed into place: the driver reads the whole news or none.
            partial = environment / f"{WORKER_FAILED_FILE}.partial"
            partial.write_text("; ".join(failures))
            partial.rename(environment / WORKER_FAILED_FILE)
            os.kill(parent, WORKER_FAILED_SIGNAL)
    server.stop(grace=1)
    pool.close()
    pool.reap()
    if orphaned:
        shutil.rmtree(environment, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port-file", type=pathlib.Path, required=True)
    parser.add_argument("--work-dir", type=pathlib.Path, required=True)
    parser.add_argument("--environment", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serve(args.port_file, args.work_dir, args.environment)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A user's Beam pipeline file, run as `__main__` by test_portable.py: each case on the DirectRunner (but the one that kills its worker), then on the portable runner's SDK workers.

It expects `helpers.py` and `note.txt` beside it, and its working directory to be its folder.
Prints one JSON object: per case and runner, the output or the worker's error line.
"""

import json
import os
import pathlib
import sys

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from helpers import double  # a module beside this file, which the project's wheel does not ship

from tfx_pipeline.runners import portable

FACTOR = 3  # a global of __main__
DRIVER_VARIABLE = "TAXI_SET_BY_THE_DRIVER"
os.environ[DRIVER_VARIABLE] = "yes"


def times_factor(value: int) -> int:
    return value * FACTOR


def surroundings(value: int) -> str:
    """What a worker sees: where the project comes from, its folder, the driver's state."""
    import json
    import os

    import tfx_pipeline

    return json.dumps(
        {
            "package": tfx_pipeline.__file__,
            "cwd": os.getcwd(),
            "note_readable": os.path.exists("note.txt"),
            "driver_variable": os.environ.get("TAXI_SET_BY_THE_DRIVER"),
        }
    )


def worker_dies(value: int) -> int:
    """A worker killed in its job (out of memory, say); only ever run on the portable runner."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
    return value


CASES = {
    "surroundings": surroundings,
    "helper_module": double,
    "main_global": times_factor,
    "worker_dies": worker_dies,
}


def run(
    case: str,
    options: list[str],
    output: pathlib.Path,
    workers: portable.WorkerPoolProcess | None = None,
) -> dict[str, object]:
    """One pipeline of `case` with `options`: its output, or the error a worker raised."""
    with portable.JobErrors() as errors:
        try:
            with (
                portable.failing_jobs(workers),
                beam.Pipeline(options=PipelineOptions(options)) as pipeline,
            ):
                _ = (
                    pipeline
                    | beam.Create([1])
                    | beam.Map(CASES[case])
                    | beam.Map(str)
                    | beam.io.WriteToText(str(output), shard_name_template="")
                )
        except Exception as error:  # noqa: BLE001 - the outcome is what this file reports
            # As local_runner.py reports it: a worker's death first, else the worker's error.
            failure = portable.job_failure(error, errors, workers)
            return {"ok": False, "error": failure or f"{type(error).__name__}: {error}"}
    return {"ok": True, "output": output.read_text().strip()}


def main(folder: pathlib.Path) -> None:
    results: dict[str, dict] = {case: {} for case in CASES}
    for case in CASES:
        if case != "worker_dies":
            results[case]["direct"] = run(case, [], folder / f"{case}-direct.txt")
    with portable.WorkerPoolProcess(folder / "beam-workers.log") as workers:
        pool = workers.ready()
        for case in CASES:
            options = list(pool.beam_args())
            results[case]["portable"] = run(case, options, folder / f"{case}-portable.txt", workers)
    print(json.dumps(results), flush=True)
    # The dead worker's job keeps a thread of Beam's job service waiting, which the
    # interpreter's exit would wait for (local_runner.py exits the same way).
    os._exit(0)


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))

"""Which run a report or a query is about: `--run ID` or the latest, refused clearly when it cannot be read.

The commands (`report`, `runs`, `explain`) share it, so an unknown run id, an output directory
without MLMD or a run still in progress get the same message everywhere (and exit 2).
"""

import fcntl
import pathlib
from typing import Any

from ml_metadata.proto import metadata_store_pb2

from tfx_pipeline import metadata
from tfx_pipeline.layout import OutputLayout
from tfx_pipeline.problems import ConfigProblems

# How many known run ids an "unknown run" message lists.
LISTED_RUNS = 5


def open_output_store(output_dir: pathlib.Path) -> Any:
    """The read-only MLMD store of an output directory; ConfigProblems when there is none."""
    metadata_path = OutputLayout(output_dir).metadata_path
    if not metadata_path.is_file():
        raise ConfigProblems(
            [
                f"no pipeline metadata at {metadata_path}: not an output directory of a run "
                "(pass the runner's --output-dir, or run the pipeline first)"
            ]
        )
    return metadata.open_store(str(metadata_path))


def output_dir_busy(output_dir: pathlib.Path) -> bool:
    """True while another process holds the output directory's run lock (a run is going on)."""
    lock_path = OutputLayout(output_dir).lock_path
    if not lock_path.exists():
        return False
    with open(lock_path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def in_progress(store: Any, run: metadata_store_pb2.Context) -> bool:
    """True when some execution of the run has not finished (running, or interrupted)."""
    return any(
        execution.last_known_state in metadata.UNFINISHED_STATES
        for execution in store.get_executions_by_context(run.id)
    )


def select_run(
    output_dir: pathlib.Path, pipeline_name: str, run_id: str | None = None
) -> tuple[Any, metadata_store_pb2.Context]:
    """The store and the run `run_id` (the latest when None) of `pipeline_name`.

    Raises ConfigProblems naming the problem: no MLMD, no run yet, an unknown run id (with the
    newest known ids), or a run still in progress.
    """
    store = open_output_store(output_dir)
    runs = metadata.run_contexts(store, pipeline_name)
    if not runs:
        raise ConfigProblems(
            [f"pipeline '{pipeline_name}' has no runs in {output_dir} (check --pipeline-name)"]
        )
    if run_id is None:
        run = runs[-1]
    else:
        run = next((candidate for candidate in runs if candidate.name == run_id), None)
        if run is None:
            known = ", ".join(candidate.name for candidate in runs[-LISTED_RUNS:][::-1])
            raise ConfigProblems(
                [
                    f"no run '{run_id}' of pipeline '{pipeline_name}' in {output_dir}; the newest "
                    f"runs are: {known} (`python -m tfx_pipeline.runs` lists them all)"
                ]
            )
    if in_progress(store, run) and output_dir_busy(output_dir):
        raise ConfigProblems(
            [f"run {run.name} is still in progress; ask again when it has finished"]
        )
    return store, run

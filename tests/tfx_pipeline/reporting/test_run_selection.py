"""Choosing the run a report or query is about, and refusing clearly what cannot be read."""

import fcntl
import pathlib

import pytest
from ml_metadata.proto import metadata_store_pb2

from tfx_pipeline import metadata
from tfx_pipeline.layout import OutputLayout
from tfx_pipeline.problems import ConfigProblems
from tfx_pipeline.reporting.run_selection import select_run

Execution = metadata_store_pb2.Execution


def record_runs(output_dir: pathlib.Path, runs: dict[str, list[tuple[str, int]]]) -> None:
    """An MLMD store holding `runs` (run id -> [(node, state)]) as TFX's local runner records them."""
    output_dir.mkdir(parents=True, exist_ok=True)
    store = metadata.open_store(str(OutputLayout(output_dir).metadata_path), read_only=False)
    type_ids = {
        name: store.put_context_type(metadata_store_pb2.ContextType(name=name))
        for name in ("pipeline", "pipeline_run", "node")
    }
    execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name="Component"))
    [pipeline_id] = store.put_contexts(
        [metadata_store_pb2.Context(type_id=type_ids["pipeline"], name="taxi")]
    )
    for run_name, executions in runs.items():
        [run_id] = store.put_contexts(
            [metadata_store_pb2.Context(type_id=type_ids["pipeline_run"], name=run_name)]
        )
        for node, state in executions:
            node_context = store.get_context_by_type_and_name("node", f"taxi.{node}")
            node_id = (
                node_context.id
                if node_context
                else store.put_contexts(
                    [metadata_store_pb2.Context(type_id=type_ids["node"], name=f"taxi.{node}")]
                )[0]
            )
            [execution_id] = store.put_executions(
                [Execution(type_id=execution_type, last_known_state=state)]
            )
            store.put_attributions_and_associations(
                [],
                [
                    metadata_store_pb2.Association(context_id=context, execution_id=execution_id)
                    for context in (pipeline_id, run_id, node_id)
                ],
            )


@pytest.fixture
def output_dir(tmp_path):
    record_runs(
        tmp_path / "outputs",
        {
            "2026-01-01T10:00:00": [("CsvExampleGen", Execution.COMPLETE)],
            "2026-01-02T10:00:00": [("CsvExampleGen", Execution.CACHED)],
        },
    )
    return tmp_path / "outputs"


def test_the_latest_run_by_default_and_any_run_by_id(output_dir):
    _, latest = select_run(output_dir, "taxi")
    assert latest.name == "2026-01-02T10:00:00"
    _, first = select_run(output_dir, "taxi", "2026-01-01T10:00:00")
    assert first.name == "2026-01-01T10:00:00"


def test_an_unknown_run_id_names_the_known_ones(output_dir):
    with pytest.raises(ConfigProblems) as error:
        select_run(output_dir, "taxi", "2026-13-01")
    (problem,) = error.value.problems
    assert "no run '2026-13-01'" in problem
    assert "2026-01-02T10:00:00, 2026-01-01T10:00:00" in problem


def test_an_output_dir_without_metadata_is_refused(tmp_path):
    with pytest.raises(ConfigProblems, match="no pipeline metadata at .*metadata.sqlite"):
        select_run(tmp_path, "taxi")


def test_an_unknown_pipeline_name_is_refused(output_dir):
    with pytest.raises(ConfigProblems, match="pipeline 'chicago' has no runs"):
        select_run(output_dir, "chicago")


def test_a_run_in_progress_is_refused_while_its_runner_holds_the_lock(tmp_path):
    output_dir = tmp_path / "outputs"
    record_runs(output_dir, {"2026-01-03T10:00:00": [("Trainer", Execution.RUNNING)]})
    # Interrupted (nobody holds the lock): it can be reported, showing what was left running.
    _, run = select_run(output_dir, "taxi")
    assert run.name == "2026-01-03T10:00:00"
    lock_path = OutputLayout(output_dir).lock_path
    with open(lock_path, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ConfigProblems, match="run 2026-01-03T10:00:00 is still in progress"):
            select_run(output_dir, "taxi")

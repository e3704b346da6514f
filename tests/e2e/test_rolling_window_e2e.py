"""End to end: three spans arrive one run at a time; training reads a two-span window.

Checks what the rolling window promises: each run ingests only its new span, Transform, Tuner
and Trainer read the newest two accepted spans, and Transform analyzes only the new span while
the older one comes from the analyzer cache of the previous run.
"""

import pathlib
import re

import pytest

from tests.conftest import DATA_ROOT
from tests.e2e.test_e2e import run_pipeline
from tfx_pipeline import metadata

pytestmark = pytest.mark.e2e

SPAN_ROWS = 800


def add_span(root, number):
    """Span `number`: 800 rows of the bundled data, a different slice for each span."""
    lines = (DATA_ROOT / "span-2" / "data.csv").read_text().splitlines(keepends=True)
    start = 1 + (number - 1) * SPAN_ROWS
    (root / "data" / f"span-{number}").mkdir(parents=True)
    (root / "data" / f"span-{number}" / "data.csv").write_text(
        lines[0] + "".join(lines[start : start + SPAN_ROWS])
    )


def latest_artifacts(workspace, node_id):
    """Input and output artifacts (by key) of `node_id`'s execution in the latest run."""
    _, executions = metadata.latest_run_executions(
        str(workspace / "outputs" / "metadata.sqlite"), "taxi"
    )
    for execution in executions:
        if execution.node_id == node_id:
            return execution.inputs, execution.outputs
    raise AssertionError(f"{node_id} did not run in the latest run")


def latest_inputs(workspace, node_id):
    """Span numbers of the `examples` inputs of `node_id` in the latest run, newest first."""
    inputs, _ = latest_artifacts(workspace, node_id)
    return sorted(
        (metadata.custom_property(a, "span") for a in inputs.get("examples", [])), reverse=True
    )


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("rolling")
    results = []
    for number in (1, 2, 3):
        add_span(workspace, number)
        # Blessing is not under test: on 190 eval rows the AUC moves by more than the default
        # 0.01 allowed drop from run to run, which would stop the push, not the window.
        results.append(
            run_pipeline(
                workspace, "--min-auc", "0.6", "--max-auc-drop", "1", "--window-spans", "2"
            )
        )
    return workspace, results


def test_every_run_succeeds(three_runs):
    _, results = three_runs
    for result in results:
        assert result.returncode == 0, result.stdout + result.stderr
    # The first run has no analyzer cache to resolve yet: resolved to none, not a failed node.
    first = results[0].stdout
    assert re.search(r"\] latest_analyzer_cache_resolver +resolved ", first), first
    assert not any(re.search(r"\] \S+ +FAILED", r.stdout) for r in results)


def test_training_reads_the_newest_two_spans_and_ingests_only_the_new_one(three_runs):
    workspace, results = three_runs
    assert results[-1].returncode == 0
    assert latest_inputs(workspace, "Transform") == [3, 2]
    assert latest_inputs(workspace, "Trainer") == [3, 2]
    assert latest_inputs(workspace, "Evaluator") == [3]
    assert "Data:            span 3: 800 rows" in results[-1].stdout


def cache_entries(uri):
    """Dataset names in a Transform analyzer cache: one folder per analyzed Examples split."""
    return sorted(path.name for path in pathlib.Path(uri).iterdir() if path.is_dir())


def test_transform_takes_the_older_span_from_the_previous_analyzer_cache(three_runs):
    workspace, results = three_runs
    assert results[-1].returncode == 0
    inputs, outputs = latest_artifacts(workspace, "Transform")
    by_span = {metadata.custom_property(a, "span"): a for a in inputs["examples"]}
    (cache_in,) = inputs["analyzer_cache"]
    (cache_out,) = outputs["updated_analyzer_cache"]

    def key(span):  # TFT names a dataset after the tail of its file pattern
        return f"examples-{pathlib.PurePath(by_span[span].uri).name}-Split-train-"

    # Span 2 was analyzed by the previous run; this run found it in that run's cache.
    assert any(key(2) in name for name in cache_entries(cache_in.uri))
    assert not any(key(3) in name for name in cache_entries(cache_in.uri))
    # The updated cache covers the whole window for the next run.
    entries = cache_entries(cache_out.uri)
    assert any(key(2) in name for name in entries) and any(key(3) in name for name in entries)

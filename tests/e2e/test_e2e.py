"""End to end: local_runner.py as a user runs it, on a small sample, runs in a row sharing one output.

1. cold: every component runs, the model is infra-validated and pushed warm, both signatures
   serve it;
2. unchanged rerun: everything is cached and no duplicate version is pushed; once more, it is
   up to date: its summary is repeated without running;
3. unmeetable threshold: nothing is pushed, the summary says why, exit status 3;
4. a new span: evaluated against the blessed model (a drop within the noise does not block);
5. a module that exports a broken signature: not infra-blessed, nothing pushed;
6. a span whose Credit Card labels are coin flips: that slice's gate fails, naming it;
7. run 1's span again through Beam's portable runner (its own output): every Beam component runs
   on SDK worker processes that have only the project's wheel, and writes the same examples and
   statistics as run 1 on the DirectRunner.
"""

import csv
import json
import math
import os
import pathlib
import random
import re
import shutil
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from tests.conftest import DATA_ROOT, REPO_ROOT, read_csv_rows, write_sample_spans
from tests.tfx_pipeline.test_pipeline import COMPONENT_IDS

pytestmark = pytest.mark.e2e

SAMPLE_ROWS = {1: 600, 2: 2400}
FAST_FLAGS = [
    "--train-steps",
    "200",
    "--eval-steps",
    "20",
    "--tuner-trials",
    "2",
    "--tuner-steps",
    "40",
    "--batch-size",
    "64",
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    write_sample_spans(root / "data", SAMPLE_ROWS)
    return root


def runner_command(workspace, *flags, runner=REPO_ROOT / "local_runner.py"):
    """`local_runner.py` on the workspace's data/ and outputs/, as a user types it."""
    return [
        sys.executable,
        str(runner),
        "--data-root",
        str(workspace / "data"),
        "--output-dir",
        str(workspace / "outputs"),
        *flags,
    ]


def runner_env():
    """A user's environment: without the TF_USE_LEGACY_KERAS the tests set for themselves."""
    return {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}


def run_pipeline(workspace, *extra, runner=REPO_ROOT / "local_runner.py"):
    command = runner_command(workspace, *FAST_FLAGS, *extra, runner=runner)
    result = subprocess.run(command, capture_output=True, text=True, env=runner_env(), timeout=900)
    print(result.stdout, result.stderr)
    return result


def versions(workspace):
    model_dir = workspace / "outputs" / "serving" / "taxi"
    return sorted(p.name for p in model_dir.iterdir()) if model_dir.exists() else []


def snapshot(directory):
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def latest_run_states(workspace):
    from tfx_pipeline.reporting import run_summary

    return run_summary.summarize_run(str(workspace / "outputs" / "metadata.sqlite"), "taxi").states


@pytest.fixture(scope="module")
def cold_run(workspace, notification_sink):
    return run_pipeline(workspace, "--min-auc", "0.6", *notification_sink.flags())


def test_cold_run_completes_every_component_and_pushes(cold_run, workspace, notification_sink):
    assert cold_run.returncode == 0, cold_run.stdout + cold_run.stderr
    states = latest_run_states(workspace)
    assert set(states) == set(COMPONENT_IDS)
    assert set(states.values()) == {"COMPLETE"}, states
    (version,) = versions(workspace)
    assert version.isdigit()
    path = workspace / "outputs" / "serving" / "taxi" / version
    assert f"Pushed:          {path}" in cold_run.stdout
    # The push reached the webhook, signed, and the JSONL file.
    (pushed,) = [
        body
        for body in notification_sink.received("pushed")
        if body["details"]["path"] == str(path)
    ]
    assert pushed["text"].startswith(f"taxi: version {version} pushed (AUC 0.")
    assert pushed["details"]["previous_version"] is None
    assert "Notified:" in cold_run.stdout
    logged = [json.loads(line) for line in notification_sink.jsonl.read_text().splitlines()]
    assert any(line.get("id") == pushed["id"] for line in logged), logged


def test_cold_run_is_infra_validated_and_pushes_the_warm_model(cold_run, workspace):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    assert cold_run.returncode == 0, cold_run.stdout + cold_run.stderr
    # 50 eval rows through each of the two signatures, over gRPC and REST; no baseline yet.
    assert (
        "Infra validated: yes, on python -m serving: loaded and answered 100 requests, p99 "
        in cold_run.stdout
    )
    (version,) = versions(workspace)
    warmup = (
        workspace / "outputs" / "serving" / "taxi" / version / "assets.extra"
    ) / "tf_serving_warmup_requests"
    logs = [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(str(warmup))
    ]
    assert len(logs) == 100
    requests = [log.predict_log.request for log in logs]
    assert {r.model_spec.name for r in requests} == {"taxi"}
    assert [r.model_spec.signature_name for r in requests] == (
        ["serving_default"] * 50 + ["serving_raw"] * 50
    )


def test_console_shows_progress_and_summary_while_logs_go_to_the_file(cold_run, workspace):
    progress = dict(re.findall(r"^  \[\s*\d+/13\] (\S+)\s+(\S+)", cold_run.stdout, re.MULTILINE))
    for component in (
        "CsvExampleGen",
        "Transform",
        "Tuner",
        "Trainer",
        "Evaluator",
        "InfraValidator",
        "Pusher",
    ):
        assert progress.get(component) == "ran", (component, progress)
    for heading in (
        "Data:            span 2: 2400 rows",
        "Anomalies:       none",
        "Hyperparameters: searched in this run (2 trials",
        "Blessed:         yes",
    ):
        assert heading in cold_run.stdout
    assert "oneDNN" not in cold_run.stdout + cold_run.stderr
    (log,) = (workspace / "outputs" / "logs").glob("run-*.log")
    assert "Component Trainer is finished." in log.read_text()


def test_pushed_model_serves_csv_rows_through_both_signatures(
    cold_run, workspace, raw_feature_spec
):
    import tensorflow as tf

    from tests.serving_inputs import predict_through_both_signatures

    (version,) = versions(workspace)
    loaded = tf.saved_model.load(str(workspace / "outputs" / "serving" / "taxi" / version))
    rows = read_csv_rows(DATA_ROOT / "span-2" / "data.csv", limit=50)
    by_example = predict_through_both_signatures(loaded, rows, raw_feature_spec)
    assert by_example.shape == (50,)
    # A trained model separates: cash trips (tips unrecorded) score below card trips.
    cash = [p for p, r in zip(by_example, rows, strict=True) if r["payment_type"] == "Cash"]
    card = [p for p, r in zip(by_example, rows, strict=True) if r["payment_type"] == "Credit Card"]
    assert cash and card and np.mean(cash) < np.mean(card)
    assert not any(math.isnan(p) for p in by_example)


@pytest.fixture(scope="module")
def cached_run(cold_run, workspace):
    assert cold_run.returncode == 0
    before = snapshot(workspace / "outputs" / "serving")
    return run_pipeline(workspace, "--min-auc", "0.6"), before


def test_unchanged_rerun_is_fully_cached_and_pushes_nothing(cached_run, workspace):
    result, before = cached_run
    assert result.returncode == 0, result.stdout + result.stderr
    states = latest_run_states(workspace)
    assert "Tuner" not in states, "later runs reuse the searched hyperparameters"
    for node, state in states.items():
        expected = "COMPLETE" if node.endswith("_resolver") else "CACHED"
        assert state == expected, (node, state)
    assert snapshot(workspace / "outputs" / "serving") == before
    assert "unchanged model: nothing new pushed" in result.stdout
    assert "reused from the latest search" in result.stdout


def test_the_same_run_again_is_up_to_date_and_repeats_its_summary(cached_run, workspace):
    """Nothing changed since the cached rerun: its summary is printed, no run is recorded."""
    from tfx_pipeline import metadata

    result, _ = cached_run
    database = str(workspace / "outputs" / "metadata.sqlite")
    runs = [c.name for c in metadata.run_contexts(metadata.open_store(database), "taxi")]
    logs = sorted((workspace / "outputs" / "logs").iterdir())

    again = run_pipeline(workspace, "--min-auc", "0.6")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "Up to date: nothing changed since the run started" in again.stdout
    summary = result.stdout[result.stdout.index("Summary (run took") :].split("\nNotified:")[0]
    assert summary.strip() in again.stdout
    assert [c.name for c in metadata.run_contexts(metadata.open_store(database), "taxi")] == runs
    assert sorted((workspace / "outputs" / "logs").iterdir()) == logs


def test_unmeetable_threshold_pushes_nothing_and_says_why(cached_run, workspace):
    before = snapshot(workspace / "outputs" / "serving")
    result = run_pipeline(workspace, "--min-auc", "0.999")
    assert result.returncode == 3, result.stdout + result.stderr
    assert latest_run_states(workspace)["Evaluator"] == "COMPLETE"
    assert snapshot(workspace / "outputs" / "serving") == before
    assert "Blessed:         NO" in result.stdout
    assert "overall: auc = " in result.stdout and "fails >= 0.999" in result.stdout
    assert "Pushed:          nothing (not pushed: the model was not blessed)" in result.stdout
    report = sorted((workspace / "outputs" / "reports").glob("evaluation-*.txt"))[-1]
    assert f"Evaluation:      {report}" in result.stdout
    text = report.read_text()
    assert re.search(r"^overall\s+auc\s+\S+\s+\S+\s+FAIL\s+>= 0.999", text, re.MULTILINE), text
    assert re.search(r"^payment_type=Credit Card\s+auc\s", text, re.MULTILINE), text


@pytest.fixture(scope="module")
def new_span_run(cached_run, workspace):
    """Adds span 3 and runs again: a new model, evaluated against the blessed one."""
    assert versions(workspace), "needs the model pushed by the cold run"
    before = versions(workspace)
    rows = (workspace / "data" / "span-2" / "data.csv").read_text().splitlines(keepends=True)
    (workspace / "data" / "span-3").mkdir()
    # The same trips in reverse order: a new span for ExampleGen, valid under the same schema.
    (workspace / "data" / "span-3" / "data.csv").write_text(rows[0] + "".join(reversed(rows[1:])))
    # No drop allowed at all: only a significant one may block, and retraining on the same rows
    # in another order moves AUC by noise only.
    return run_pipeline(workspace, "--min-auc", "0.6", "--max-auc-drop", "0"), before


def test_new_span_is_trained_evaluated_against_the_blessed_model_and_pushed(
    new_span_run, workspace
):
    result, before = new_span_run
    assert result.returncode == 0, result.stdout + result.stderr
    states = latest_run_states(workspace)
    for node in ("CsvExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"):
        assert states[node] == "COMPLETE", (node, states[node])
    assert "Data:            span 3: 2400 rows" in result.stdout
    lines = result.stdout.splitlines()
    auc_row = next(line for line in lines if line.strip().startswith("AUC "))
    candidate, baseline = re.match(r"\s*AUC\s+(\S+)(?: \[\S+ \S+\])?\s+(\S+)", auc_row).groups()
    assert baseline != "-", "the previous blessed model must be the baseline"
    change_row = next(line for line in lines if line.strip().startswith("AUC change"))
    change, low, high = map(float, re.search(r"(\S+) \[(\S+), (\S+)\]", change_row).groups())
    assert low <= change <= high
    # Blessed although max-auc-drop is 0: whatever the point change, its interval reaches 0.
    assert high >= 0, change_row
    print(f"AUC change vs baseline: {change:+.4f} [{low:+.4f}, {high:+.4f}]")
    after = versions(workspace)
    assert len(after) == len(before) + 1 and after[:-1] == before


def test_pushed_model_over_rest_and_grpc_equals_the_in_process_signature(
    cold_run, workspace, raw_feature_spec
):
    import base64

    import tensorflow as tf

    from models import features
    from serving.client import ServingClient
    from serving.grpc_client import GrpcServingClient
    from serving.server import ModelServer
    from serving.versions import ModelSpec
    from tests.serving_inputs import predict_through_both_signatures, serialized_examples

    version = versions(workspace)[-1]  # the server serves the latest version
    model_dir = workspace / "outputs" / "serving" / "taxi"
    rows = read_csv_rows(DATA_ROOT / "span-2" / "data.csv", limit=40)
    expected = predict_through_both_signatures(
        tf.saved_model.load(str(model_dir / version)), rows, raw_feature_spec
    )
    # JSON clients send raw CSV values; an empty cell is NaN, "" or -1 (features.MISSING_VALUE_DOC).
    instances = [features.raw_json_instance(row) for row in rows]
    examples = serialized_examples(rows, raw_feature_spec, drop={features.TIPS_KEY}).numpy()
    spec = ModelSpec("taxi", str(model_dir))
    with ModelServer([spec], port=0, grpc_port=0, poll_seconds=0) as server:
        # The pushed version arrived with the InfraValidator's warmup requests, replayed
        # before it became AVAILABLE (TF Serving's metric, status OK).
        metrics = urllib.request.urlopen(server.url + "/monitoring/prometheus/metrics").read()
        replayed = (
            ':tensorflow:serving:model_warmup_latency_count{model_path="'
            f'{model_dir / version}",status="OK"}} 1'
        )
        assert replayed in metrics.decode(), metrics.decode()
        client = ServingClient(server.url)
        by_rows = client.predict_rows("taxi", instances, signature_name="serving_raw")
        by_examples = client.predict_rows(
            "taxi", [{"b64": base64.b64encode(e).decode()} for e in examples]
        )
        with GrpcServingClient(f"127.0.0.1:{server.grpc_port}") as grpc_client:
            grpc_rows = grpc_client.predict_rows("taxi", instances, signature_name="serving_raw")
            grpc_examples = grpc_client.predict("taxi", {"examples": list(examples)})
    np.testing.assert_allclose(by_rows, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(by_examples, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(grpc_rows, expected, rtol=1e-6, atol=1e-6)
    (grpc_output,) = grpc_examples.values()
    np.testing.assert_allclose(grpc_output.reshape(-1), expected, rtol=1e-6, atol=1e-6)


def test_history_and_rollback_after_two_pushes(new_span_run, workspace, capsys):
    from serving import rollback
    from tfx_pipeline.operations import history

    metadata = str(workspace / "outputs" / "metadata.sqlite")
    assert new_span_run[0].returncode == 0
    first, second = history.pushes(metadata, "taxi")
    assert (first.span, second.span) == (2, 3)
    assert first.blessed and second.blessed and second.auc is not None
    assert (first.on_disk, second.on_disk) == ("present", "SERVED")

    base = workspace / "outputs" / "serving" / "taxi"
    rollback.rollback(str(base), reason="e2e: the span-3 model is suspect")
    after = {p.version: p.on_disk for p in history.pushes(metadata, "taxi")}
    assert after == {first.version: "SERVED", second.version: "rolled back"}
    assert history.main(["--output-dir", str(workspace / "outputs")]) == 0
    table = capsys.readouterr().out
    assert "rolled back" in table and "SERVED" in table


def report_of(result):
    """The run report the console's last lines point to."""
    match = re.search(r"^Report:\s+(\S+\.html) \(", result.stdout, re.MULTILINE)
    assert match, result.stdout[-2000:]
    return pathlib.Path(match.group(1))


def row_of(table, first_cell):
    return next(row for row in table if row and row[0] == first_cell)


def test_the_cold_runs_report_shows_every_section_offline_in_a_browser(
    cold_run, workspace, chromium, tmp_path
):
    from tests.browser import render
    from tfx_pipeline import metadata
    from tfx_pipeline.reporting import run_summary

    # The cold run is the first: later runs of the module have happened by now.
    store = metadata.open_store(str(workspace / "outputs" / "metadata.sqlite"))
    first = metadata.run_contexts(store, "taxi")[0]
    summary = run_summary.summarize(first.name, metadata.run_executions(store, "taxi", first))
    report = report_of(cold_run)
    assert report.parent == workspace / "outputs" / "reports" and report.name.startswith("run-")
    page = render(report, tmp_path)
    assert page.requests == [], page.requests
    assert not page.screenshot_is_blank()
    assert {"pipeline", "data", "training", "evaluation", "serving", "lineage"} <= (
        page.element_ids()
    )
    # 1. Every component drawn and listed with its state.
    assert page.count("g", "class", "node", within="pipeline") == len(COMPONENT_IDS)
    (components,) = page.tables("components")
    assert {row[0]: row[1] for row in components[1:]} == dict.fromkeys(COMPONENT_IDS, "ran")
    # 2. Rows per split, as StatisticsGen counted them (the summary reads the same files).
    (splits,) = page.tables("split-rows")
    rows = {row[0]: int(row[1].replace(",", "")) for row in splits[1:]}
    assert sum(rows.values()) == 2400 and set(rows) == {"train", "eval"}
    (features,) = page.tables("features")
    assert {"fare", "payment_type", "trip_start_timestamp"} <= {row[0] for row in features[1:]}
    assert page.count("svg", within="data") >= len(features) - 1
    # 3. Both trials, and the hyperparameters the Trainer used.
    (trials,) = page.tables("trials")
    assert len(trials) == 1 + 2
    (hyperparameters,) = page.tables("hyperparameters")
    assert {row[0] for row in hyperparameters[1:]} == set(summary.hyperparameters)
    # 4. The Evaluator's numbers, candidate only (no baseline yet), and its two plots.
    (overall,) = page.tables("overall")
    auc = next(row for row in summary.evaluation.metrics if row.name == "AUC").candidate
    assert row_of(overall, "AUC")[1].startswith(f"{auc.value:.4f}")
    assert page.count("svg", "role", "img", within="plots") == 2
    # 5. and 6. The pushed version, and its lineage back to the span.
    version = pathlib.Path(summary.pushed_path).name
    assert summary.pushed_path in page.text("serving")
    (lineage,) = page.tables("lineage-table")
    assert f"pushed_version={version}" in row_of(lineage, "pushed version")[2]
    assert "span=2" in row_of(lineage, "span")[2]


def test_a_cached_runs_report_says_so_and_can_be_written_again(
    cached_run, workspace, chromium, tmp_path
):
    from tests.browser import render

    result, _ = cached_run
    report = report_of(result)
    page = render(report, tmp_path)
    (components,) = page.tables("components")
    states = {row[0]: row[1] for row in components[1:]}
    assert states["Trainer"] == states["Evaluator"] == "cached", states
    assert "unchanged model" in page.text("serving")
    first = report.read_text()
    report.unlink()
    output_dir = str(workspace / "outputs")
    run_id = re.search(r"<h1>Run report: (\S+)</h1>", first).group(1)
    rebuilt = subprocess.run(
        [sys.executable, "-m", "tfx_pipeline.report", "--output-dir", output_dir, "--run", run_id],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert str(report) in rebuilt.stdout
    # Written again from MLMD (and the runner's facts kept beside it): the same numbers.
    again = report.read_text()
    for table_id in ("components", "split-rows", "features", "overall", "lineage-table"):
        assert sorted(render_table(first, table_id)) == sorted(render_table(again, table_id))
    unknown = subprocess.run(
        [sys.executable, "-m", "tfx_pipeline.report", "--output-dir", output_dir, "--run", "x"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert unknown.returncode == 2 and "error: no run 'x' of pipeline 'taxi'" in unknown.stderr


def test_runs_lists_every_run_and_compares_two_side_by_side(new_span_run, workspace):
    from tfx_pipeline import metadata

    output_dir = workspace / "outputs"
    store = metadata.open_store(str(output_dir / "metadata.sqlite"))
    run_ids = [run.name for run in metadata.run_contexts(store, "taxi")]
    listed = subprocess.run(
        [sys.executable, "-m", "tfx_pipeline.runs", "--output-dir", str(output_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[1:] if line.strip()}
    # Every run, the unblessed and the cached ones too, not only those that pushed.
    assert list(lines) == run_ids and len(run_ids) >= 4
    cold, cached, new_span = run_ids[0], run_ids[1], run_ids[-1]
    # Version numbers, the rolled-back one (by the history test) included.
    names = [name.rsplit("-", 1)[-1] for name in versions(workspace)]
    served = sorted(name for name in names if name.isdigit())
    assert re.search(rf"\s{served[0]}\s", lines[cold]) and " unchanged " in lines[cached]
    assert re.search(rf"\s{served[-1]}\s", lines[new_span])
    assert " 13/0/0 " in lines[cold] and "/0 " in lines[cached]
    compared = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfx_pipeline.runs",
            "--output-dir",
            str(output_dir),
            "--compare",
            cold,
            new_span,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert compared.returncode == 0, compared.stderr
    text = compared.stdout
    for heading in ("Overview:", "Components:", "Hyperparameters:", "Metrics by slice:", "Data"):
        assert heading in text
    spans = next(line for line in text.splitlines() if line.strip().startswith("spans"))
    assert spans.split()[1:4] == ["2", "3", "changed"]
    page = re.search(r"Side by side in a browser: (\S+)", text).group(1)
    assert cold in pathlib.Path(page).read_text()


def render_table(page_html, table_id):
    """A table's cell texts, parsed as the browser tests parse the rendered DOM."""
    from tests.browser import Rendered

    return Rendered(dom=page_html, screenshot=None, requests=[], isolation="").tables(table_id)


@pytest.fixture(scope="module")
def broken_signature_run(new_span_run, workspace):
    """Span 3 again, trained by a test-only copy of models/ whose serving_raw answers NaN.

    The runner script is copied beside the broken package, so `models` (TFX loads run_fn by
    dotted path) resolves to the copy while tfx_pipeline stays the installed one.
    """
    assert new_span_run[0].returncode == 0
    copy = workspace / "broken_module"
    shutil.copytree(
        REPO_ROOT / "models", copy / "models", ignore=shutil.ignore_patterns("__pycache__")
    )
    model_py = copy / "models" / "model.py"
    source = model_py.read_text()
    raw_start = source.index("def serve_raw(")
    answer = "return {features.PROBABILITY_OUTPUT: module.predict_raw(raw)}"
    at = source.index(answer, raw_start)
    broken = answer.replace("module.predict_raw(raw)", 'module.predict_raw(raw) * float("nan")')
    model_py.write_text(source[:at] + broken + source[at + len(answer) :])
    shutil.copy(REPO_ROOT / "local_runner.py", copy / "local_runner.py")
    before = snapshot(workspace / "outputs" / "serving")
    result = run_pipeline(
        workspace, "--min-auc", "0.6", "--max-auc-drop", "0.2", runner=copy / "local_runner.py"
    )
    return result, before


def test_a_model_that_cannot_be_served_is_not_infra_blessed_and_not_pushed(
    broken_signature_run, workspace
):
    result, before = broken_signature_run
    assert result.returncode == 3, result.stdout + result.stderr
    states = latest_run_states(workspace)
    for node in ("Trainer", "Evaluator", "InfraValidator", "Pusher"):
        assert states[node] == "COMPLETE", (node, states[node])
    # The Evaluator calls serving_default only, so it blesses; serving the model shows the fault.
    assert "Blessed:         yes" in result.stdout
    assert "Infra validated: NO" in result.stdout
    assert re.search(
        r"^ +- serving_raw over gRPC: probabilities is not finite: \[nan\] "
        r"\(50 of 50 requests, first: request 50\)$",
        result.stdout,
        re.MULTILINE,
    ), result.stdout
    assert (
        "Pushed:          nothing (not pushed: the model failed infra validation)" in result.stdout
    )
    assert snapshot(workspace / "outputs" / "serving") == before


@pytest.fixture(scope="module")
def scrambled_slice_run(broken_signature_run, workspace, notification_sink):
    """Span 4: both bundled spans (about 15k trips), Credit Card labels replaced by coin flips.

    The flips keep the slice's share of big tippers, so no column's overall picture changes
    much, but nothing can predict that slice any more: its AUC falls to 0.5 from about 0.62.
    Enough Credit Card rows (about 1,400 in the eval split) make that drop certain, not noise.
    """
    rows = read_csv_rows(DATA_ROOT / "span-1" / "data.csv") + read_csv_rows(
        DATA_ROOT / "span-2" / "data.csv"
    )
    card = [r for r in rows if r["payment_type"] == "Credit Card" and r["fare"] and r["tips"]]
    share = sum(float(r["tips"]) > 0.2 * float(r["fare"]) for r in card) / len(card)
    coin = random.Random(15)
    for row in card:
        row["tips"] = f"{float(row['fare']) * 0.3:.2f}" if coin.random() < share else "0.0"
    (workspace / "data" / "span-4").mkdir()
    with open(workspace / "data" / "span-4" / "data.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    before = snapshot(workspace / "outputs" / "serving")
    result = run_pipeline(
        workspace,
        "--min-auc",
        "0.6",
        "--max-auc-drop",
        "0.2",
        "--min-slice-auc",
        "0.6",
        *notification_sink.flags(),
    )
    return result, before


def test_a_slice_made_worse_fails_its_gate_and_is_named(
    scrambled_slice_run, workspace, notification_sink
):
    result, before = scrambled_slice_run
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Blessed:         NO" in result.stdout
    reasons = result.stdout.split("Blessed:         NO", 1)[1].split("Pushed:", 1)[0]
    assert "payment_type=Credit Card" in reasons, result.stdout
    assert "Infra validated: yes" in result.stdout
    assert "Pushed:          nothing (not pushed: the model was not blessed)" in result.stdout
    assert snapshot(workspace / "outputs" / "serving") == before
    (event,) = [
        body
        for body in notification_sink.received("not_blessed")
        if body["details"].get("span") == 4
    ]
    assert "new model not blessed, nothing pushed; still serving version" in event["text"]
    assert any("payment_type=Credit Card" in reason for reason in event["details"]["reasons"])


def test_an_unblessed_runs_report_names_the_failing_slice(scrambled_slice_run, chromium, tmp_path):
    from tests.browser import render

    result, _ = scrambled_slice_run
    page = render(report_of(result), tmp_path)
    assert page.requests == [] and not page.screenshot_is_blank()
    assert "NOT BLESSED" in page.text("evaluation")
    reasons = page.text("reasons")
    assert "payment_type=Credit Card" in reasons and "fails >= 0.6" in reasons
    (slices,) = page.tables("slices")
    card = row_of(slices, "payment_type=Credit Card")
    assert card[5] == "FAIL", card
    assert "nothing" in page.text("serving") and "not blessed" in page.text("serving")


def test_the_cold_runs_version_carries_a_model_card_of_its_real_run(cold_run, workspace, capsys):
    import datetime
    import json

    from tensorflow_metadata.proto.v0 import statistics_pb2

    from tfx_pipeline import metadata
    from tfx_pipeline.components.atomic_pusher.model_card import CARD_HTML, CARD_JSON
    from tfx_pipeline.operations import history
    from tfx_pipeline.reporting.evaluation import overall_auc

    assert cold_run.returncode == 0, cold_run.stdout + cold_run.stderr
    metadata_path = str(workspace / "outputs" / "metadata.sqlite")
    first = history.pushes(metadata_path, "taxi")[0]  # the cold run's push
    version_dir = pathlib.Path(first.destination)
    card = json.loads((version_dir / CARD_JSON).read_text())
    assert card["not_recorded"] == [], card["not_recorded"]
    details = card["model_details"]
    assert details["version"] == int(version_dir.name) == first.version
    assert (details["pipeline_name"], details["model_name"]) == ("taxi", "taxi")
    assert details["pipeline_run_id"] == first.run
    pushed_at = datetime.datetime.fromtimestamp(first.version, datetime.UTC)
    assert details["pushed_at"] == pushed_at.strftime("%Y-%m-%dT%H:%M:%SZ")

    store = metadata.open_store(metadata_path)
    lineage = card["lineage"]
    assert lineage["model"] == first.model_id

    def artifact_of(artifact_id, node):
        (found,) = store.get_artifacts_by_id([artifact_id])
        execution, _ = metadata.producer(store, artifact_id)
        assert metadata.node_id(store, execution.id, "taxi") == node
        return found

    # Rows per split: what StatisticsGen counted, and what the run summary printed.
    statistics = artifact_of(lineage["statistics"], "StatisticsGen")
    counted = {}
    for split in ("train", "eval"):
        path = pathlib.Path(statistics.uri) / f"Split-{split}" / "FeatureStats.pb"
        stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(path.read_bytes())
        counted[split] = sum(d.num_examples for d in stats.datasets)
    data = card["training_data"]
    assert data["statistics"]["rows"] == counted
    printed = re.search(r"span 2: (\d+) rows \(train (\d+), eval (\d+)\)", cold_run.stdout)
    assert (data["statistics"]["total_rows"], counted["train"], counted["eval"]) == tuple(
        map(int, printed.groups())
    )
    assert data["spans"] == [2] and data["data_root"] == str(workspace / "data")
    assert data["statistics"]["date_range"]["min"] < data["statistics"]["date_range"]["max"]

    # The overall AUC: the Evaluator's own value, read back from its artifact.
    evaluation = artifact_of(lineage["evaluation"], "Evaluator")
    overall = card["evaluation"]["slices"][0]
    assert overall["slice"] == "overall"
    assert overall["metrics"]["auc"]["candidate"]["value"] == overall_auc(evaluation.uri)
    low, high = (overall["metrics"]["auc"]["candidate"][k] for k in ("low", "high"))
    assert low <= overall_auc(evaluation.uri) <= high
    assert card["evaluation"]["blessed"] is True and overall["verdict"] == "pass"
    # Every slice the judge could not judge is a known limit, with the judge's reason.
    limits = {(x["slice"], x["limit"]) for x in card["known_limits"]}
    for row in card["evaluation"]["slices"]:
        for check in row["checks"]:
            if check["verdict"] == "not judged":
                assert (row["slice"], check["note"]) in limits
    assert (
        None,
        "no earlier blessed model: the no-regression checks start with the next model",
    ) in limits

    # The hyperparameters: the Tuner's best, as the Trainer received them.
    tuned = artifact_of(lineage["hyperparameters"], "Tuner")
    best = json.loads((pathlib.Path(tuned.uri) / "best_hyperparameters.txt").read_text())
    assert card["hyperparameters"]["values"] == best["values"]
    assert card["infra_validation"]["blessed"] is True
    assert card["infra_validation"]["requests_checked"] == 100

    page = (version_dir / CARD_HTML).read_text()
    assert "Content-Security-Policy" in page and "<script" not in page
    assert f"Model card: taxi version {first.version}" in page
    assert history.main(["--output-dir", str(workspace / "outputs")]) == 0
    assert f"card: {version_dir / CARD_HTML}" in capsys.readouterr().out


def test_explain_names_the_reused_execution_and_the_changed_input(
    cached_run, new_span_run, workspace
):
    from tfx_pipeline import metadata

    assert cached_run[0].returncode == 0 and new_span_run[0].returncode == 0
    output_dir = workspace / "outputs"
    store = metadata.open_store(str(output_dir / "metadata.sqlite"))
    runs = metadata.run_contexts(store, "taxi")
    cold, cached = runs[0], runs[1]
    by_run = {run.name: metadata.run_executions(store, "taxi", run) for run in runs}
    cold_trainer = next(e for e in by_run[cold.name] if e.node_id == "Trainer")
    new_span = next(
        run
        for run in runs
        for e in by_run[run.name]
        if e.node_id == "CsvExampleGen"
        and e.state == "COMPLETE"
        and metadata.custom_property(e.outputs["examples"][0], "span") == 3
    )

    def explain(run, component):
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "tfx_pipeline.explain",
                "--output-dir",
                str(output_dir),
                "--run",
                run.name,
                component,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )

    trainer = explain(cached, "Trainer")
    assert trainer.returncode == 0, trainer.stderr
    assert trainer.stdout.startswith(f"Trainer came from cache in run {cached.name} (execution ")
    assert (
        f"same inputs and parameters as execution {cold_trainer.execution.id} (run {cold.name}, "
        in trainer.stdout
    )
    model = cold_trainer.outputs["model"][0]
    assert f"model: artifact {model.id}: Model  {model.uri}" in trainer.stdout

    transform = explain(new_span, "Transform")
    assert transform.returncode == 0, transform.stderr
    assert transform.stdout.startswith(f"Transform ran in run {new_span.name} (execution ")
    assert re.search(r"input examples: artifact \d+ -> artifact \d+", transform.stdout)
    assert "Examples, span 3, from CsvExampleGen (this run)" in transform.stdout
    example_gen = explain(new_span, "CsvExampleGen")
    assert "exec property span: 2 -> 3" in example_gen.stdout, example_gen.stdout

    unknown = explain(new_span, "NoSuchComponent")
    assert unknown.returncode == 2
    # In run order: the curated schema before ExampleGen, which parses columns by it.
    listed = unknown.stderr.split("its components are: ", 1)[1].strip().split(", ")
    assert listed[0] == "ImportSchemaGen", listed
    assert listed.index("CsvExampleGen") < listed.index("StatisticsGen") < listed.index("DataGate")
    assert listed[-1] == "Pusher", listed


@pytest.fixture(scope="module")
def portable_run(cold_run, tmp_path_factory):
    """The cold run's span (the same rows) through --beam-runner portable, into a new output.

    Only the Beam components matter here: no search (model defaults), a short training.
    """
    assert cold_run.returncode == 0
    root = tmp_path_factory.mktemp("e2e-portable")
    write_sample_spans(root / "data", {2: SAMPLE_ROWS[2]})
    flags = ["--no-tune", "--train-steps", "50", "--eval-steps", "5", "--min-auc", "0.6"]
    return run_pipeline(root, "--beam-runner", "portable", *flags), root


def component_log_windows(log_text):
    """Each component's lines of the run log, from "is running." to "is finished."."""
    windows, current = {}, None
    for line in log_text.splitlines():
        started = re.search(r"Component (\S+) is running\.$", line)
        if started:
            current = started.group(1)
            windows[current] = []
        elif current and re.search(rf"Component {current} is finished\.$", line):
            current = None
        elif current:
            windows[current].append(line)
    return windows


def test_portable_runner_runs_every_beam_component_on_its_sdk_workers(portable_run):
    from tfx_pipeline import node_ids
    from tfx_pipeline.runners import portable

    result, root = portable_run
    assert result.returncode == 0, result.stdout + result.stderr
    states = latest_run_states(root)
    for node in (*node_ids.BEAM_COMPONENTS, "Trainer", "InfraValidator", "Pusher"):
        assert states[node] == "COMPLETE", (node, states)
    # --no-tune with no earlier search: the resolver finds none and the Trainer takes the
    # model defaults; nothing is recorded as failed.
    assert states[node_ids.HYPERPARAMETERS_RESOLVER] == "COMPLETE", states
    assert "(hyperparameters: model defaults, no earlier search; cache on)" in result.stdout
    assert "Hyperparameters: model defaults: no earlier search found" in result.stdout
    assert "Pushed:          " in result.stdout and "Blessed:         yes" in result.stdout
    beam = re.search(
        r"^Beam: +PortableRunner, SDK worker processes from a worker pool \(pid \d+, (\S+); "
        r"its log: (\S+)\)$",
        result.stdout,
        re.MULTILINE,
    )
    assert beam, result.stdout
    address, pool_log = beam.group(1), pathlib.Path(beam.group(2))
    (log,) = (root / "outputs" / "logs").glob("run-*[0-9].log")
    windows = component_log_windows(log.read_text())
    # The job service in the driver asked the pool for SDK workers while each Beam component
    # ran, and only then; the pool started a worker process for each request.
    requests = {
        node: sum(f"worker_handlers: Requesting worker at {address}" in line for line in lines)
        for node, lines in windows.items()
    }
    assert {node for node, count in requests.items() if count} == set(node_ids.BEAM_COMPONENTS)
    assert portable.started_workers(pool_log) == sum(requests.values())


def test_portable_runner_writes_the_direct_runners_examples_and_statistics(
    portable_run, cold_run, workspace
):
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from tfx_pipeline import metadata

    def outputs_of(output_dir):
        """The first run's ExampleGen examples and StatisticsGen statistics folders."""
        store = metadata.open_store(str(output_dir / "metadata.sqlite"))
        first = metadata.run_contexts(store, "taxi")[0]
        by_node = {e.node_id: e for e in metadata.run_executions(store, "taxi", first)}
        return (
            pathlib.Path(by_node["CsvExampleGen"].outputs["examples"][0].uri),
            pathlib.Path(by_node["StatisticsGen"].outputs["statistics"][0].uri),
        )

    assert portable_run[0].returncode == 0 and cold_run.returncode == 0
    portable_examples, portable_statistics = outputs_of(portable_run[1] / "outputs")
    direct_examples, direct_statistics = outputs_of(workspace / "outputs")
    for split in ("train", "eval"):

        def records(examples_dir, split=split):
            files = sorted(str(p) for p in (examples_dir / f"Split-{split}").glob("*.gz"))
            return sorted(r.numpy() for r in tf.data.TFRecordDataset(files, "GZIP"))

        assert records(portable_examples) == records(direct_examples), split

        def statistics(statistics_dir, split=split):
            path = statistics_dir / f"Split-{split}" / "FeatureStats.pb"
            return json_format.MessageToDict(
                statistics_pb2.DatasetFeatureStatisticsList.FromString(path.read_bytes())
            )

        # Equal up to the order floating-point sums were taken in.
        assert_close(statistics(portable_statistics), statistics(direct_statistics), split)


def assert_close(found, expected, where):
    if isinstance(expected, float):
        assert math.isclose(found, expected, rel_tol=1e-9, abs_tol=1e-12), (where, found, expected)
    elif isinstance(expected, dict):
        assert found.keys() == expected.keys(), where
        for key in expected:
            assert_close(found[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(found) == len(expected), where
        for index, (item, other) in enumerate(zip(found, expected, strict=True)):
            assert_close(item, other, f"{where}[{index}]")
    else:
        assert found == expected, (where, found, expected)

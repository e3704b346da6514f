"""What the latest run did, read back from MLMD and the artifacts it wrote: the console summary.

`summarize_run` builds a RunSummary from the run's executions (tfx_pipeline.metadata) and the
artifacts they wrote; `format_summary` turns it into the lines the runner prints.
"""

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping

from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

from tfx_pipeline import metadata, node_ids
from tfx_pipeline.components.data_gate.gate import read_anomalies
from tfx_pipeline.metadata import custom_property
from tfx_pipeline.reporting import live_quality
from tfx_pipeline.reporting.evaluation import (
    CHANGE_RANGE,
    INTERVAL_NOTE,
    RATE_RANGE,
    Evaluation,
    SliceRow,
    format_estimate,
    read_evaluation,
)

Outputs = Mapping[str, Mapping[str, list]]
# Overall-slice metrics that are rates within [0, 1] (calibration is a ratio, the count a count).
RATE_METRICS = ("AUC", "BinaryAccuracy", "Precision", "Recall")


@dataclasses.dataclass
class RunSummary:
    """Everything the console summary prints about one pipeline run."""

    run_id: str
    states: dict[str, str] = dataclasses.field(default_factory=dict)
    spans: list[str] = dataclasses.field(default_factory=list)
    anomalies: list[str] | None = None
    gate: str | None = None  # the DataGate's verdict, from its report
    hyperparameters: dict[str, object] | None = None
    hyperparameters_origin: str = ""
    evaluation: Evaluation | None = None  # None when the Evaluator did not run
    blessed: bool | None = None
    infra_blessed: bool | None = None  # None when the InfraValidator did not run
    infra: str = ""  # what infra validation measured, or why it failed
    pushed_path: str | None = None
    push_note: str = ""
    # The served version on this run's span (reporting/live_quality.py); None when the Evaluator
    # did not finish or the summary was read without MLMD.
    live: live_quality.LiveQuality | None = None


def summarize_run(
    metadata_path: str, pipeline_name: str, live_max_auc_drop: float | None = None
) -> RunSummary | None:
    """Reads the latest run of `pipeline_name` from MLMD; None when nothing ran yet.

    `live_max_auc_drop`: the largest drop of the served version's live AUC not called
    significant; None takes the Evaluator's max_auc_drop.
    """
    found = metadata.latest_run_executions(metadata_path, pipeline_name)
    if found is None:
        return None
    summary = summarize(*found)
    summary.live = live_quality.for_run(
        metadata.open_store(metadata_path),
        pipeline_name,
        found[1],
        evaluation=summary.evaluation,
        max_drop=live_max_auc_drop,
    )
    return summary


def summarize(run_id: str, executions: list[metadata.NodeExecution]) -> RunSummary:
    """The summary of one run from its executions (`metadata.run_executions`)."""
    summary = RunSummary(run_id=run_id)
    outputs_by_node = {}
    inputs_by_node = {}
    for execution in executions:
        summary.states[execution.node_id] = execution.state
        outputs_by_node[execution.node_id] = execution.outputs
        inputs_by_node[execution.node_id] = execution.inputs

    _add_spans(summary, outputs_by_node)
    _add_anomalies(summary, outputs_by_node)
    _add_gate(summary, outputs_by_node)
    _add_hyperparameters(summary, outputs_by_node, inputs_by_node)
    _add_evaluation(summary, outputs_by_node)
    _add_infra_validation(summary, outputs_by_node)
    _add_push(summary, outputs_by_node)
    return summary


def _split_row_counts(statistics_uri: str) -> dict[str, int]:
    counts = {}
    for split in ("train", "eval"):
        path = os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb")
        if os.path.exists(path):
            stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(open(path, "rb").read())
            counts[split] = sum(d.num_examples for d in stats.datasets)
    return counts


def _add_spans(summary: RunSummary, outputs: Outputs) -> None:
    examples = outputs.get(node_ids.EXAMPLE_GEN, {}).get("examples", [])
    statistics = outputs.get(node_ids.STATISTICS_GEN, {}).get("statistics", [])
    counts = _split_row_counts(statistics[0].uri) if statistics else {}
    for artifact in examples:
        line = f"span {custom_property(artifact, 'span')}"
        if counts:
            line += (
                f": {sum(counts.values())} rows "
                f"(train {counts.get('train', 0)}, eval {counts.get('eval', 0)})"
            )
        summary.spans.append(line)


def _add_anomalies(summary: RunSummary, outputs: Outputs) -> None:
    artifacts = outputs.get(node_ids.EXAMPLE_VALIDATOR, {}).get("anomalies", [])
    if not artifacts:
        return
    found = []
    for split, anomalies in read_anomalies(artifacts[0].uri).items():
        for feature, info in sorted(anomalies.anomaly_info.items()):
            kinds = ", ".join(
                anomalies_pb2.AnomalyInfo.Type.Name(reason.type) for reason in info.reason
            )
            found.append(f"[{split}] {feature}: {kinds}: {info.description}")
        if anomalies.HasField("dataset_anomaly_info"):
            found.append(f"[{split}] dataset: {anomalies.dataset_anomaly_info.description}")
    summary.anomalies = found


def _add_gate(summary: RunSummary, outputs: Outputs) -> None:
    state = summary.states.get(node_ids.DATA_GATE)
    if state is None:
        return
    if state == "FAILED":
        summary.gate = "STOPPED the run: anomalies break the data policy (see the error below)"
        return
    reports = outputs.get(node_ids.DATA_GATE, {}).get("report", [])
    warned = 0
    if reports:
        path = os.path.join(reports[0].uri, "report.json")
        if os.path.exists(path):
            warned = sum(1 for f in json.load(open(path))["findings"] if f["action"] == "warn")
    summary.gate = "passed" + (f" with {warned} warnings (policy: warn)" if warned else "")


def _add_hyperparameters(
    summary: RunSummary,
    outputs: Outputs,
    inputs: Outputs,
) -> None:
    if node_ids.TRAINER not in inputs:
        return  # the run stopped before training
    # What the Trainer actually received; the Tuner or the resolver only explains its origin.
    artifacts = inputs.get(node_ids.TRAINER, {}).get("hyperparameters", [])
    if node_ids.TUNER in outputs:
        results = outputs[node_ids.TUNER].get("tuner_results", [])
        trials = []
        if results:
            path = os.path.join(results[0].uri, "tuner_results.json")
            if os.path.exists(path):
                trials = json.load(open(path))
        scores = [t["score"] for t in trials if t.get("score") is not None]
        summary.hyperparameters_origin = (
            f"searched in this run ({len(trials)} trials, best val AUC {max(scores):.4f})"
            if scores
            else "searched in this run"
        )
    elif node_ids.HYPERPARAMETERS_IMPORTER in outputs:
        imported = outputs[node_ids.HYPERPARAMETERS_IMPORTER].get("result", [])
        source = imported[0].uri if imported else "?"
        summary.hyperparameters_origin = f"imported from {source} (no search this run)"
    elif node_ids.HYPERPARAMETERS_RESOLVER in outputs:
        summary.hyperparameters_origin = (
            "reused from the latest search (pass --tune to search again)"
            if artifacts
            else "model defaults: no earlier search found"
        )
    else:
        return
    if artifacts:
        path = os.path.join(artifacts[0].uri, "best_hyperparameters.txt")
        if os.path.exists(path):
            summary.hyperparameters = json.load(open(path)).get("values", {})


def _add_evaluation(summary: RunSummary, outputs: Outputs) -> None:
    evaluator = outputs.get(node_ids.EVALUATOR, {})
    evaluation = evaluator.get("evaluation", [])
    blessing = evaluator.get("blessing", [])
    if evaluation:
        summary.evaluation = read_evaluation(evaluation[0].uri)
    if blessing:
        summary.blessed = custom_property(blessing[0], "blessed") == 1


def _add_infra_validation(summary: RunSummary, outputs: Outputs) -> None:
    blessings = outputs.get(node_ids.INFRA_VALIDATOR, {}).get("blessing", [])
    if not blessings:
        return
    blessing = blessings[0]
    summary.infra_blessed = custom_property(blessing, "blessed") == 1
    if not summary.infra_blessed:
        summary.infra = str(custom_property(blessing, "reason") or "see the InfraValidator's log")
        return
    path = os.path.join(blessing.uri, "infra_validation.json")
    result = json.load(open(path)) if os.path.exists(path) else {}
    parts = [f"loaded and answered {result.get('requests_checked', '?')} requests"]
    latency = result.get("latency_ms", {})
    if "candidate" in latency:
        p99 = f"p99 {latency['candidate']['p99_ms']:.1f} ms"
        if "baseline" in latency:
            p99 += f" (last blessed model {latency['baseline']['p99_ms']:.1f} ms)"
        parts.append(p99)
    if result.get("warmup_records"):
        parts.append(f"{result['warmup_records']} warmup requests")
    server = "python -m serving" if result.get("server") == "python" else result.get("server")
    summary.infra = f"on {server}: " + ", ".join(parts)


def _add_push(summary: RunSummary, outputs: Outputs) -> None:
    pushed = outputs.get(node_ids.PUSHER, {}).get("pushed_model", [])
    state = summary.states.get(node_ids.PUSHER)
    if not pushed:
        summary.push_note = "the Pusher did not run"
        return
    artifact = pushed[0]
    destination = custom_property(artifact, "pushed_destination")
    if custom_property(artifact, "pushed") == 1:
        summary.pushed_path = str(destination)
        if state == "CACHED":
            summary.push_note = "unchanged model: nothing new pushed, this version stays served"
    elif summary.infra_blessed is False:
        summary.push_note = "not pushed: the model failed infra validation"
    else:
        summary.push_note = "not pushed: the model was not blessed"


def format_summary(summary: RunSummary, max_slices: int = 12) -> Iterable[str]:
    """Human-readable lines of the run summary."""
    yield f"Data:            {'; '.join(summary.spans) or 'no examples ingested'}"
    if summary.anomalies is None:
        yield "Anomalies:       not checked (ExampleValidator did not run)"
    elif not summary.anomalies:
        yield "Anomalies:       none against the schema"
    else:
        yield f"Anomalies:       {len(summary.anomalies)} found"
        for anomaly in summary.anomalies:
            yield f"                 - {anomaly}"
    if summary.gate:
        yield f"Data gate:       {summary.gate}"
    if summary.hyperparameters_origin:
        values = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in sorted((summary.hyperparameters or {}).items())
        )
        yield f"Hyperparameters: {summary.hyperparameters_origin}"
        if values:
            yield f"                 {values}"
    evaluation = summary.evaluation or Evaluation()
    if evaluation.metrics:
        yield f"Evaluation (eval split, overall slice; {INTERVAL_NOTE}):"
        yield f"  {'metric':<16}{'candidate':>24}{'baseline':>26}  threshold"
        for row in evaluation.metrics:
            within = RATE_RANGE if row.name in RATE_METRICS else None
            yield (
                f"  {row.name:<16}{format_estimate(row.candidate, within=within):>24}"
                f"{format_estimate(row.baseline, within=within):>26}  {row.threshold or '-'}"
            )
        if evaluation.auc_change is not None:
            change = format_estimate(evaluation.auc_change, signed=True, within=CHANGE_RANGE)
            yield (
                f"  {'AUC change':<16}{change:>24}"
                f"{'':>26}  a drop fails only when the whole interval is below the limit"
            )
        if not evaluation.has_baseline:
            yield "  (no earlier blessed model: the no-regression check starts with the next model)"
        if evaluation.slice_metrics:
            yield "  AUC by slice (examples): verdict"
            for row in evaluation.slice_metrics[:max_slices]:
                yield "    " + slice_line(row)
            hidden = len(evaluation.slice_metrics) - max_slices
            if hidden > 0:
                yield f"    ... {hidden} more slices in the evaluation report"
    if summary.live is not None:
        yield live_quality.summary_line(summary.live)
    if summary.blessed is True:
        yield "Blessed:         yes, every threshold passed"
    elif summary.blessed is False:
        yield "Blessed:         NO"
        for reason in evaluation.blessing_reasons or ["see the Evaluator's validation result"]:
            yield f"                 - {reason}"
    if summary.infra_blessed is True:
        yield f"Infra validated: yes, {summary.infra}"
    elif summary.infra_blessed is False:
        yield "Infra validated: NO"
        for reason in summary.infra.split("; "):
            yield f"                 - {reason}"
    if summary.pushed_path:
        yield f"Pushed:          {summary.pushed_path}"
        if summary.push_note:
            yield f"                 ({summary.push_note})"
    else:
        yield f"Pushed:          nothing ({summary.push_note})"


def slice_line(row: SliceRow) -> str:
    """'payment_type=Cash    0.6100 [0.5800, 0.6400]  (719)  pass'."""
    if row.auc is None and row.example_count:
        shown = "n/a"
    else:
        gap = " vs " in row.name  # a cross-slice gap: a signed difference of two AUCs
        shown = format_estimate(row.auc, signed=gap, within=CHANGE_RANGE if gap else RATE_RANGE)
    count = f"({row.example_count})" if row.example_count else ""
    verdict = row.verdict + (f": {row.note}" if row.note else "")
    return f"{row.name:<40}{shown:>24}  {count:<8}{verdict}"

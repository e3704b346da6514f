"""What a run did, read back from MLMD and the artifacts it wrote: the console summary of a run."""

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping

import ml_metadata as mlmd
import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

from tfx_pipeline import pipeline as pipeline_lib
from tfx_pipeline.data_gate import read_anomalies
from tfx_pipeline.lineage import INPUT_EVENTS, OUTPUT_EVENTS, artifacts_by_key, custom_property

# Metrics shown for the overall slice, in this order, with the names TFMA stores them under.
SUMMARY_METRICS = (
    ("example_count", "ExampleCount"),
    ("auc", "AUC"),
    ("binary_accuracy", "BinaryAccuracy"),
    ("precision", "Precision"),
    ("recall", "Recall"),
    ("calibration", "Calibration"),
)
SLICE_METRIC = "auc"


@dataclasses.dataclass(frozen=True)
class MetricRow:
    name: str
    candidate: float | None
    baseline: float | None
    threshold: str


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
    metrics: list[MetricRow] = dataclasses.field(default_factory=list)
    # (slice, AUC or None where the slice holds one class only, example count)
    slice_metrics: list[tuple[str, float | None, int]] = dataclasses.field(default_factory=list)
    has_baseline: bool = False
    blessed: bool | None = None
    blessing_reasons: list[str] = dataclasses.field(default_factory=list)
    pushed_path: str | None = None
    push_note: str = ""
    # Every metric on every slice: (slice, metric, candidate, baseline, threshold, verdict).
    evaluation_rows: list[tuple[str, str, float | None, float | None, str, str]] = (
        dataclasses.field(default_factory=list)
    )


def open_store(metadata_path: str, read_only: bool = True) -> mlmd.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
        if read_only
        else metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    )
    return mlmd.MetadataStore(config)


def has_hyperparameters(metadata_path: str, pipeline_name: str) -> bool:
    """True when an earlier run of this pipeline produced tuned hyperparameters."""
    if not os.path.exists(metadata_path):
        return False
    store = open_store(metadata_path)
    pipeline_context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_context is None:
        return False
    return any(
        artifact.state == metadata_store_pb2.Artifact.LIVE
        for artifact in store.get_artifacts_by_context(pipeline_context.id)
        if store.get_artifact_types_by_id([artifact.type_id])[0].name == "HyperParameters"
    )


# Context types of a pipeline run and of one node's executions: TFX's IR-based orchestrators
# (local, Vertex) and its legacy launcher (AirflowDagRunner) name them differently.
RUN_CONTEXT_TYPES = ("pipeline_run", "run")


def node_id(store: mlmd.MetadataStore, execution_id: int, pipeline_name: str) -> str:
    for context in store.get_contexts_by_execution(execution_id):
        if context.type == "node" and context.name.startswith(pipeline_name + "."):
            return context.name[len(pipeline_name) + 1 :]
        if context.type == "component_run":  # <pipeline>.<run id>.<node id>
            return context.name.rsplit(".", 1)[-1]
    return "?"


def latest_run(store: mlmd.MetadataStore, pipeline_name: str) -> metadata_store_pb2.Context | None:
    """The newest run context that holds executions of this pipeline."""
    pipeline_context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_context is None:
        return None
    run_ids = {
        context.id
        for execution in store.get_executions_by_context(pipeline_context.id)
        for context in store.get_contexts_by_execution(execution.id)
        if context.type in RUN_CONTEXT_TYPES
    }
    runs = store.get_contexts_by_id(list(run_ids))
    return max(runs, key=lambda c: (c.create_time_since_epoch, c.id), default=None)


def summarize_run(metadata_path: str, pipeline_name: str) -> RunSummary | None:
    """Reads the latest run of `pipeline_name` from MLMD; None when nothing ran yet."""
    if not os.path.exists(metadata_path):
        return None
    store = open_store(metadata_path)
    run = latest_run(store, pipeline_name)
    if run is None:
        return None
    summary = RunSummary(run_id=run.name)
    outputs_by_node = {}
    inputs_by_node = {}
    for execution in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id):
        node = node_id(store, execution.id, pipeline_name)
        summary.states[node] = metadata_store_pb2.Execution.State.Name(execution.last_known_state)
        outputs_by_node[node] = artifacts_by_key(store, execution.id, OUTPUT_EVENTS)
        inputs_by_node[node] = artifacts_by_key(store, execution.id, INPUT_EVENTS)

    _add_spans(summary, outputs_by_node)
    _add_anomalies(summary, outputs_by_node)
    _add_gate(summary, outputs_by_node)
    _add_hyperparameters(summary, outputs_by_node, inputs_by_node)
    _add_evaluation(summary, outputs_by_node)
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


def _add_spans(summary: RunSummary, outputs: Mapping[str, Mapping[str, list]]) -> None:
    examples = outputs.get(pipeline_lib.EXAMPLE_GEN, {}).get("examples", [])
    statistics = outputs.get(pipeline_lib.STATISTICS_GEN, {}).get("statistics", [])
    counts = _split_row_counts(statistics[0].uri) if statistics else {}
    for artifact in examples:
        line = f"span {custom_property(artifact, 'span')}"
        if counts:
            line += (
                f": {sum(counts.values())} rows "
                f"(train {counts.get('train', 0)}, eval {counts.get('eval', 0)})"
            )
        summary.spans.append(line)


def _add_anomalies(summary: RunSummary, outputs: Mapping[str, Mapping[str, list]]) -> None:
    artifacts = outputs.get(pipeline_lib.EXAMPLE_VALIDATOR, {}).get("anomalies", [])
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


def _add_gate(summary: RunSummary, outputs: Mapping[str, Mapping[str, list]]) -> None:
    state = summary.states.get(pipeline_lib.DATA_GATE)
    if state is None:
        return
    if state == "FAILED":
        summary.gate = "STOPPED the run: anomalies break the data policy (see the error below)"
        return
    reports = outputs.get(pipeline_lib.DATA_GATE, {}).get("report", [])
    warned = 0
    if reports:
        path = os.path.join(reports[0].uri, "report.json")
        if os.path.exists(path):
            warned = sum(1 for f in json.load(open(path))["findings"] if f["action"] == "warn")
    summary.gate = "passed" + (f" with {warned} warnings (policy: warn)" if warned else "")


def _add_hyperparameters(
    summary: RunSummary,
    outputs: Mapping[str, Mapping[str, list]],
    inputs: Mapping[str, Mapping[str, list]],
) -> None:
    if pipeline_lib.TRAINER not in inputs:
        return  # the run stopped before training
    # What the Trainer actually received; the Tuner or the resolver only explains its origin.
    artifacts = inputs.get(pipeline_lib.TRAINER, {}).get("hyperparameters", [])
    if pipeline_lib.TUNER in outputs:
        results = outputs[pipeline_lib.TUNER].get("tuner_results", [])
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
    elif pipeline_lib.HYPERPARAMETERS_RESOLVER in outputs:
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


def _slice_name(slice_key: object) -> str:
    parts = []
    for single in slice_key.single_slice_keys:
        value = getattr(single, single.WhichOneof("kind"))
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        parts.append(f"{single.column}={value}")
    return ", ".join(parts) or "overall"


def _threshold_parts(threshold: object, change_suffix: str = "") -> list[str]:
    """A TFMA MetricThreshold as short texts: '>= 0.9', 'change >= -0.01'."""
    parts = []
    value = threshold.value_threshold
    if value.HasField("lower_bound"):
        parts.append(f">= {value.lower_bound.value:g}")
    if value.HasField("upper_bound"):
        parts.append(f"<= {value.upper_bound.value:g}")
    change = threshold.change_threshold
    if change.HasField("absolute"):
        parts.append(f"change >= {change.absolute.value:g}{change_suffix}")
    return parts


def _thresholds_text(eval_config: tfma.EvalConfig, metric_class: str) -> str:
    texts = []
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            if metric.class_name != metric_class:
                continue
            thresholds = [metric.threshold] if metric.HasField("threshold") else []
            thresholds += [t.threshold for t in metric.per_slice_thresholds]
            for threshold in thresholds:
                texts.extend(_threshold_parts(threshold, change_suffix=" vs baseline"))
    return ", ".join(texts)


def metric_values(evaluation_uri: str) -> dict[tuple[str, str, str], float]:
    """Every metric the Evaluator wrote, keyed by (slice, model name, metric name); no diffs."""
    values = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        slice_name = _slice_name(metrics.slice_key)
        for key_value in metrics.metric_keys_and_values:
            key = key_value.key
            if key.is_diff or not key_value.value.HasField("double_value"):
                continue
            values[(slice_name, key.model_name, key.name)] = key_value.value.double_value.value
    return values


def _add_evaluation(summary: RunSummary, outputs: Mapping[str, Mapping[str, list]]) -> None:
    evaluator = outputs.get(pipeline_lib.EVALUATOR, {})
    evaluation = evaluator.get("evaluation", [])
    blessing = evaluator.get("blessing", [])
    if not evaluation:
        return
    uri = evaluation[0].uri
    eval_config = _load_eval_config(uri)
    values = metric_values(uri)
    model_names = {model for _, model, _ in values}
    candidate = "candidate" if "candidate" in model_names else ""
    summary.has_baseline = "baseline" in model_names
    for name, metric_class in SUMMARY_METRICS:
        summary.metrics.append(
            MetricRow(
                name=metric_class,
                candidate=values.get(("overall", candidate, name)),
                baseline=values.get(("overall", "baseline", name)),
                threshold=_thresholds_text(eval_config, metric_class),
            )
        )
    for (slice_name, model, name), value in sorted(values.items()):
        if slice_name != "overall" and model == candidate and name == SLICE_METRIC:
            count = values.get((slice_name, model, "example_count"), 0)
            mean_label = values.get((slice_name, model, "mean_label"))
            one_class = mean_label is not None and mean_label in (0.0, 1.0)
            summary.slice_metrics.append((slice_name, None if one_class else value, int(count)))

    if blessing:
        summary.blessed = custom_property(blessing[0], "blessed") == 1
    validation = tfma.load_validation_result(uri)
    failed = set()
    for per_slice in validation.metric_validations_per_slice:
        slice_name = _slice_name(per_slice.slice_key)
        for failure in per_slice.failures:
            failed.add((slice_name, failure.metric_key.name))
            summary.blessing_reasons.append(
                f"{slice_name}: {failure.metric_key.name}"
                f"{' change vs baseline' if failure.metric_key.is_diff else ''} = "
                f"{failure.metric_value.double_value.value:.4f} fails "
                f"{_failure_threshold(failure.metric_threshold)}"
            )
    metric_classes = dict(SUMMARY_METRICS)
    for slice_name, model, name in sorted(values):
        if model != candidate:
            continue
        # Thresholds gate the overall slice only; a metric with one passed unless it failed.
        threshold = (
            _thresholds_text(eval_config, metric_classes.get(name, name))
            if slice_name == "overall"
            else ""
        )
        if (slice_name, name) in failed:
            verdict = "FAIL"
        else:
            verdict = "pass" if threshold else "-"
        summary.evaluation_rows.append(
            (
                slice_name,
                name,
                values[(slice_name, model, name)],
                values.get((slice_name, "baseline", name)),
                threshold or "-",
                verdict,
            )
        )
    if validation.missing_thresholds:
        summary.blessing_reasons.append("a metric with a threshold was not computed")
    for missing in validation.missing_slices:
        summary.blessing_reasons.append(f"slice {missing} with a threshold had no examples")


def _failure_threshold(threshold: object) -> str:
    return " and ".join(_threshold_parts(threshold)) or str(threshold).replace("\n", " ")


def _load_eval_config(uri: str) -> tfma.EvalConfig:
    path = os.path.join(uri, "eval_config.json")
    from google.protobuf import json_format

    data = json.load(open(path))
    return json_format.ParseDict(
        data.get("evalConfig", data), tfma.EvalConfig(), ignore_unknown_fields=True
    )


def _add_push(summary: RunSummary, outputs: Mapping[str, Mapping[str, list]]) -> None:
    pushed = outputs.get(pipeline_lib.PUSHER, {}).get("pushed_model", [])
    state = summary.states.get(pipeline_lib.PUSHER)
    if not pushed:
        summary.push_note = "the Pusher did not run"
        return
    artifact = pushed[0]
    destination = custom_property(artifact, "pushed_destination")
    if custom_property(artifact, "pushed") == 1:
        summary.pushed_path = str(destination)
        if state == "CACHED":
            summary.push_note = "unchanged model: nothing new pushed, this version stays served"
    else:
        summary.push_note = "not pushed: the model was not blessed"


def _format_value(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if float(value).is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:.4f}"


def evaluation_report(summary: RunSummary) -> str:
    """Every metric on every slice next to its threshold, the baseline's value and the verdict."""
    lines = [
        f"run {summary.run_id}: blessed = {summary.blessed}",
        *[f"  reason: {reason}" for reason in summary.blessing_reasons],
        "",
        f"{'slice':<40}{'metric':<18}{'candidate':>11}{'baseline':>11}  {'verdict':<8}threshold",
    ]
    for slice_name, name, value, baseline, threshold, verdict in summary.evaluation_rows:
        lines.append(
            f"{slice_name:<40}{name:<18}{_format_value(value):>11}{_format_value(baseline):>11}  "
            f"{verdict:<8}{threshold}"
        )
    return "\n".join(lines) + "\n"


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
    if summary.metrics:
        yield "Evaluation (eval split, overall slice):"
        yield f"  {'metric':<16}{'candidate':>11}{'baseline':>11}  threshold"
        for row in summary.metrics:
            yield (
                f"  {row.name:<16}{_format_value(row.candidate):>11}"
                f"{_format_value(row.baseline):>11}  {row.threshold or '-'}"
            )
        if not summary.has_baseline:
            yield "  (no earlier blessed model: the no-regression check starts with the next model)"
        if summary.slice_metrics:
            yield "  AUC by slice (examples):"
            for name, value, count in summary.slice_metrics[:max_slices]:
                shown = "n/a" if value is None else _format_value(value)
                note = ", one class only" if value is None else ""
                yield f"    {name:<40}{shown:>8}  ({count}{note})"
            hidden = len(summary.slice_metrics) - max_slices
            if hidden > 0:
                yield f"    ... {hidden} more slices in the evaluation artifact"
    if summary.blessed is True:
        yield "Blessed:         yes, every threshold passed"
    elif summary.blessed is False:
        yield "Blessed:         NO"
        for reason in summary.blessing_reasons or ["see the Evaluator's validation result"]:
            yield f"                 - {reason}"
    if summary.pushed_path:
        yield f"Pushed:          {summary.pushed_path}"
        if summary.push_note:
            yield f"                 ({summary.push_note})"
    else:
        yield f"Pushed:          nothing ({summary.push_note})"

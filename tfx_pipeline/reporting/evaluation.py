"""The Evaluator's output read back: every metric on every slice, its threshold and verdict.

Reads TFMA's ModelEvaluation artifact (metrics, validation result, the eval config it ran
with); used by the run summary, the evaluation report and the push history.
"""

import dataclasses
import json
import math
import os

import tensorflow_model_analysis as tfma
from google.protobuf import json_format

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
OVERALL = "overall"


@dataclasses.dataclass(frozen=True)
class MetricRow:
    name: str
    candidate: float | None
    baseline: float | None
    threshold: str


@dataclasses.dataclass
class Evaluation:
    """What one Evaluator execution found, for the summary and the report."""

    has_baseline: bool = False
    metrics: list[MetricRow] = dataclasses.field(default_factory=list)
    # (slice, AUC or None where the slice holds one class only, example count)
    slice_metrics: list[tuple[str, float | None, int]] = dataclasses.field(default_factory=list)
    blessing_reasons: list[str] = dataclasses.field(default_factory=list)
    # Every metric on every slice: (slice, metric, candidate, baseline, threshold, verdict).
    rows: list[tuple[str, str, float | None, float | None, str, str]] = dataclasses.field(
        default_factory=list
    )


def _slice_name(slice_key: object) -> str:
    parts = []
    for single in slice_key.single_slice_keys:
        value = getattr(single, single.WhichOneof("kind"))
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        parts.append(f"{single.column}={value}")
    return ", ".join(parts) or OVERALL


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
    """Every threshold the eval config sets on `metric_class`, as one text."""
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


def overall_auc(evaluation_uri: str) -> float | None:
    """The candidate's AUC on the overall slice."""
    values = metric_values(evaluation_uri)
    # The model is named "candidate" when a baseline was evaluated beside it.
    for model in ("candidate", ""):
        if (OVERALL, model, "auc") in values:
            return values[(OVERALL, model, "auc")]
    return None


def read_evaluation(uri: str) -> Evaluation:
    """The Evaluator's output at `uri` (its ModelEvaluation artifact) as an Evaluation."""
    evaluation = Evaluation()
    eval_config = _load_eval_config(uri)
    values = metric_values(uri)
    model_names = {model for _, model, _ in values}
    candidate = "candidate" if "candidate" in model_names else ""
    evaluation.has_baseline = "baseline" in model_names
    for name, metric_class in SUMMARY_METRICS:
        evaluation.metrics.append(
            MetricRow(
                name=metric_class,
                candidate=values.get((OVERALL, candidate, name)),
                baseline=values.get((OVERALL, "baseline", name)),
                threshold=_thresholds_text(eval_config, metric_class),
            )
        )
    for (slice_name, model, name), value in sorted(values.items()):
        if slice_name != OVERALL and model == candidate and name == SLICE_METRIC:
            count = values.get((slice_name, model, "example_count"), 0)
            mean_label = values.get((slice_name, model, "mean_label"))
            one_class = mean_label is not None and mean_label in (0.0, 1.0)
            evaluation.slice_metrics.append((slice_name, None if one_class else value, int(count)))

    validation = tfma.load_validation_result(uri)
    failed = set()
    for per_slice in validation.metric_validations_per_slice:
        slice_name = _slice_name(per_slice.slice_key)
        for failure in per_slice.failures:
            failed.add((slice_name, failure.metric_key.name))
            evaluation.blessing_reasons.append(
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
            if slice_name == OVERALL
            else ""
        )
        if (slice_name, name) in failed:
            verdict = "FAIL"
        else:
            verdict = "pass" if threshold else "-"
        evaluation.rows.append(
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
        evaluation.blessing_reasons.append("a metric with a threshold was not computed")
    for missing in validation.missing_slices:
        evaluation.blessing_reasons.append(f"slice {missing} with a threshold had no examples")
    return evaluation


def _failure_threshold(threshold: object) -> str:
    return " and ".join(_threshold_parts(threshold)) or str(threshold).replace("\n", " ")


def _load_eval_config(uri: str) -> tfma.EvalConfig:
    with open(os.path.join(uri, "eval_config.json")) as handle:
        data = json.load(handle)
    return json_format.ParseDict(
        data.get("evalConfig", data), tfma.EvalConfig(), ignore_unknown_fields=True
    )


def format_value(value: float | None) -> str:
    """A metric for people: '-' when missing, whole counts without decimals, else 4 places."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if float(value).is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:.4f}"


def evaluation_report(run_id: str, blessed: bool | None, evaluation: Evaluation) -> str:
    """Every metric on every slice next to its threshold, the baseline's value and the verdict."""
    lines = [
        f"run {run_id}: blessed = {blessed}",
        *[f"  reason: {reason}" for reason in evaluation.blessing_reasons],
        "",
        f"{'slice':<40}{'metric':<18}{'candidate':>11}{'baseline':>11}  {'verdict':<8}threshold",
    ]
    for slice_name, name, value, baseline, threshold, verdict in evaluation.rows:
        lines.append(
            f"{slice_name:<40}{name:<18}{format_value(value):>11}{format_value(baseline):>11}  "
            f"{verdict:<8}{threshold}"
        )
    return "\n".join(lines) + "\n"

"""TFMA's output for the judge and back: metrics with their intervals in, validation result out.

TFX-free. `read_slices` turns the Evaluator's metrics (every slice, candidate, baseline, the
difference, cross-slice gaps, each with TFMA's jackknife interval when computed) into the
judge's plain values; `validation_result` writes the judgement in TFMA's own format, so every
reader of `tfma.load_validation_result` keeps working; the judgement itself goes beside it as
JSON (`JUDGEMENT_FILE`) for the run summary and the evaluation report.
"""

import os

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import metrics_for_slice_pb2, validation_result_pb2

from tfx_pipeline.components.gated_evaluator import judge as judge_lib

JUDGEMENT_FILE = "blessing_judgement.json"
# Where TFMA writes its ValidationResult (one record) inside the evaluation folder.
VALIDATIONS_FILE = "validations.tfrecord"
AUC = "auc"
EXAMPLE_COUNT = "example_count"
MEAN_LABEL = "mean_label"
# TFMA names the models "candidate" and "baseline" when there is a baseline, else "".
CANDIDATE_NAMES = ("candidate", "")
BASELINE = "baseline"


def slice_name(slice_key: metrics_for_slice_pb2.SliceKey) -> str:
    """'overall', 'payment_type=Cash' or 'payment_type=Cash, trip_start_day=3'."""
    parts = []
    for single in slice_key.single_slice_keys:
        value = getattr(single, single.WhichOneof("kind"))
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        parts.append(f"{single.column}={value}")
    return ", ".join(parts) or judge_lib.OVERALL


def estimate(
    entry: "metrics_for_slice_pb2.MetricsForSlice.MetricKeyAndValue",
) -> judge_lib.Estimate | None:
    """A metric's value and, when TFMA computed one, its interval; None if not a number."""
    if not entry.value.HasField("double_value"):
        return None
    if not entry.HasField("confidence_interval"):
        return judge_lib.Estimate(entry.value.double_value.value)
    interval = entry.confidence_interval
    return judge_lib.Estimate(
        entry.value.double_value.value,
        interval.lower_bound.double_value.value,
        interval.upper_bound.double_value.value,
    )


def read_estimates(
    evaluation_uri: str,
) -> dict[tuple[str, str, str, bool], judge_lib.Estimate]:
    """Every numeric metric keyed by (slice, model name, metric name, is_diff).

    A cross-slice entry's slice is 'first vs second' with both slice names in full.
    """
    found = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.HasField("cross_slice_key"):
            key = metrics.cross_slice_key
            name = f"{slice_name(key.baseline_slice_key)} vs {slice_name(key.comparison_slice_key)}"
        else:
            name = slice_name(metrics.slice_key)
        for entry in metrics.metric_keys_and_values:
            value = estimate(entry)
            if value is not None:
                found[(name, entry.key.model_name, entry.key.name, entry.key.is_diff)] = value
    return found


def read_slices(
    evaluation_uri: str,
) -> tuple[dict[str, judge_lib.SliceMetrics], dict[tuple[str, str], judge_lib.Estimate]]:
    """The judge's input: every slice's AUC facts, and the AUC gaps TFMA computed across slices."""
    estimates = read_estimates(evaluation_uri)
    models = {model for _, model, _, _ in estimates}
    candidate = next((name for name in CANDIDATE_NAMES if name in models), "")
    slices, gaps = {}, {}
    for name in sorted({name for name, _, _, _ in estimates}):

        def get(metric: str, model: str = candidate, diff: bool = False, name: str = name):
            return estimates.get((name, model, metric, diff))

        if " vs " in name:
            if get(AUC) is not None:
                first, _, second = name.partition(" vs ")
                gaps[(first, second)] = get(AUC)
            continue
        count, mean_label = get(EXAMPLE_COUNT), get(MEAN_LABEL)
        slices[name] = judge_lib.SliceMetrics(
            name=name,
            example_count=int(count.value) if count else 0,
            mean_label=mean_label.value if mean_label else None,
            auc=get(AUC),
            baseline_auc=get(AUC, BASELINE),
            auc_change=get(AUC, diff=True),
        )
    return slices, gaps


def _slice_key(name: str) -> metrics_for_slice_pb2.SliceKey:
    key = metrics_for_slice_pb2.SliceKey()
    if name == judge_lib.OVERALL:
        return key
    for part in name.split(", "):
        column, _, value = part.partition("=")
        key.single_slice_keys.add(column=column, bytes_value=value.encode())
    return key


def validation_result(
    judgement: judge_lib.Judgement, has_baseline: bool
) -> validation_result_pb2.ValidationResult:
    """The judgement in TFMA's format: every failure with its threshold, value and reason."""
    result = validation_result_pb2.ValidationResult(validation_ok=judgement.blessed)
    result.rubber_stamp = not has_baseline
    candidate = "candidate" if has_baseline else ""
    for check in judgement.failures():
        failure = validation_result_pb2.ValidationFailure(message=check.reason())
        failure.metric_key.name = AUC
        failure.metric_key.model_name = candidate
        if check.value is not None:
            failure.metric_value.double_value.value = check.value.value
        threshold = failure.metric_threshold
        if check.rule in judge_lib.CHANGE_RULES:
            failure.metric_key.is_diff = True
            threshold.change_threshold.direction = tfma.MetricDirection.HIGHER_IS_BETTER
            threshold.change_threshold.absolute.value = check.bound
        elif check.rule == "slice_gaps":
            threshold.value_threshold.lower_bound.value = -check.bound
            threshold.value_threshold.upper_bound.value = check.bound
        else:
            threshold.value_threshold.lower_bound.value = check.bound
        if check.rule == "slice_gaps":
            first, _, second = check.slice.partition(" vs ")
            feature = first.partition("=")[0]
            per_slice = result.metric_validations_per_slice.add()
            per_slice.cross_slice_key.baseline_slice_key.CopyFrom(_slice_key(first))
            per_slice.cross_slice_key.comparison_slice_key.CopyFrom(
                _slice_key(f"{feature}={second}")
            )
        else:
            per_slice = result.metric_validations_per_slice.add()
            per_slice.slice_key.CopyFrom(_slice_key(check.slice))
        per_slice.failures.append(failure)
    return result


def write(evaluation_uri: str, judgement: judge_lib.Judgement, has_baseline: bool) -> None:
    """Replaces TFMA's validation result with the judgement's, and writes the judgement JSON."""
    for stale in tf.io.gfile.glob(os.path.join(evaluation_uri, "validations*")):
        tf.io.gfile.remove(stale)
    with tf.io.TFRecordWriter(os.path.join(evaluation_uri, VALIDATIONS_FILE)) as writer:
        writer.write(validation_result(judgement, has_baseline).SerializeToString())
    with tf.io.gfile.GFile(os.path.join(evaluation_uri, JUDGEMENT_FILE), "w") as handle:
        handle.write(judgement.to_json() + "\n")


def read_judgement(evaluation_uri: str) -> judge_lib.Judgement | None:
    """The judgement the GatedEvaluator wrote; None for an evaluation without one."""
    path = os.path.join(evaluation_uri, JUDGEMENT_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return judge_lib.Judgement.from_json(handle.read())

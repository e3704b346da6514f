"""The Evaluator's output read back: every metric on every slice, its interval, rule and verdict.

Reads the GatedEvaluator's ModelEvaluation artifact: TFMA's metrics (with their jackknife
intervals) and the blessing judgement written beside them (components/gated_evaluator); used by
the run summary, the evaluation report and the push history.
"""

import dataclasses
import math

from tfx_pipeline.components.gated_evaluator import results
from tfx_pipeline.components.gated_evaluator.judge import (
    FAIL,
    NOT_JUDGED,
    OVERALL,
    PASS,
    Check,
    Estimate,
    Judgement,
)

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
INTERVAL_NOTE = "[low, high]: 95% jackknife interval (TFMA)"


@dataclasses.dataclass(frozen=True)
class MetricRow:
    name: str
    candidate: Estimate | None
    baseline: Estimate | None
    threshold: str


@dataclasses.dataclass(frozen=True)
class SliceRow:
    """One slice's AUC facts and what the blessing rules made of them."""

    name: str
    example_count: int
    auc: Estimate | None  # None where the slice holds one class only (AUC undefined)
    baseline_auc: Estimate | None
    auc_change: Estimate | None
    verdict: str  # pass, FAIL, "not judged", or "-" where no rule gates the slice
    note: str = ""


@dataclasses.dataclass
class Evaluation:
    """What one Evaluator execution found, for the summary and the report."""

    has_baseline: bool = False
    metrics: list[MetricRow] = dataclasses.field(default_factory=list)
    auc_change: Estimate | None = None  # overall AUC, candidate - baseline
    slice_metrics: list[SliceRow] = dataclasses.field(default_factory=list)
    blessing_reasons: list[str] = dataclasses.field(default_factory=list)
    # Every metric on every slice: (slice, metric, candidate, baseline, threshold, verdict).
    rows: list[tuple[str, str, float | None, float | None, str, str]] = dataclasses.field(
        default_factory=list
    )
    judgement: Judgement | None = None


def metric_values(evaluation_uri: str) -> dict[tuple[str, str, str], float]:
    """Every metric the Evaluator wrote, keyed by (slice, model name, metric name); no diffs."""
    return {
        (slice_name, model, name): value.value
        for (slice_name, model, name, is_diff), value in results.read_estimates(
            evaluation_uri
        ).items()
        if not is_diff and " vs " not in slice_name
    }


def overall_auc(evaluation_uri: str) -> float | None:
    """The candidate's AUC on the overall slice."""
    values = metric_values(evaluation_uri)
    for model in results.CANDIDATE_NAMES:
        if (OVERALL, model, "auc") in values:
            return values[(OVERALL, model, "auc")]
    return None


def slice_verdict(checks: list[Check]) -> tuple[str, str]:
    """(verdict, note) of one slice from its checks: any failure fails it."""
    if not checks:
        return "-", ""
    failed = [c for c in checks if c.verdict == FAIL]
    if failed:
        return FAIL, "; ".join(f"{c.threshold}: {c.note}" for c in failed)
    if all(c.verdict == NOT_JUDGED for c in checks):
        return NOT_JUDGED, checks[0].note
    return PASS, ", ".join(c.threshold for c in checks)


def read_evaluation(uri: str) -> Evaluation:
    """The Evaluator's output at `uri` (its ModelEvaluation artifact) as an Evaluation."""
    estimates = results.read_estimates(uri)
    slices, _ = results.read_slices(uri)
    judgement = results.read_judgement(uri) or Judgement(has_baseline=False)
    models = {model for _, model, _, _ in estimates}
    candidate = next((m for m in results.CANDIDATE_NAMES if m in models), "")
    evaluation = Evaluation(has_baseline="baseline" in models, judgement=judgement)
    overall_checks = judgement.for_slice(OVERALL)
    overall_threshold = ", ".join(c.threshold for c in overall_checks)
    for name, metric_class in SUMMARY_METRICS:
        evaluation.metrics.append(
            MetricRow(
                name=metric_class,
                candidate=estimates.get((OVERALL, candidate, name, False)),
                baseline=estimates.get((OVERALL, "baseline", name, False)),
                threshold=overall_threshold if name == SLICE_METRIC else "",
            )
        )
    evaluation.auc_change = estimates.get((OVERALL, candidate, SLICE_METRIC, True))
    for name, metrics in sorted(slices.items()):
        if name == OVERALL:
            continue
        verdict, note = slice_verdict(judgement.for_slice(name))
        if verdict == "-" and metrics.one_class():
            note = "one class only"
        evaluation.slice_metrics.append(
            SliceRow(
                name=name,
                example_count=metrics.example_count,
                auc=None if metrics.one_class() else metrics.auc,
                baseline_auc=metrics.baseline_auc,
                auc_change=metrics.auc_change,
                verdict=verdict,
                note=note,
            )
        )
    evaluation.blessing_reasons = [check.reason() for check in judgement.failures()]
    gap_checks = [c for c in judgement.checks if c.rule == "slice_gaps"]
    for check in gap_checks:
        evaluation.slice_metrics.append(
            SliceRow(check.slice, 0, check.value, None, None, check.verdict, check.note)
        )

    for (slice_name, model, name, is_diff), value in sorted(estimates.items()):
        if model != candidate or is_diff or " vs " in slice_name:
            continue
        threshold, verdict = "-", "-"
        if name == SLICE_METRIC:
            checks = judgement.for_slice(slice_name)
            if checks:
                threshold = ", ".join(c.threshold for c in checks)
                verdict = {PASS: "pass", FAIL: "FAIL"}.get(slice_verdict(checks)[0], "-")
        baseline = estimates.get((slice_name, "baseline", name, False))
        evaluation.rows.append(
            (
                slice_name,
                name,
                value.value,
                baseline.value if baseline else None,
                threshold,
                verdict,
            )
        )
    return evaluation


def format_value(value: float | None) -> str:
    """A metric for people: '-' when missing, whole counts without decimals, else 4 places."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if float(value).is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:.4f}"


# What a rate (AUC, accuracy, precision, recall) or a change of one can be; jackknife intervals
# are t intervals and may reach past these on tiny or one-class slices.
RATE_RANGE = (0.0, 1.0)
CHANGE_RANGE = (-1.0, 1.0)


def format_estimate(
    value: Estimate | None, signed: bool = False, within: tuple[float, float] | None = None
) -> str:
    """'0.9123 [0.9011, 0.9234]'; a count or a value without interval as `format_value`.

    `within`: the metric's possible range; the interval is shown cut to it (the judge reads the
    interval as TFMA computed it, and cutting changes no verdict of a floor inside the range).
    """
    if value is None or math.isnan(value.value):
        return "-"
    if value.has_interval() and not float(value.value).is_integer():
        return value.text(signed=signed, within=within)
    return format_value(value.value)


def slice_table(evaluation: Evaluation) -> list[str]:
    """Every slice with its size, AUC interval (candidate, baseline, change) and verdict."""
    lines = [f"{'slice':<40}{'examples':>9}  {'auc':<25}{'baseline auc':<25}{'change':<28}verdict"]
    for row in evaluation.slice_metrics:
        auc = (
            "n/a"
            if row.auc is None and row.example_count
            else format_estimate(row.auc, within=RATE_RANGE)
        )
        count = str(row.example_count) if row.example_count else "-"
        verdict = row.verdict + (f": {row.note}" if row.note else "")
        lines.append(
            f"{row.name:<40}{count:>9}  {auc:<25}"
            f"{format_estimate(row.baseline_auc, within=RATE_RANGE):<25}"
            f"{format_estimate(row.auc_change, signed=True, within=CHANGE_RANGE):<28}{verdict}"
        )
    return lines


def evaluation_report(run_id: str, blessed: bool | None, evaluation: Evaluation) -> str:
    """The blessing's reasons, every slice's AUC interval and verdict, then every metric."""
    lines = [
        f"run {run_id}: blessed = {blessed}",
        *[f"  reason: {reason}" for reason in evaluation.blessing_reasons],
        "",
        f"AUC by slice ({INTERVAL_NOTE}; a slice or a drop fails only when its whole interval "
        "is past the threshold)",
    ]
    overall = next((m for m in evaluation.metrics if m.name == "AUC"), None)
    if overall is not None:
        verdict, note = slice_verdict(
            evaluation.judgement.for_slice(OVERALL) if evaluation.judgement else []
        )
        overall_row = SliceRow(
            OVERALL,
            int(evaluation.metrics[0].candidate.value) if evaluation.metrics[0].candidate else 0,
            overall.candidate,
            overall.baseline,
            evaluation.auc_change,
            verdict,
            note,
        )
        lines += slice_table(dataclasses.replace(evaluation, slice_metrics=[overall_row]))
        lines += slice_table(evaluation)[1:]
    lines += [
        "",
        f"{'slice':<40}{'metric':<18}{'candidate':>11}{'baseline':>11}  {'verdict':<8}threshold",
    ]
    for slice_name, name, value, baseline, threshold, verdict in evaluation.rows:
        lines.append(
            f"{slice_name:<40}{name:<18}{format_value(value):>11}{format_value(baseline):>11}  "
            f"{verdict:<8}{threshold}"
        )
    return "\n".join(lines) + "\n"

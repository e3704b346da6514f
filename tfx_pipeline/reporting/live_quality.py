"""Live quality: the served version's AUC and calibration on a newly labelled span, next to its evaluation AUC.

A span's tips are its labels, so when a new span lands the served version's quality on data it
never saw becomes measurable. Nothing is scored again for it: the GatedEvaluator scores the new
span's eval split with the candidate and with the baseline, the latest blessed model, which is
the served version. MLMD says whether it is: the baseline must be the version pushed last before
the Evaluator ran, and the span newer than every span that version was trained or evaluated on.
Then the baseline's AUC (with TFMA's jackknife interval) and its calibration histogram
(metrics/histogram_plots.py) on the new span are the served version's live quality, and its
evaluation AUC is the AUC it had as the candidate in the evaluation that blessed it.

A drop is significant when the whole 95% interval of live AUC - evaluation AUC lies below
-max_drop (by default the Evaluator's --max-auc-drop); the interval comes from the two jackknife
standard errors. Why, and how often it fires on noise: docs/operations.md#live-quality.
"""

import dataclasses
import math
from typing import Any

import tensorflow as tf

from tfx_pipeline import metadata, node_ids
from tfx_pipeline.components.gated_evaluator import results
from tfx_pipeline.components.gated_evaluator.judge import OVERALL, Estimate
from tfx_pipeline.reporting import evaluation_plots
from tfx_pipeline.reporting.evaluation import (
    RATE_RANGE,
    Evaluation,
    format_estimate,
    read_evaluation,
)

# The console summary's label; the watch loop relays the runner's line that starts with it
# (operations/watch.py RUNNER_LIVE_LABEL, held to this by a test).
LABEL = "Live:"
# TFMA's jackknife splits the examples into 20 buckets and reports a Student t interval with 19
# degrees of freedom (evaluators/jackknife.py, utils/math_util.py): its half-width is this
# quantile times the standard error. The change's interval uses it too, which is a little wider
# than the Welch degrees of freedom (19 to 38) would give: it errs against false alarms.
JACKKNIFE_T_QUANTILE = 2.093  # t(0.975, 19)
# The rule the judge writes for the overall no-regression check; its bound is -max_auc_drop.
MAX_AUC_DROP_RULE = "max_auc_drop"
EVALUATOR_STATES = ("COMPLETE", "CACHED")


@dataclasses.dataclass(frozen=True)
class Calibration:
    """How the predictions match the labels, over the calibration plot's equal-width buckets."""

    mean_prediction: float
    observed_rate: float  # positives / examples
    expected_calibration_error: float  # sum over buckets of share * |mean prediction - rate|


@dataclasses.dataclass(frozen=True)
class LiveQuality:
    """The served version on a newly labelled span, or why that was not measured in a run.

    Attributes:
      run: the run whose Evaluator it comes from.
      version: the version served when the Evaluator ran; None when nothing was served.
      spans: the spans the Evaluator scored (their eval split).
      note: why it was not measured; "" when it was.
      example_count: eval rows scored.
      auc: the served version's AUC on them, with its jackknife interval.
      calibration: its calibration on them.
      evaluated_auc: the AUC it had in the evaluation that blessed it (None if unreadable).
      evaluated_spans: the spans of that evaluation.
      change: auc - evaluated_auc, with its interval (see `change_between`).
      max_drop: the largest drop not alerted on.
      significant_drop: the whole interval of `change` lies below -max_drop.
      measured_in_run: with a cached Evaluator, the earlier run that scored the span.
    """

    run: str
    version: int | None
    spans: tuple[int, ...]
    note: str = ""
    example_count: int = 0
    auc: Estimate | None = None
    calibration: Calibration | None = None
    evaluated_auc: Estimate | None = None
    evaluated_spans: tuple[int, ...] = ()
    change: Estimate | None = None
    max_drop: float | None = None
    significant_drop: bool = False
    measured_in_run: str | None = None

    @property
    def measured(self) -> bool:
        return self.auc is not None

    @property
    def alert(self) -> bool:
        """A significant drop measured in this very run (a cached one was alerted on before)."""
        return self.significant_drop and self.measured_in_run is None


# --- the statistics ----------------------------------------------------------------------------


def standard_error(estimate: Estimate) -> float | None:
    """The jackknife standard error behind a TFMA interval; None without an interval."""
    if not estimate.has_interval():
        return None
    return (estimate.high - estimate.low) / (2 * JACKKNIFE_T_QUANTILE)


def change_between(live: Estimate, evaluated: Estimate) -> Estimate:
    """live - evaluated, with a 95% interval from the two standard errors.

    The two AUCs come from different spans' rows, so their errors are independent and the
    difference's standard error is the root of the sum of squares. No interval when either
    estimate has none.
    """
    difference = live.value - evaluated.value
    live_error, evaluated_error = standard_error(live), standard_error(evaluated)
    if live_error is None or evaluated_error is None:
        return Estimate(difference)
    half_width = JACKKNIFE_T_QUANTILE * math.hypot(live_error, evaluated_error)
    return Estimate(difference, difference - half_width, difference + half_width)


def is_significant_drop(change: Estimate, max_drop: float) -> bool:
    """True when the whole interval of the change lies below -max_drop; never without one."""
    return change.has_interval() and change.high < -max_drop


def calibration_of(points: list[tuple[float, float, float]]) -> Calibration | None:
    """Overall means and the expected calibration error of (mean prediction, rate, weight) buckets."""
    total = sum(weight for _, _, weight in points)
    if total <= 0:
        return None
    return Calibration(
        mean_prediction=sum(p * w for p, _, w in points) / total,
        observed_rate=sum(r * w for _, r, w in points) / total,
        expected_calibration_error=sum(w * abs(p - r) for p, r, w in points) / total,
    )


# --- reading it from MLMD and the Evaluator's output --------------------------------------------


def for_run(
    store: Any,
    pipeline_name: str,
    executions: list[metadata.NodeExecution],
    evaluation: Evaluation | None = None,
    max_drop: float | None = None,
) -> LiveQuality | None:
    """Live quality from one run's executions; None when its Evaluator did not finish.

    Args:
      store: the MLMD store.
      pipeline_name: the pipeline's MLMD name.
      executions: the run's executions (`metadata.run_executions`).
      evaluation: the run's Evaluation when the caller read it already (saves reading it again).
      max_drop: the largest drop not alerted on; None takes the Evaluator's max_auc_drop.
    """
    evaluator = next(
        (
            execution
            for execution in executions
            if execution.node_id == node_ids.EVALUATOR and execution.state in EVALUATOR_STATES
        ),
        None,
    )
    if evaluator is None:
        return None
    run = metadata.run_name(store, evaluator.execution.id)
    return measure(store, pipeline_name, run, evaluator, evaluation=evaluation, max_drop=max_drop)


def by_version(
    store: Any, pipeline_name: str, max_drop: float | None = None
) -> dict[int, list[LiveQuality]]:
    """Every live measurement of every served version, oldest first (cached repeats left out)."""
    pushes = metadata.pushed_models(store, pipeline_name)
    found: dict[int, list[LiveQuality]] = {}
    for evaluator in metadata.node_execution_records(store, pipeline_name, node_ids.EVALUATOR):
        if evaluator.state != "COMPLETE" or not evaluator.inputs.get("baseline_model"):
            continue
        run = metadata.run_name(store, evaluator.execution.id)
        live = measure(store, pipeline_name, run, evaluator, pushes=pushes, max_drop=max_drop)
        if live is not None and live.measured:
            found.setdefault(live.version, []).append(live)
    return found


def measure(
    store: Any,
    pipeline_name: str,
    run: str,
    evaluator: metadata.NodeExecution,
    pushes: list[metadata.PushRecord] | None = None,
    evaluation: Evaluation | None = None,
    max_drop: float | None = None,
) -> LiveQuality | None:
    """What one Evaluator execution says about the version served when it ran."""
    evaluations = evaluator.outputs.get("evaluation", [])
    if not evaluations:
        return None
    spans = _spans(evaluator.inputs.get("examples", []))
    started = evaluator.execution.create_time_since_epoch
    if pushes is None:
        pushes = metadata.pushed_models(store, pipeline_name)
    earlier = [push for push in pushes if push.pushed_at_millis < started]
    if not earlier:
        return LiveQuality(run, None, spans, note="nothing was served before this run")
    served = earlier[-1]

    def not_measured(note: str) -> LiveQuality:
        return LiveQuality(run, served.version, spans, note=note)

    blessed_on = _evaluation_of(store, served)
    evaluated_spans = _spans(_inputs_of(store, blessed_on).get("examples", []))
    trained = metadata.training_examples(store, served.model_id) if served.model_id else []
    trained_spans = _spans(trained)
    seen = trained_spans + evaluated_spans
    if not spans or (seen and max(spans) <= max(seen)):
        return not_measured(
            f"no newly labelled data for version {served.version}: it was trained on "
            f"{spans_text(trained_spans)} and evaluated on {spans_text(evaluated_spans)}, this "
            f"run scored {spans_text(spans)}"
        )
    baselines = evaluator.inputs.get("baseline_model", [])
    if not baselines:
        return not_measured(
            f"the Evaluator had no baseline model; version {served.version} was served"
        )
    baseline_versions = {p.version for p in earlier if p.model_id == baselines[0].id}
    if not baseline_versions:
        return not_measured(
            f"the Evaluator's baseline, model {baselines[0].id} (the latest blessed model), was "
            f"never pushed; version {served.version} was served"
        )
    if served.version not in baseline_versions:
        return not_measured(
            f"the Evaluator's baseline is version {max(baseline_versions)}, not the served "
            f"version {served.version}"
        )

    uri = evaluations[0].uri
    if evaluation is None:
        evaluation = read_evaluation(uri)
    rows = {row.name: row for row in evaluation.metrics}
    auc = rows["AUC"].baseline if "AUC" in rows else None
    if auc is None:
        return not_measured("the Evaluator computed no AUC for its baseline")
    count = rows["ExampleCount"].baseline if "ExampleCount" in rows else None
    if max_drop is None:
        max_drop = _max_auc_drop(evaluation)
    overall = evaluation_plots.read_plots(uri, model=results.BASELINE).get(OVERALL)
    evaluated_auc = _candidate_auc(blessed_on.uri) if blessed_on is not None else None
    change = change_between(auc, evaluated_auc) if evaluated_auc is not None else None
    measured_in_run = None
    if evaluator.state == "CACHED":
        first = metadata.first_producer(store, evaluations[0].id)
        measured_in_run = metadata.run_name(store, first.id) if first else "?"
    return LiveQuality(
        run=run,
        version=served.version,
        spans=spans,
        example_count=int(count.value) if count is not None else 0,
        auc=auc,
        calibration=calibration_of(overall.calibration) if overall else None,
        evaluated_auc=evaluated_auc,
        evaluated_spans=evaluated_spans,
        change=change,
        max_drop=max_drop,
        significant_drop=(
            change is not None and max_drop is not None and is_significant_drop(change, max_drop)
        ),
        measured_in_run=measured_in_run,
    )


def _spans(examples: list[metadata.Artifact]) -> tuple[int, ...]:
    found = (metadata.custom_property(artifact, "span") for artifact in examples)
    return tuple(sorted({int(span) for span in found if span is not None}))


def _evaluation_of(store: Any, push: metadata.PushRecord) -> metadata.Artifact | None:
    """The ModelEvaluation that blessed a pushed version, when its files are still there."""
    if push.blessing_id is None:
        return None
    found = metadata.evaluation_of_blessing(store, push.blessing_id)
    return found if found is not None and tf.io.gfile.exists(found.uri) else None


def _inputs_of(store: Any, artifact: metadata.Artifact | None) -> dict[str, list[Any]]:
    return metadata.producer(store, artifact.id)[1] if artifact is not None else {}


def _candidate_auc(evaluation_uri: str) -> Estimate | None:
    estimates = results.read_estimates(evaluation_uri)
    for model in results.CANDIDATE_NAMES:
        if (OVERALL, model, results.AUC, False) in estimates:
            return estimates[(OVERALL, model, results.AUC, False)]
    return None


def _max_auc_drop(evaluation: Evaluation) -> float | None:
    """The Evaluator's max_auc_drop, from the judgement it wrote (the check's bound is -drop)."""
    checks = evaluation.judgement.for_slice(OVERALL) if evaluation.judgement else []
    bounds = [check.bound for check in checks if check.rule == MAX_AUC_DROP_RULE]
    return -bounds[0] if bounds else None


# --- for people ----------------------------------------------------------------------------------


def spans_text(spans: tuple[int, ...]) -> str:
    """'span 3', 'spans 2, 3' or 'no span'."""
    if not spans:
        return "no span"
    return ("span " if len(spans) == 1 else "spans ") + ", ".join(map(str, spans))


def verdict(live: LiveQuality) -> str:
    """'no significant drop (limit 0.01)', 'SIGNIFICANT DROP: ...', or why it was not judged."""
    if live.change is None:
        return "not judged: no evaluation AUC to compare with"
    if not live.change.has_interval():
        return "not judged: no interval"
    if live.max_drop is None:
        return "not judged: the Evaluator recorded no max_auc_drop"
    if live.significant_drop:
        return f"SIGNIFICANT DROP: the whole interval is below -{live.max_drop:g}"
    return f"no significant drop (limit {live.max_drop:g})"


def describe(live: LiveQuality, with_version: bool = True) -> str:
    """One line: version, span, rows, live and evaluation AUC, the change, its verdict, calibration."""
    if not live.measured:
        return f"not measured: {live.note}"
    head = f"version {live.version} on " if with_version else "on "
    parts = [
        f"{head}{spans_text(live.spans)} ({live.example_count:,} rows): "
        f"AUC {format_estimate(live.auc, within=RATE_RANGE)}"
    ]
    if live.evaluated_auc is not None:
        parts[0] += (
            f", evaluated {format_estimate(live.evaluated_auc, within=RATE_RANGE)} "
            f"on {spans_text(live.evaluated_spans)}"
        )
    if live.change is not None:
        parts.append(f"change {live.change.text(signed=True)}: {verdict(live)}")
    else:
        parts.append(verdict(live))
    if live.calibration is not None:
        calibration = live.calibration
        parts.append(
            f"calibration: mean prediction {calibration.mean_prediction:.3f}, observed "
            f"{calibration.observed_rate:.3f} (ECE {calibration.expected_calibration_error:.3f})"
        )
    text = "; ".join(parts)
    if live.measured_in_run is not None:
        text += f" (from cache: measured in run {live.measured_in_run})"
    return text


def summary_line(live: LiveQuality) -> str:
    """The run summary's line: 'Live:            version 3 on span 4 (2,400 rows): ...'."""
    return f"{LABEL:<17}{describe(live)}"

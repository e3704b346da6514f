"""Live quality: the served version on a newly labelled span, its significance rule, and where it shows.

The MLMD stores are written as TFX's local runner records them (tests/.../test_explain.py's
Recorder); each evaluation is TFMA's own output files (metrics and plots protos) and the judge's
JSON, written directly with chosen values.
"""

import dataclasses
import math
import pathlib
import time

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2
from tensorflow_model_analysis.proto import metrics_for_slice_pb2

from tests.tfx_pipeline.reporting.test_explain import Recorder
from tfx_pipeline import metadata
from tfx_pipeline.components.gated_evaluator import judge
from tfx_pipeline.components.gated_evaluator.judge import OVERALL, Estimate
from tfx_pipeline.operations import watch
from tfx_pipeline.reporting import live_quality, run_summary
from tfx_pipeline.reporting.live_quality import (
    JACKKNIFE_T_QUANTILE,
    Calibration,
    LiveQuality,
    change_between,
    is_significant_drop,
)
from tfx_pipeline.reporting.run_report import evaluation as evaluation_section
from tfx_pipeline.reporting.run_report.facts import read_facts

Execution = metadata_store_pb2.Execution
PIPELINE = "taxi"


def tfma_estimate(value: float, standard_error: float) -> Estimate:
    """An AUC as TFMA's jackknife reports it: a t interval, 19 degrees of freedom."""
    half = JACKKNIFE_T_QUANTILE * standard_error
    return Estimate(value, value - half, value + half)


# --- the significance rule ----------------------------------------------------------------------


def test_the_standard_error_is_read_back_from_tfmas_interval():
    assert live_quality.standard_error(tfma_estimate(0.9, 0.012)) == pytest.approx(0.012)
    assert live_quality.standard_error(Estimate(0.9)) is None


def test_the_change_has_the_interval_of_a_difference_of_independent_estimates():
    change = change_between(tfma_estimate(0.90, 0.03), tfma_estimate(0.93, 0.04))
    assert change.value == pytest.approx(-0.03)
    # Standard errors add in squares: 0.03 and 0.04 make 0.05.
    assert (change.low, change.high) == pytest.approx(
        (-0.03 - JACKKNIFE_T_QUANTILE * 0.05, -0.03 + JACKKNIFE_T_QUANTILE * 0.05)
    )
    assert not change_between(Estimate(0.9), tfma_estimate(0.93, 0.01)).has_interval()


def test_a_drop_is_significant_only_when_its_whole_interval_is_below_the_limit():
    clear_drop = change_between(tfma_estimate(0.85, 0.01), tfma_estimate(0.93, 0.01))
    assert clear_drop.high < -0.01
    assert is_significant_drop(clear_drop, max_drop=0.01)
    # The same drop with a limit its interval reaches: not significant.
    assert not is_significant_drop(clear_drop, max_drop=-clear_drop.high + 0.001)
    noisy_drop = change_between(tfma_estimate(0.88, 0.03), tfma_estimate(0.93, 0.03))
    assert noisy_drop.value < -0.01 < noisy_drop.high
    assert not is_significant_drop(noisy_drop, max_drop=0.01)
    gain = change_between(tfma_estimate(0.95, 0.01), tfma_estimate(0.93, 0.01))
    assert not is_significant_drop(gain, max_drop=0.0)
    # Without an interval nothing is called significant, however large the drop.
    assert not is_significant_drop(Estimate(-0.3), max_drop=0.01)


def rank_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC (continuous scores: no ties)."""
    ranks = np.empty(len(scores))
    ranks[np.argsort(scores)] = np.arange(1, len(scores) + 1)
    positives = labels.sum()
    negatives = len(labels) - positives
    return (ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)


def jackknife_auc(labels, scores, rng, buckets: int = 20) -> Estimate:
    """AUC with TFMA's interval: 20 random buckets, delete-one pseudo-values, t with 19 df."""
    bucket = rng.integers(0, buckets, len(labels))
    point = rank_auc(labels, scores)
    samples = np.array([rank_auc(labels[bucket != b], scores[bucket != b]) for b in range(buckets)])
    pseudo = point * buckets - samples * (buckets - 1)
    error = pseudo.std(ddof=1) / math.sqrt(buckets)
    mean = samples.mean()
    return Estimate(point, mean - JACKKNIFE_T_QUANTILE * error, mean + JACKKNIFE_T_QUANTILE * error)


def scored_span(rng, rows: int, separation: float):
    """Labels (a quarter positive) and scores whose classes lie `separation` apart."""
    labels = (rng.random(rows) < 0.25).astype(int)
    return labels, rng.normal(separation * labels, 1.0)


def alarm_rate(
    rng, live_separation: float, max_drop: float, rows: int = 600, trials: int = 300
) -> float:
    """How often the rule fires when the served model (AUC about 0.90 when evaluated) scores a
    new span on which its classes lie `live_separation` apart (1.8: no change)."""
    alarms = 0
    for _ in range(trials):
        evaluated = jackknife_auc(*scored_span(rng, rows, 1.8), rng)
        live = jackknife_auc(*scored_span(rng, rows, live_separation), rng)
        alarms += is_significant_drop(change_between(live, evaluated), max_drop)
    return alarms / trials


def test_the_rule_rarely_alarms_on_noise_and_catches_a_real_drop():
    """Spans of 600 eval rows, as the e2e sample's; the docs' table has 1,000 trials of each."""
    rng = np.random.default_rng(17)
    # No drop tolerated at all: a one-sided test at 2.5% (1.9% measured over 1,000 spans).
    assert alarm_rate(rng, live_separation=1.8, max_drop=0.0) <= 0.04
    # With the default limit noise alarms less still (1.1% measured).
    assert alarm_rate(rng, live_separation=1.8, max_drop=0.01) <= 0.03
    # AUC falling from about 0.90 to 0.80 is caught nearly every time at 2,000 rows.
    assert alarm_rate(rng, 1.2, max_drop=0.01, rows=2000, trials=40) >= 0.95


def test_calibration_is_summed_over_the_buckets_by_weight():
    calibration = live_quality.calibration_of([(0.1, 0.0, 30.0), (0.5, 0.6, 10.0)])
    assert calibration.mean_prediction == pytest.approx((0.1 * 30 + 0.5 * 10) / 40)
    assert calibration.observed_rate == pytest.approx(6 / 40)
    assert calibration.expected_calibration_error == pytest.approx((30 * 0.1 + 10 * 0.1) / 40)
    assert live_quality.calibration_of([]) is None


# --- the lines people read ----------------------------------------------------------------------

MEASURED = LiveQuality(
    run="run-2",
    version=1796150279,
    spans=(4,),
    example_count=2400,
    auc=Estimate(0.91234, 0.8912, 0.9334),
    calibration=Calibration(0.4102, 0.3899, 0.0312),
    evaluated_auc=Estimate(0.9341, 0.9201, 0.9481),
    evaluated_spans=(3,),
    change=Estimate(-0.0218, -0.0470, 0.0034),
    max_drop=0.01,
)


def test_the_summary_line_names_version_spans_both_aucs_the_verdict_and_calibration():
    assert live_quality.summary_line(MEASURED) == (
        "Live:            version 1796150279 on span 4 (2,400 rows): AUC 0.9123 [0.8912, 0.9334], "
        "evaluated 0.9341 [0.9201, 0.9481] on span 3; change -0.0218 [-0.0470, +0.0034]: "
        "no significant drop (limit 0.01); calibration: mean prediction 0.410, observed 0.390 "
        "(ECE 0.031)"
    )
    dropped = dataclasses.replace(
        MEASURED, change=Estimate(-0.06, -0.09, -0.03), significant_drop=True
    )
    assert (
        "change -0.0600 [-0.0900, -0.0300]: SIGNIFICANT DROP: the whole interval is below -0.01;"
        in (live_quality.describe(dropped))
    )
    assert dropped.alert
    cached = dataclasses.replace(dropped, measured_in_run="run-1")
    assert live_quality.describe(cached).endswith(" (from cache: measured in run run-1)")
    assert not cached.alert, "a cached measurement was alerted on when it was made"
    not_measured = LiveQuality("run-1", None, (2,), note="nothing was served before this run")
    assert live_quality.summary_line(not_measured) == (
        "Live:            not measured: nothing was served before this run"
    )


def test_the_run_summary_prints_the_line_after_the_evaluation():
    summary = run_summary.RunSummary(run_id="run-2", blessed=True, live=MEASURED)
    lines = list(run_summary.format_summary(summary))
    assert live_quality.summary_line(MEASURED) in lines
    assert lines.index(live_quality.summary_line(MEASURED)) < lines.index(
        "Blessed:         yes, every threshold passed"
    )
    assert not any(
        line.startswith("Live:") for line in run_summary.format_summary(run_summary.RunSummary("r"))
    )


def test_the_watch_loop_relays_the_runners_live_line(tmp_path):
    assert watch.RUNNER_LIVE_LABEL == live_quality.LABEL
    output = tmp_path / "watch-cycle-2.txt"
    output.write_text(
        "Summary (run took 80 s)\nData:            span 4: 2400 rows\n"
        + live_quality.summary_line(MEASURED)
        + "\nBlessed:         yes, every threshold passed\n"
    )
    assert watch.live_line(output) == "Live: " + live_quality.describe(MEASURED)
    output.write_text("Summary (run took 3 s)\nData:            no examples ingested\n")
    assert watch.live_line(output) is None
    assert watch.live_line(tmp_path / "missing.txt") is None


# --- read from MLMD and the Evaluator's files ---------------------------------------------------


def write_evaluation(
    uri: str,
    candidate_auc: Estimate,
    baseline_auc: Estimate | None = None,
    examples: int = 600,
    max_auc_drop: float = 0.01,
    calibration: tuple[tuple[float, float, float, float], ...] = (),
) -> None:
    """An Evaluator's output: the overall slice's metrics, the baseline's calibration plot, the
    judgement (its no-regression check holds the Evaluator's max_auc_drop).

    calibration: (bucket lower bound, examples, positives, summed predictions) of the baseline.
    """
    has_baseline = baseline_auc is not None
    metrics = metrics_for_slice_pb2.MetricsForSlice()
    metrics.slice_key.SetInParent()
    models = {"candidate" if has_baseline else "": candidate_auc}
    if has_baseline:
        models["baseline"] = baseline_auc
    for model, auc in models.items():
        for name, value in (("auc", auc), ("example_count", Estimate(examples))):
            entry = metrics.metric_keys_and_values.add()
            entry.key.name, entry.key.model_name = name, model
            entry.value.double_value.value = value.value
            if value.has_interval():
                entry.confidence_interval.lower_bound.double_value.value = value.low
                entry.confidence_interval.upper_bound.double_value.value = value.high
    plots = metrics_for_slice_pb2.PlotsForSlice()
    plots.slice_key.SetInParent()
    if calibration:
        entry = plots.plot_keys_and_values.add()
        entry.key.name, entry.key.model_name = "calibration_histogram", "baseline"
        for lower, count, positives, predictions in calibration:
            entry.value.calibration_histogram_buckets.buckets.add(
                lower_threshold_inclusive=lower,
                upper_threshold_exclusive=lower + 1e-4,
                num_weighted_examples={"value": count},
                total_weighted_label={"value": positives},
                total_weighted_refined_prediction={"value": predictions},
            )
    with tf.io.TFRecordWriter(f"{uri}/metrics-00000-of-00001.tfrecord") as writer:
        writer.write(metrics.SerializeToString())
    with tf.io.TFRecordWriter(f"{uri}/plots-00000-of-00001.tfrecord") as writer:
        writer.write(plots.SerializeToString())
    checks = [judge.Check(OVERALL, "min_auc", "auc", 0.6, judge.PASS, candidate_auc, examples)]
    if has_baseline:
        checks.append(judge.Check(OVERALL, "max_auc_drop", judge.CHANGE, -max_auc_drop, judge.PASS))
    judgement = judge.Judgement(has_baseline=has_baseline, checks=checks)
    pathlib.Path(uri, "blessing_judgement.json").write_text(judgement.to_json())


class Pipeline:
    """Runs recorded as the pipeline's: ExampleGen -> Trainer -> Evaluator -> Pusher."""

    def __init__(self, recorder: Recorder):
        self.recorder = recorder
        self.version = 1796150000

    def run(
        self,
        name: str,
        span: int,
        candidate_auc: Estimate,
        baseline=None,
        baseline_auc: Estimate | None = None,
        push: bool = True,
        evaluator=None,
        **evaluation,
    ) -> dict:
        """One run; `baseline` is an earlier run's dict; `evaluator` an earlier run's to reuse
        from cache. Returns its artifacts."""
        recorder = self.recorder
        # MLMD stamps times in milliseconds: keep runs apart.
        time.sleep(0.01)
        recorder.start_run(name)
        examples = recorder.artifact("Examples", span=span)
        recorder.execute("CsvExampleGen", outputs={"examples": [examples]})
        model = recorder.artifact("Model")
        recorder.execute("Trainer", inputs={"examples": [examples]}, outputs={"model": [model]})
        inputs = {"examples": [examples], "model": [model]}
        if evaluator is not None:
            inputs = evaluator["evaluator_inputs"]
            outputs = evaluator["evaluator_outputs"]
            recorder.execute("Evaluator", Execution.CACHED, inputs=inputs, outputs=outputs)
            return {**evaluator, "run": name}
        if baseline is not None:
            inputs["baseline_model"] = [baseline["model"]]
        evaluation_artifact = recorder.artifact("ModelEvaluation")
        blessing = recorder.artifact("ModelBlessing")
        write_evaluation(evaluation_artifact.uri, candidate_auc, baseline_auc, **evaluation)
        outputs = {"evaluation": [evaluation_artifact], "blessing": [blessing]}
        recorder.execute("Evaluator", inputs=inputs, outputs=outputs)
        pushed = recorder.artifact("PushedModel")
        pushed.custom_properties["pushed"].int_value = int(push)
        if push:
            self.version += 100
            pushed.custom_properties["pushed_version"].string_value = str(self.version)
            pushed.custom_properties["pushed_destination"].string_value = f"/srv/{self.version}"
        recorder.store.put_artifacts([pushed])
        recorder.execute(
            "Pusher",
            inputs={"model": [model], "model_blessing": [blessing]},
            outputs={"pushed_model": [pushed]},
        )
        return {
            "run": name,
            "model": model,
            "version": self.version if push else None,
            "evaluator_inputs": inputs,
            "evaluator_outputs": outputs,
        }

    def live(self, run: str, max_drop: float | None = None) -> LiveQuality | None:
        store = self.recorder.store
        context = metadata.find_run(store, PIPELINE, run)
        return live_quality.for_run(
            store, PIPELINE, metadata.run_executions(store, PIPELINE, context), max_drop=max_drop
        )


# The served version: AUC 0.93 on span 2 when blessed; its calibration histogram on span 3.
EVALUATED = tfma_estimate(0.93, 0.010)
CALIBRATION = ((0.1, 300.0, 30.0, 36.0), (0.6, 100.0, 70.0, 62.0))


@pytest.fixture
def pipeline(tmp_path):
    pipeline = Pipeline(Recorder(tmp_path / "outputs"))
    pipeline.first = pipeline.run("run-1", span=2, candidate_auc=EVALUATED)
    return pipeline


def test_the_first_run_has_nothing_served_to_measure(pipeline):
    live = pipeline.live("run-1")
    assert (live.version, live.spans, live.measured) == (None, (2,), False)
    assert live.note == "nothing was served before this run"


@pytest.mark.parametrize(
    ("live_auc", "significant"),
    [(tfma_estimate(0.85, 0.010), True), (tfma_estimate(0.91, 0.012), False)],
)
def test_a_new_span_measures_the_served_version_against_its_evaluation(
    pipeline, live_auc, significant
):
    first = pipeline.first
    pipeline.run(
        "run-2",
        span=3,
        candidate_auc=tfma_estimate(0.94, 0.01),
        baseline=first,
        baseline_auc=live_auc,
        examples=400,
        calibration=CALIBRATION,
    )
    live = pipeline.live("run-2")
    assert live.measured and live.note == ""
    assert (live.version, live.spans, live.evaluated_spans) == (first["version"], (3,), (2,))
    assert live.example_count == 400
    assert live.auc == live_auc
    assert live.evaluated_auc.value == pytest.approx(EVALUATED.value)
    assert live.change == change_between(live_auc, live.evaluated_auc)
    assert live.max_drop == 0.01  # the Evaluator's, from its judgement
    assert live.significant_drop is significant and live.alert is significant
    assert live.calibration.mean_prediction == pytest.approx(98 / 400)
    assert live.calibration.observed_rate == pytest.approx(100 / 400)
    # Buckets 0.1 and 0.6 of 20: mean predictions 0.12 and 0.62, positive rates 0.1 and 0.7.
    assert live.calibration.expected_calibration_error == pytest.approx(
        (300 * 0.02 + 100 * 0.08) / 400
    )
    # A limit given by the caller wins over the Evaluator's.
    assert not pipeline.live("run-2", max_drop=0.2).significant_drop


def test_a_baseline_that_was_never_pushed_is_not_the_served_version(pipeline):
    first = pipeline.first
    blessed_not_pushed = pipeline.run(
        "run-2", span=3, candidate_auc=EVALUATED, baseline=first, baseline_auc=EVALUATED, push=False
    )
    pipeline.run(
        "run-3",
        span=4,
        candidate_auc=EVALUATED,
        baseline=blessed_not_pushed,
        baseline_auc=tfma_estimate(0.7, 0.01),
    )
    live = pipeline.live("run-3")
    assert not live.measured and not live.significant_drop
    assert live.version == first["version"]
    assert live.note == (
        f"the Evaluator's baseline, model {blessed_not_pushed['model'].id} (the latest blessed "
        f"model), was never pushed; version {first['version']} was served"
    )


def test_a_span_the_served_version_has_seen_is_no_new_labelled_data(pipeline):
    first = pipeline.first
    pipeline.run("run-2", span=2, candidate_auc=EVALUATED)
    live = pipeline.live("run-2")
    assert not live.measured
    assert live.note == (
        f"no newly labelled data for version {first['version']}: it was trained on span 2 and "
        "evaluated on span 2, this run scored span 2"
    )


def test_a_cached_evaluator_repeats_the_measurement_without_alerting_again(pipeline):
    first = pipeline.first
    measuring = pipeline.run(
        "run-2",
        span=3,
        candidate_auc=EVALUATED,
        baseline=first,
        baseline_auc=tfma_estimate(0.85, 0.01),
        push=False,
    )
    pipeline.run("run-3", span=3, candidate_auc=EVALUATED, evaluator=measuring)
    fresh, cached = pipeline.live("run-2"), pipeline.live("run-3")
    assert fresh.alert and fresh.measured_in_run is None
    assert cached.significant_drop and cached.measured_in_run == "run-2"
    assert not cached.alert
    # The history lists each measurement once, under the version measured.
    by_version = live_quality.by_version(pipeline.recorder.store, PIPELINE)
    assert [live.run for live in by_version[first["version"]]] == ["run-2"]
    assert list(by_version) == [first["version"]]


def test_a_run_whose_evaluator_did_not_run_has_no_live_line(pipeline):
    pipeline.recorder.start_run("run-2")
    pipeline.recorder.execute("CsvExampleGen", Execution.FAILED)
    assert pipeline.live("run-2") is None


def test_the_run_report_shows_the_live_block(pipeline):
    pipeline.run(
        "run-2",
        span=3,
        candidate_auc=EVALUATED,
        baseline=pipeline.first,
        baseline_auc=tfma_estimate(0.85, 0.01),
        calibration=CALIBRATION,
    )
    store = pipeline.recorder.store
    facts = read_facts(store, PIPELINE, metadata.find_run(store, PIPELINE, "run-2"))
    html = evaluation_section.evaluation_section(facts)
    assert "Live quality of the served version" in html and 'id="live-quality"' in html
    assert "0.8500 [0.8291, 0.8709]" in html
    assert "SIGNIFICANT DROP" in html and "0.9300 [0.9091, 0.9509] on span 2" in html
    facts.live_max_auc_drop = 0.5
    assert "no significant drop (limit 0.5)" in evaluation_section.evaluation_section(facts)
    first = read_facts(store, PIPELINE, metadata.find_run(store, PIPELINE, "run-1"))
    assert "Not measured: nothing was served before this run." in (
        evaluation_section.evaluation_section(first)
    )


def test_the_history_lists_each_versions_live_auc_under_it(pipeline, capsys):
    from tfx_pipeline.operations import history

    pipeline.run(
        "run-2",
        span=3,
        candidate_auc=EVALUATED,
        baseline=pipeline.first,
        baseline_auc=tfma_estimate(0.91, 0.01),
    )
    output_dir = pipeline.recorder.output_dir
    first, second = history.pushes(str(output_dir / "metadata.sqlite"), PIPELINE)
    assert [live.spans for live in first.live] == [(3,)]
    assert second.live == ()
    assert history.main(["--output-dir", str(output_dir)]) == 0
    assert (
        "live: on span 3 (600 rows): AUC 0.9100 [0.8891, 0.9309], evaluated 0.9300 "
        "[0.9091, 0.9509] on span 2; change -0.0200 [-0.0496, +0.0096]: no significant drop"
    ) in capsys.readouterr().out

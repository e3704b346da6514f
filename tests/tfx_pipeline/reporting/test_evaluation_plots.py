"""The report's ROC and calibration readers, on a real TFMA run of the pipeline's eval config."""

import math

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_model_analysis.proto import metrics_for_slice_pb2

from tests.tfx_pipeline.metrics.test_histogram_plots import (
    pipeline_eval_config,
    run_tfma,
    write_scored_examples,
)
from tfx_pipeline.components.gated_evaluator import results
from tfx_pipeline.reporting import evaluation_plots


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    """(the evaluation folder of a candidate and a baseline, the examples' columns)."""
    from tfx_pipeline import config as config_lib

    tmp_path = tmp_path_factory.mktemp("evaluation")
    config = config_lib.PipelineConfig(
        pipeline_name="t",
        pipeline_root=str(tmp_path / "root"),
        data_root=str(tmp_path),
        serving_model_dir=str(tmp_path / "serving"),
        metadata_path=None,
        schema_path=None,
        module_fingerprint="0",
    )
    path = str(tmp_path / "examples.tfrecord")
    columns = write_scored_examples(path)
    return run_tfma(pipeline_eval_config(config), path, str(tmp_path / "output")), columns


def rows_of(columns, slice_name):
    if slice_name == "overall":
        return np.ones(len(columns["label"]), bool)
    return columns["payment_type"] == slice_name.partition("=")[2]


def rank_auc(labels, scores):
    """The probability that a positive outscores a negative, ties counting half."""
    positives, negatives = scores[labels == 1], scores[labels == 0]
    wins = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return (wins + 0.5 * ties) / (len(positives) * len(negatives))


def area(points):
    x, y = np.array(points).T
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def test_every_slice_of_the_candidate_is_read_by_its_name(evaluation):
    output, _ = evaluation
    plots = evaluation_plots.read_plots(output)
    assert set(plots) == {
        "overall",
        "payment_type=Cash",
        "payment_type=Credit Card",
        "payment_type=Dispute",
    }


@pytest.mark.parametrize("name", ["overall", "payment_type=Cash", "payment_type=Credit Card"])
def test_the_roc_area_is_the_auc_tfma_reports(evaluation, name):
    output, columns = evaluation
    plots = evaluation_plots.read_plots(output)[name]
    estimates = results.read_estimates(output)
    candidate = estimates[(name, "candidate", "auc", False)].value
    baseline = estimates[(name, "baseline", "auc", False)].value
    assert plots.auc == candidate
    assert abs(candidate - baseline) > 0.1, "the test must tell the two models apart"
    roc = plots.roc
    assert roc[0] == (0.0, 0.0) and roc[-1] == (1.0, 1.0)
    assert roc == sorted(roc)
    assert len(roc) > 50
    # The ROC is the AUC's own: its area is the AUC, to float rounding.
    assert area(roc) == pytest.approx(candidate, abs=1e-9)
    # And the model's: examples tie within the AUC's 1e-4 wide buckets only.
    rows = rows_of(columns, name)
    assert area(roc) == pytest.approx(
        rank_auc(columns["label"][rows], columns["candidate"][rows]), abs=1e-3
    )


@pytest.mark.parametrize("name", ["overall", "payment_type=Cash", "payment_type=Dispute"])
def test_calibration_is_twenty_equal_width_buckets_of_the_candidates_scores(evaluation, name):
    output, columns = evaluation
    plots = evaluation_plots.read_plots(output)[name]
    rows = rows_of(columns, name)
    scores = columns["candidate"][rows].astype(np.float64)
    labels = columns["label"][rows]
    bucket = np.minimum(np.floor(scores * 20).astype(int), 19)
    expected = [
        (scores[bucket == b].mean(), labels[bucket == b].mean(), float((bucket == b).sum()))
        for b in range(20)
        if (bucket == b).any()
    ]
    assert len(plots.calibration) == len(expected) <= 20
    for read, wanted in zip(plots.calibration, expected, strict=True):
        assert list(read) == pytest.approx(list(wanted), rel=1e-6)


def test_the_baselines_plots_are_read_when_asked(evaluation):
    """Live quality reads the baseline's calibration: the served version's on the new span."""
    output, columns = evaluation
    plots = evaluation_plots.read_plots(output, model="baseline")["overall"]
    scores, labels = columns["baseline"].astype(np.float64), columns["label"]
    bucket = np.minimum(np.floor(scores * 20).astype(int), 19)
    expected = [
        (scores[bucket == b].mean(), labels[bucket == b].mean(), float((bucket == b).sum()))
        for b in range(20)
        if (bucket == b).any()
    ]
    assert len(plots.calibration) == len(expected)
    for read, wanted in zip(plots.calibration, expected, strict=True):
        assert list(read) == pytest.approx(list(wanted), rel=1e-6)
    baseline_auc = results.read_estimates(output)[("overall", "baseline", "auc", False)].value
    assert plots.auc == baseline_auc != evaluation_plots.read_plots(output)["overall"].auc
    assert evaluation_plots.read_plots(output, model="no-such-model") == {}


def test_a_slice_of_one_class_has_calibration_but_no_roc(evaluation):
    output, _ = evaluation
    plots = evaluation_plots.read_plots(output)["payment_type=Dispute"]
    assert plots.roc == [] and plots.auc is None  # TFMA's AUC is 0 here
    assert plots.calibration and all(rate == 0 for _, rate, _ in plots.calibration)


def histogram_of(*buckets):
    proto = metrics_for_slice_pb2.CalibrationHistogramBuckets()
    for lower, upper, examples, labels, predictions in buckets:
        proto.buckets.add(
            lower_threshold_inclusive=lower,
            upper_threshold_exclusive=upper,
            num_weighted_examples={"value": examples},
            total_weighted_label={"value": labels},
            total_weighted_refined_prediction={"value": predictions},
        )
    return proto


def matrices_of(*counts):
    proto = metrics_for_slice_pb2.ConfusionMatrixAtThresholds()
    for threshold, (tp, fp, tn, fn) in enumerate(counts):
        proto.matrices.add(
            threshold=threshold / 10,
            true_positives=tp,
            false_positives=fp,
            true_negatives=tn,
            false_negatives=fn,
        )
    return proto


def test_the_roc_runs_from_all_positive_to_none_in_order():
    matrices = matrices_of((2, 4, 0, 0), (2, 1, 3, 0), (1, 1, 3, 1), (0, 0, 4, 2))
    assert evaluation_plots.roc_points(matrices) == [
        (0.0, 0.0),
        (0.25, 0.5),
        (0.25, 1.0),
        (1.0, 1.0),
    ]


def test_a_slice_of_one_class_or_no_matrices_has_no_roc():
    assert evaluation_plots.roc_points(matrices_of((0, 4, 0, 0), (0, 0, 4, 0))) == []
    assert evaluation_plots.roc_points(matrices_of()) == []


def test_the_reader_reads_the_plots_the_metric_writes():
    from tfx_pipeline.metrics import histogram_plots

    assert evaluation_plots.CONFUSION_MATRICES_PLOT == histogram_plots.CONFUSION_MATRICES_PLOT
    assert evaluation_plots.CALIBRATION_PLOT == histogram_plots.CALIBRATION_PLOT


def test_predictions_outside_0_1_go_to_the_end_buckets():
    histogram = histogram_of(
        (-math.inf, 0.0, 1.0, 0.0, -0.25),
        (0.0499, 0.05, 1.0, 0.0, 0.0499),
        (0.05, 0.0501, 1.0, 1.0, 0.05),
        (0.15, 0.1501, 1.0, 1.0, 0.15),
        (1.0, math.inf, 2.0, 2.0, 2.0),
    )
    points = evaluation_plots.calibration_points(histogram)
    assert [value for point in points for value in point] == pytest.approx(
        [-0.10005, 0.0, 2.0, 0.05, 1.0, 1.0, 0.15, 1.0, 1.0, 1.0, 1.0, 2.0]
    )


def test_an_evaluation_without_plots_has_none(tmp_path):
    """An evaluation written before the Evaluator recorded plots: TFMA's plots file, empty."""
    plots = metrics_for_slice_pb2.PlotsForSlice()
    with tf.io.TFRecordWriter(str(tmp_path / "plots-00000-of-00001.tfrecord")) as writer:
        writer.write(plots.SerializeToString())
    assert evaluation_plots.read_plots(str(tmp_path)) == {}

"""HistogramPlots writes AUC's matrices and histogram as plots, from AUC's histogram, changing no metric."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import calibration_histogram, metric_specs, metric_types
from tensorflow_model_analysis.utils import config_util

from tests.tfx_pipeline.metrics.test_auc import histogram_of
from tfx_pipeline import pipeline as pipeline_lib
from tfx_pipeline.metrics import auc, histogram_plots

PAYMENT_TYPES = ("Cash", "Credit Card", "Dispute")


def write_scored_examples(path: str, size: int = 600, seed: int = 5) -> dict[str, np.ndarray]:
    """Examples with a label, two models' scores and a payment type; returns the columns.

    The candidate separates the classes well, the baseline barely; `Dispute` holds negatives
    only (a slice without an ROC curve).
    """
    rng = np.random.default_rng(seed)
    payment = rng.choice(PAYMENT_TYPES, size, p=[0.45, 0.45, 0.1])
    label = ((rng.random(size) < 0.35) & (payment != "Dispute")).astype(np.int64)
    candidate = np.float32(np.clip(0.5 * label + 0.5 * rng.random(size), 0.0, 1.0))
    baseline = np.float32(np.clip(0.1 * label + 0.9 * rng.random(size), 0.0, 1.0))
    # A few scores on the histogram's edges and ends.
    candidate[:4] = [0.0, 1.0, 0.05, 0.15]
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(size):
            feature = {
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label[i]])),
                "candidate": tf.train.Feature(float_list=tf.train.FloatList(value=[candidate[i]])),
                "baseline": tf.train.Feature(float_list=tf.train.FloatList(value=[baseline[i]])),
                "payment_type": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[payment[i].encode()])
                ),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    return {"label": label, "candidate": candidate, "baseline": baseline, "payment_type": payment}


def pipeline_eval_config(config, with_plots: bool = True) -> tfma.EvalConfig:
    """The pipeline's eval config (metrics, slices, jackknife) on scores stored in the examples."""
    eval_config = pipeline_lib.eval_config(config)
    del eval_config.model_specs[:]
    eval_config.model_specs.add(name="candidate", label_key="label", prediction_key="candidate")
    eval_config.model_specs.add(
        name="baseline", label_key="label", prediction_key="baseline", is_baseline=True
    )
    if not with_plots:
        metrics = eval_config.metrics_specs[0].metrics
        kept = [m for m in metrics if m.class_name != histogram_plots.HistogramPlots.__name__]
        assert len(kept) == len(metrics) - 1, "the pipeline computes the plots"
        del metrics[:]
        metrics.extend(kept)
    return eval_config


def run_tfma(eval_config: tfma.EvalConfig, data_location: str, output_path: str) -> str:
    tfma.run_model_analysis(
        eval_config=eval_config,
        data_location=data_location,
        output_path=output_path,
        random_seed_for_testing=9,
    )
    return output_path


def test_the_plots_read_the_histogram_auc_builds(config):
    """One histogram per model for AUC, the other metrics and the plots: no extra combiner."""
    # As TFMA's evaluator sees it: every metrics spec names the models it applies to.
    eval_config = config_util.update_eval_config_with_defaults(
        pipeline_eval_config(config), has_baseline=True
    )
    computations = metric_specs.to_computations(eval_config.metrics_specs, eval_config=eval_config)
    combiners = {c for c in computations if isinstance(c, metric_types.MetricComputation)}
    assert len(combiners) == 2  # candidate and baseline
    plots = [c for c in computations if isinstance(c, metric_types.CIDerivedMetricComputation)]
    assert {key.model_name for c in plots for key in c.keys} == {"candidate", "baseline"}


def test_the_plots_change_no_metric_and_no_interval(config, tmp_path):
    path = str(tmp_path / "examples.tfrecord")
    write_scored_examples(path)
    outputs = {}
    for with_plots in (True, False):
        eval_config = pipeline_eval_config(config, with_plots)
        # A slice gap, as --max-slice-auc-gap asks: its cross-slice entry has no histogram.
        eval_config.cross_slicing_specs.add(
            baseline_spec=tfma.SlicingSpec(feature_values={"payment_type": "Cash"}),
            slicing_specs=[tfma.SlicingSpec(feature_values={"payment_type": "Credit Card"})],
        )
        outputs[with_plots] = run_tfma(eval_config, path, str(tmp_path / str(with_plots)))

    def metrics(output: str) -> dict[bytes, bytes]:
        return {
            m.slice_key.SerializeToString() + m.cross_slice_key.SerializeToString(): (
                m.SerializeToString()
            )
            for m in tfma.load_metrics(output)
        }

    found = metrics(outputs[True])
    assert len(found) == 5  # overall, three payment types and the gap
    assert found == metrics(outputs[False])
    plots = list(tfma.load_plots(outputs[True]))
    assert [p.HasField("cross_slice_key") for p in plots if p.plot_keys_and_values] == [False] * 4
    assert {
        (entry.key.name, entry.key.model_name)
        for slice_plots in plots
        for entry in slice_plots.plot_keys_and_values
    } == {
        (plot, model)
        for plot in (histogram_plots.CONFUSION_MATRICES_PLOT, histogram_plots.CALIBRATION_PLOT)
        for model in ("candidate", "baseline")
    }
    assert not [p for p in tfma.load_plots(outputs[False]) if p.plot_keys_and_values]


def test_the_histogram_is_written_with_every_non_empty_bucket_and_its_bounds():
    n = calibration_histogram.DEFAULT_NUM_BUCKETS
    histogram = [
        calibration_histogram.Bucket(0, 0.0, -0.5, 1.0),  # a prediction below 0
        calibration_histogram.Bucket(1, 1.0, 0.00002, 2.0),
        calibration_histogram.Bucket(5000, 0.0, 0.0, 0.0),  # no examples: left out
        calibration_histogram.Bucket(7501, 3.0, 3 * 0.75, 4.0),
        calibration_histogram.Bucket(n + 1, 1.0, 1.0, 1.0),  # a prediction of 1
    ]
    proto = histogram_plots.calibration_proto(histogram)
    assert [
        (
            b.lower_threshold_inclusive,
            b.upper_threshold_exclusive,
            b.num_weighted_examples.value,
            b.total_weighted_label.value,
            b.total_weighted_refined_prediction.value,
        )
        for b in proto.buckets
    ] == [
        (-math.inf, 0.0, 1.0, 0.0, -0.5),
        (0.0, 1 / n, 2.0, 1.0, 0.00002),
        (0.75, 7501 / n, 4.0, 3.0, 2.25),
        (1.0, math.inf, 1.0, 1.0, 1.0),
    ]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_confusion_matrices_are_the_aucs_where_they_change(seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random(400) < 0.3).astype(float)
    # Clustered scores, many tied within a bucket, as a model's below 0.001.
    predictions = np.clip(0.4 * labels + rng.choice([0.0, 0.00005, 0.3, 0.6], 400), 0.0, 1.0)
    histogram = histogram_of(labels, predictions, np.ones(400))
    tfma_matrices = auc.confusion_matrices(histogram)
    proto = histogram_plots.confusion_matrices_proto(histogram)
    kept = [m.threshold for m in proto.matrices]
    assert 2 < len(kept) < 100  # the points where the curve moves, not 10,000 thresholds
    assert kept[0] == tfma_matrices.thresholds[0] and kept[-1] == tfma_matrices.thresholds[-1]
    written = {m.threshold: m for m in proto.matrices}
    last = None
    for i, threshold in enumerate(tfma_matrices.thresholds):
        counts = tuple(float(getattr(tfma_matrices, name)[i]) for name in ("tp", "fp", "tn", "fn"))
        if threshold in written:
            m = written[threshold]
            last = (m.true_positives, m.false_positives, m.true_negatives, m.false_negatives)
        assert counts == last, threshold  # a left-out threshold has the last kept one's counts
    # The trapezoid area under the written (fpr, recall) points is TFMA's AUC.
    x = np.array([m.false_positive_rate for m in proto.matrices])[::-1]
    y = np.array([m.recall for m in proto.matrices])[::-1]
    area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))
    assert area == pytest.approx(auc.auc_from_histogram(histogram), abs=1e-12)


def test_a_cross_slice_comparison_gets_no_plot():
    """A cross-slice entry holds differences of metrics, no histogram to plot."""
    computations = histogram_plots.HistogramPlots().computations()
    (plot,) = [c for c in computations if isinstance(c, metric_types.CIDerivedMetricComputation)]
    histogram_key = computations[0].keys[0]
    assert plot.result({metric_types.MetricKey("auc"): 0.1}) == {}
    histogram = [calibration_histogram.Bucket(1, 1.0, 0.0, 2.0)]
    assert list(plot.result({histogram_key: histogram})) == plot.keys

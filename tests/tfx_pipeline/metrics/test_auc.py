"""HistogramAUC is TFMA's AUC bit for bit, value and jackknife interval, without its matrices."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import (
    binary_confusion_matrices,
    calibration_histogram,
    confusion_matrix_metrics,
    metric_types,
)

from tfx_pipeline.metrics import auc, histogram_metrics

NUM_BUCKETS = calibration_histogram.DEFAULT_NUM_BUCKETS


def histogram_of(labels, predictions, weights):
    """The histogram TFMA's combiner builds (fractional labels: a 0 part and a 1 part)."""
    buckets = {}
    for label, prediction, weight in zip(labels, predictions, weights, strict=True):
        index = prediction * NUM_BUCKETS + 1
        index = 0 if index < 0 else NUM_BUCKETS + 1 if index >= NUM_BUCKETS + 1 else int(index)
        for part_label, part_weight in ((0.0, weight * (1 - label)), (1.0, weight * label)):
            if part_weight == 0:
                continue
            bucket = buckets.setdefault(index, calibration_histogram.Bucket(index, 0.0, 0.0, 0.0))
            bucket.weighted_labels += part_label * part_weight
            bucket.weighted_predictions += prediction * part_weight
            bucket.weighted_examples += part_weight
    return [buckets[index] for index in sorted(buckets)]


def tfma_auc_and_matrices(histogram):
    """TFMA's own AUC computations run on `histogram`."""
    computations = confusion_matrix_metrics.AUC().computations()
    metrics = {computations[0].keys[0]: histogram}
    derived = [c for c in computations if isinstance(c, metric_types.DerivedMetricComputation)]
    for computation in derived:
        metrics.update(computation.result(metrics))
    matrices = next(
        v for v in metrics.values() if isinstance(v, binary_confusion_matrices.Matrices)
    )
    return metrics[derived[-1].keys[0]], matrices


def random_histogram(rng, kind, size):
    labels = (rng.random(size) < rng.random()).astype(float)
    predictions = np.clip(0.5 * labels * rng.random() + 0.6 * rng.random(size), 0.0, 1.0)
    weights = np.ones(size)
    if kind == "fractional labels, weighted":
        labels, weights = rng.random(size), 3 * rng.random(size)
    elif kind == "on bucket edges":
        predictions = rng.integers(0, NUM_BUCKETS + 1, size) / NUM_BUCKETS
    elif kind == "edge values":
        predictions = rng.choice([0.0, 1e-9, 0.5, 0.99999999, 1.0, -0.1, 1.2], size)
    elif kind == "float32 sigmoid outputs":
        predictions = predictions.astype(np.float32).astype(float)
    return histogram_of(labels, predictions, weights)


@pytest.mark.parametrize(
    "kind",
    [
        "plain",
        "fractional labels, weighted",
        "on bucket edges",
        "edge values",
        "float32 sigmoid outputs",
    ],
)
@pytest.mark.parametrize("size", [0, 1, 7, 300, 4000])
def test_same_matrices_and_auc_as_tfma_bit_for_bit(kind, size):
    rng = np.random.default_rng(size)
    for _ in range(3):
        histogram = random_histogram(rng, kind, size)
        want_auc, want = tfma_auc_and_matrices(histogram)
        got = auc.confusion_matrices(histogram)
        assert list(got.thresholds) == list(want.thresholds)
        for field in ("tp", "tn", "fp", "fn"):
            assert [float(v) for v in getattr(got, field)] == list(getattr(want, field)), field
        got_auc = auc.auc_from_histogram(histogram)
        assert got_auc == want_auc or (math.isnan(got_auc) and math.isnan(want_auc))


def test_only_auc_reaches_the_metrics_not_the_matrices():
    # TFMA's AUC puts its private 10,000-threshold Matrices in the metrics, and the jackknife
    # gives them an interval; HistogramAUC's only output is `auc`.
    derived = [
        key
        for computation in auc.HistogramAUC().computations(model_names=["candidate", "baseline"])
        if isinstance(computation, metric_types.DerivedMetricComputation)
        for key in computation.keys
    ]
    assert [(key.name, key.model_name) for key in derived] == [
        ("auc", "candidate"),
        ("auc", "baseline"),
    ]


def test_top_k_auc_is_refused():
    with pytest.raises(ValueError, match="not top-k AUC"):
        auc.HistogramAUC().computations(sub_keys=[metric_types.SubKey(top_k=2)])


def run_jackknife(tmp_path, name, auc_config, data_location):
    eval_config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(label_key="label", prediction_key="prediction")],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["group"])],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    auc_config,
                    tfma.MetricConfig(
                        class_name="HistogramMetrics", module=histogram_metrics.__name__
                    ),
                ]
            )
        ],
        options=tfma.Options(
            compute_confidence_intervals={"value": True},
            confidence_intervals=tfma.ConfidenceIntervalOptions(
                method=tfma.ConfidenceIntervalOptions.JACKKNIFE
            ),
        ),
    )
    output = str(tmp_path / name)
    tfma.run_model_analysis(
        eval_config=eval_config,
        data_location=data_location,
        output_path=output,
        random_seed_for_testing=3,
    )
    values = {}
    for slice_metrics in tfma.load_metrics(output):
        for entry in slice_metrics.metric_keys_and_values:
            values[(slice_metrics.slice_key.SerializeToString(), entry.key.name)] = (
                entry.value.double_value.value,
                entry.confidence_interval.lower_bound.double_value.value,
                entry.confidence_interval.upper_bound.double_value.value,
            )
    return values


def test_tfma_gives_the_same_values_and_intervals_as_with_its_own_auc(tmp_path):
    rng = np.random.default_rng(11)
    path = str(tmp_path / "examples.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(600):
            label = int(rng.random() < 0.3)
            prediction = float(np.float32(np.clip(0.3 * label + 0.7 * rng.random(), 0.0, 1.0)))
            feature = {
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                "prediction": tf.train.Feature(float_list=tf.train.FloatList(value=[prediction])),
                "group": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[rng.choice([b"a", b"b"])])
                ),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    ours = run_jackknife(
        tmp_path,
        "ours",
        tfma.MetricConfig(class_name=auc.HistogramAUC.__name__, module=auc.__name__),
        path,
    )
    theirs = run_jackknife(tmp_path, "tfma", tfma.MetricConfig(class_name="AUC"), path)
    aucs = {key: value for key, value in theirs.items() if key[1] == "auc"}
    assert len(aucs) == 3  # overall and both groups
    assert all(high - low > 0.01 for _, low, high in aucs.values())  # real intervals
    assert ours == theirs

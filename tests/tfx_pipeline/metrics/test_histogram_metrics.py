"""HistogramMetrics gives TFMA's own values, from the one histogram AUC already computes."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import calibration_histogram

from tfx_pipeline.metrics import histogram_metrics

TFMA_EQUIVALENTS = [
    "ExampleCount",
    "BinaryAccuracy",
    "Precision",
    "Recall",
    "Calibration",
    "MeanLabel",
]


def histogram_of(labels, predictions, num_buckets=10_000):
    buckets = {}
    for label, prediction in zip(labels, predictions, strict=True):
        index = min(max(int(prediction * num_buckets) + 1, 0), num_buckets + 1)
        bucket = buckets.setdefault(index, calibration_histogram.Bucket(index, 0.0, 0.0, 0.0))
        bucket.weighted_labels += label
        bucket.weighted_predictions += prediction
        bucket.weighted_examples += 1.0
    return list(buckets.values())


def test_values_match_their_definitions():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 500).astype(float)
    predictions = np.clip(labels * 0.3 + rng.random(500) * 0.7, 0.0, 0.9999)
    metrics = histogram_metrics.from_histogram(histogram_of(labels, predictions), 0.5, 10_000)
    positive = predictions > 0.5
    assert metrics["example_count"] == 500
    assert metrics["binary_accuracy"] == pytest.approx(np.mean(positive == (labels == 1)))
    assert metrics["precision"] == pytest.approx(labels[positive].mean())
    assert metrics["recall"] == pytest.approx(positive[labels == 1].mean())
    assert metrics["calibration"] == pytest.approx(predictions.sum() / labels.sum())
    assert metrics["mean_label"] == pytest.approx(labels.mean())


def test_a_slice_without_positives_has_nan_ratios_not_an_error():
    metrics = histogram_metrics.from_histogram(histogram_of([0, 0], [0.1, 0.2]), 0.5, 10_000)
    assert metrics["example_count"] == 2 and metrics["binary_accuracy"] == 1.0
    assert math.isnan(metrics["precision"]) and math.isnan(metrics["recall"])
    assert metrics["mean_label"] == 0.0


def test_threshold_must_be_a_probability():
    with pytest.raises(ValueError, match="threshold must be between 0 and 1"):
        histogram_metrics.HistogramMetrics(threshold=1.5)


def run_tfma(tmp_path, name, metrics, data_location):
    eval_config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(label_key="label", prediction_key="prediction")],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["group"])],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )
    output = str(tmp_path / name)
    tfma.run_model_analysis(
        eval_config=eval_config, data_location=data_location, output_path=output
    )
    values = {}
    for slice_metrics in tfma.load_metrics(output):
        slice_key = tuple(
            (key.column, key.bytes_value) for key in slice_metrics.slice_key.single_slice_keys
        )
        for entry in slice_metrics.metric_keys_and_values:
            values[(slice_key, entry.key.name)] = entry.value.double_value.value
    return values


def test_same_values_as_tfma_metrics_on_every_slice(tmp_path):
    rng = np.random.default_rng(7)
    path = str(tmp_path / "examples.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(3000):
            label = int(rng.random() < 0.3)
            prediction = float(np.clip(0.35 * label + 0.65 * rng.random(), 0.0, 1.0))
            feature = {
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                "prediction": tf.train.Feature(float_list=tf.train.FloatList(value=[prediction])),
                "group": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[rng.choice([b"a", b"b", b"c"])])
                ),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )

    ours = run_tfma(
        tmp_path,
        "ours",
        [
            tfma.MetricConfig(class_name="AUC"),
            tfma.MetricConfig(class_name="HistogramMetrics", module=histogram_metrics.__name__),
        ],
        path,
    )
    theirs = run_tfma(
        tmp_path,
        "tfma",
        [tfma.MetricConfig(class_name=name) for name in ["AUC", *TFMA_EQUIVALENTS]],
        path,
    )
    assert len({slice_key for slice_key, _ in theirs}) == 4  # overall + three groups
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, rel=1e-9), key

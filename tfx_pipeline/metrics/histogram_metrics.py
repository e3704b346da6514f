"""TFMA metrics read off the calibration histogram that AUC already builds.

TFMA runs one Python combiner per metric family over every example of every slice: AUC's
10,000-bucket calibration histogram, a confusion matrix at 0.5 for accuracy, precision and
recall, a weighted sum for calibration and mean label, a counter for the example count. On a
large eval split those per-example calls are most of the Evaluator's time. The histogram holds
every one of these numbers (per prediction bucket: examples, summed labels, summed predictions),
so `HistogramMetrics` derives them from it after the combine, and TFMA shares the one histogram
computation with AUC: one combiner per example and slice instead of four.

Names and values are TFMA's own (`example_count`, `binary_accuracy`, `precision`, `recall`,
`calibration`, `mean_label`), so thresholds, reports and the run summary read them unchanged.
One difference: the threshold falls on a histogram bucket edge, so a prediction of exactly
`threshold` counts as positive (TFMA's confusion matrix needs it strictly above); with
float32 sigmoid outputs that is a measure-zero event.
"""

import math
from typing import Any

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import calibration_histogram, metric_types, metric_util

NAME = "histogram_metrics"
EXAMPLE_COUNT = "example_count"
BINARY_ACCURACY = "binary_accuracy"
PRECISION = "precision"
RECALL = "recall"
CALIBRATION = "calibration"
MEAN_LABEL = "mean_label"
METRIC_NAMES = (EXAMPLE_COUNT, BINARY_ACCURACY, PRECISION, RECALL, CALIBRATION, MEAN_LABEL)


def _ratio(numerator: float, denominator: float) -> float:
    """TFMA's convention: a ratio with nothing to divide by is NaN, not an error."""
    return numerator / denominator if denominator else math.nan


def from_histogram(
    histogram: list[calibration_histogram.Bucket], threshold: float, num_buckets: int
) -> dict[str, float]:
    """The metrics of one slice from its histogram (buckets of width 1/num_buckets over [0, 1]).

    Bucket 0 holds predictions below 0, buckets 1..num_buckets the intervals [(i-1)/n, i/n),
    bucket num_buckets + 1 predictions of 1 and above.
    """
    first_positive = round(threshold * num_buckets) + 1
    examples = labels = predictions = true_positives = predicted_positives = 0.0
    for bucket in histogram:
        examples += bucket.weighted_examples
        labels += bucket.weighted_labels
        predictions += bucket.weighted_predictions
        if bucket.bucket_id >= first_positive:
            predicted_positives += bucket.weighted_examples
            true_positives += bucket.weighted_labels
    true_negatives = (examples - labels) - (predicted_positives - true_positives)
    return {
        EXAMPLE_COUNT: examples,
        BINARY_ACCURACY: _ratio(true_positives + true_negatives, examples),
        PRECISION: _ratio(true_positives, predicted_positives),
        RECALL: _ratio(true_positives, labels),
        CALIBRATION: _ratio(predictions, labels),
        MEAN_LABEL: _ratio(labels, examples),
    }


def shared_histogram(**settings: Any) -> tuple[metric_types.MetricComputations, Any]:
    """The calibration histogram AUC asks for, and its key.

    TFMA computes a computation once however many metrics ask for it, so every metric that
    asks with these default settings (bucket count, key) reads the one AUC builds.
    """
    histogram = calibration_histogram.calibration_histogram(**settings)
    return histogram, histogram[-1].keys[-1]


def _computations(
    name: str = NAME,
    threshold: float = 0.5,
    eval_config: tfma.EvalConfig | None = None,
    model_name: str = "",
    output_name: str = "",
    sub_key: metric_types.SubKey | None = None,
    aggregation_type: metric_types.AggregationType | None = None,
    class_weights: dict[int, float] | None = None,
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    del name  # the derived metrics carry TFMA's names; this one only names the config entry
    histogram, histogram_key = shared_histogram(
        eval_config=eval_config,
        model_name=model_name,
        output_name=output_name,
        sub_key=sub_key,
        aggregation_type=aggregation_type,
        class_weights=class_weights,
        example_weighted=example_weighted,
    )
    keys = {
        metric: metric_types.MetricKey(
            name=metric,
            model_name=model_name,
            output_name=output_name,
            sub_key=sub_key,
            example_weighted=example_weighted,
        )
        for metric in METRIC_NAMES
    }

    def result(metrics: dict[metric_types.MetricKey, Any]) -> dict[metric_types.MetricKey, float]:
        values = from_histogram(
            metrics[histogram_key], threshold, calibration_histogram.DEFAULT_NUM_BUCKETS
        )
        return {keys[metric]: value for metric, value in values.items()}

    return [
        *histogram,
        metric_types.DerivedMetricComputation(keys=list(keys.values()), result=result),
    ]


class HistogramMetrics(metric_types.Metric):
    """Example count, accuracy/precision/recall at `threshold`, calibration and mean label."""

    def __init__(self, threshold: float = 0.5, name: str = NAME):
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        super().__init__(
            metric_util.merge_per_key_computations(_computations), threshold=threshold, name=name
        )

"""ROC curves and calibration plots of a model (the candidate unless asked), per slice, from the Evaluator's output.

The Evaluator writes two plots per slice and model into TFMA's `plots` output
(tfx_pipeline/metrics/histogram_plots.py), each at most 10,002 entries whatever the number of
rows, so reading costs the same at any data size:

- `confusion_matrices`: the confusion matrices TFMA's AUC is computed from, at the thresholds
  where they change. The ROC is their (false positive rate, recall) points, from (0, 0) to
  (1, 1); its trapezoid area is the AUC TFMA reports for the slice.
- `calibration_histogram`: the non-empty buckets of the 10,000-bucket prediction histogram
  behind them. The calibration plot merges them into `CALIBRATION_BUCKETS` equal-width buckets
  over [0, 1] (predictions below 0 in the first, of 1 and above in the last), empty ones left
  out.

TFX-free; TFMA reads its own plots file (importing TFMA, like any TFMA proto, loads TensorFlow).
"""

import dataclasses
import math

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import metrics_for_slice_pb2

from tfx_pipeline.components.gated_evaluator import results

# The plots histogram_plots.py writes (TFMA's ConfusionMatrixAtThresholds and
# CalibrationHistogramBuckets), by name; a test holds them to the metric's.
CONFUSION_MATRICES_PLOT = "confusion_matrices"
CALIBRATION_PLOT = "calibration_histogram"
CALIBRATION_BUCKETS = 20
AUC = "auc"


@dataclasses.dataclass(frozen=True)
class SlicePlots:
    """One slice's charts for one model."""

    roc: list[tuple[float, float]]  # (false positive rate, true positive rate); [] if one class
    calibration: list[tuple[float, float, float]]  # (mean prediction, positive rate, weight)
    auc: float | None  # the AUC TFMA reports for the slice; None if it has none or one class


def _buckets(
    histogram: metrics_for_slice_pb2.CalibrationHistogramBuckets,
) -> list[tuple[float, float, float, float]]:
    """(lower bound, examples, positives, summed predictions) of every non-empty bucket."""
    found = [
        (
            bucket.lower_threshold_inclusive,
            bucket.num_weighted_examples.value,
            bucket.total_weighted_label.value,
            bucket.total_weighted_refined_prediction.value,
        )
        for bucket in histogram.buckets
        if bucket.num_weighted_examples.value > 0
    ]
    return sorted(found)


def roc_points(
    matrices: metrics_for_slice_pb2.ConfusionMatrixAtThresholds,
) -> list[tuple[float, float]]:
    """(false positive rate, true positive rate) at every threshold, sorted, (0, 0) to (1, 1).

    [] for a slice of one class, which has no ROC curve.
    """
    if not matrices.matrices:
        return []
    first = matrices.matrices[0]
    positives = first.true_positives + first.false_negatives
    negatives = first.false_positives + first.true_negatives
    if positives <= 0 or negatives <= 0:
        return []
    points = {
        (m.false_positives / negatives, m.true_positives / positives) for m in matrices.matrices
    }
    return sorted(points | {(0.0, 0.0), (1.0, 1.0)})


def calibration_points(
    histogram: metrics_for_slice_pb2.CalibrationHistogramBuckets,
    num_buckets: int = CALIBRATION_BUCKETS,
) -> list[tuple[float, float, float]]:
    """(mean prediction, observed positive rate, weight) per equal-width bucket that has examples."""
    merged = [[0.0, 0.0, 0.0] for _ in range(num_buckets)]  # examples, positives, predictions
    for lower, examples, labels, predictions in _buckets(histogram):
        # A fine bucket goes where its lower bound lies: fine edges fall on coarse ones.
        index = 0 if lower == -math.inf else math.floor(lower * num_buckets)
        total = merged[min(max(index, 0), num_buckets - 1)]
        total[0] += examples
        total[1] += labels
        total[2] += predictions
    return [
        (predictions / examples, labels / examples, examples)
        for examples, labels, predictions in merged
        if examples > 0
    ]


def _candidate(model_names: set[str]) -> str | None:
    return next((name for name in results.CANDIDATE_NAMES if name in model_names), None)


def read_plots(evaluation_uri: str, model: str | None = None) -> dict[str, SlicePlots]:
    """A model's ROC and calibration per slice ('overall', 'payment_type=Cash').

    `model`: the TFMA model name, e.g. "baseline"; None reads the candidate. An evaluation
    written before the Evaluator recorded plots, or without that model, gives {}.
    """
    found: dict[tuple[str, str], dict[str, metrics_for_slice_pb2.PlotData]] = {}
    for plots in tfma.load_plots(evaluation_uri):
        if plots.HasField("cross_slice_key"):
            continue
        name = results.slice_name(plots.slice_key)
        for entry in plots.plot_keys_and_values:
            if entry.key.name in (CONFUSION_MATRICES_PLOT, CALIBRATION_PLOT):
                found.setdefault((name, entry.key.model_name), {})[entry.key.name] = entry.value
    chosen = _candidate({name for _, name in found}) if model is None else model
    if chosen is None:
        return {}
    estimates = results.read_estimates(evaluation_uri)
    slices = {}
    for (name, plotted), plots in sorted(found.items()):
        if plotted != chosen:
            continue
        empty = metrics_for_slice_pb2.PlotData()
        roc = roc_points(plots.get(CONFUSION_MATRICES_PLOT, empty).confusion_matrix_at_thresholds)
        histogram = plots.get(CALIBRATION_PLOT, empty).calibration_histogram_buckets
        auc = estimates.get((name, chosen, AUC, False))
        slices[name] = SlicePlots(
            roc=roc,
            calibration=calibration_points(histogram),
            # TFMA gives a slice of one class an AUC of 0: none, as the evaluation report says.
            auc=auc.value if roc and auc is not None and math.isfinite(auc.value) else None,
        )
    return slices


def prediction_buckets(
    evaluation_uri: str, slice_name: str = "overall"
) -> list[tuple[float, float, float]]:
    """How the candidate's predictions on the eval split spread: (lower, upper, examples) per
    non-empty histogram bucket of `slice_name`; [] when the evaluation recorded no plots."""
    for plots in tfma.load_plots(evaluation_uri):
        if plots.HasField("cross_slice_key") or results.slice_name(plots.slice_key) != slice_name:
            continue
        by_model = {
            entry.key.model_name: entry.value.calibration_histogram_buckets
            for entry in plots.plot_keys_and_values
            if entry.key.name == CALIBRATION_PLOT
        }
        candidate = _candidate(set(by_model))
        if candidate is None:
            continue
        return [
            (
                max(bucket.lower_threshold_inclusive, 0.0),
                min(bucket.upper_threshold_exclusive, 1.0),
                bucket.num_weighted_examples.value,
            )
            for bucket in by_model[candidate].buckets
            if bucket.num_weighted_examples.value > 0
        ]
    return []

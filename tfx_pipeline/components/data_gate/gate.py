"""The data gate's work, without TFX: read ExampleValidator's anomalies, add drift, apply the policy.

`check` writes the report (JSON and text) and raises DataGateError naming every failing anomaly;
the TFX component (`component.py`) only hands it the artifacts' URIs.

Drift against the previous span is ours, not TFDV's comparator: TFDV's distance alone flags
sampling noise (a copy of the previous span's rows, split differently, read as drifted), so the
gate uses `tfx_pipeline.drift`, which reports each distance with its significance at the two
spans' sizes. A feature drifts when its shift is significant and over the schema's
drift_comparator threshold; the finding keeps TFDV's kind names, so the policy reads as before.
"""

import json
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

from tfx_pipeline import drift
from tfx_pipeline.components.data_gate import structure
from tfx_pipeline.components.data_gate.policy import (
    Finding,
    action_for,
    findings,
    render_report,
    validate_policy,
)

SPLITS = ("train", "eval")
DRIFT_LABEL = "train vs previous span"
# Beside report.json: every drift comparison (distance, threshold, significance, what moved),
# under the threshold too, so the run report shows them all, not only the findings.
DRIFT_FILE = "drift.json"
# The share of in-distribution spans the drift check may flag, spread over the compared features.
# Half the 1% target: Bonferroni over nearly independent features spends its budget almost
# exactly, and at 1% the gate measured 1.4% on 100-row spans (bench/drift_false_alarms.py).
DEFAULT_FALSE_ALARM_RATE = 0.005
# The anomaly kind a drift finding gets, per distance (TFDV's names, so policies keep working).
DRIFT_KINDS = {
    drift.L_INFINITY: "COMPARATOR_L_INFTY_HIGH",
    drift.JENSEN_SHANNON: "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
}


def read_drift(report_uri: str) -> list[dict] | None:
    """The drift comparisons the gate wrote into its report folder; None when it compared none."""
    path = os.path.join(report_uri, DRIFT_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)["comparisons"]


class DataGateError(RuntimeError):
    """The data broke the policy; the message lists every failing anomaly."""


def read_anomalies(uri: str) -> dict[str, anomalies_pb2.Anomalies]:
    """ExampleValidator's anomalies per split (local or remote filesystems alike)."""
    by_split = {}
    for split in SPLITS:
        path = os.path.join(uri, f"Split-{split}", "SchemaDiff.pb")
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path, "rb") as handle:
                by_split[split] = anomalies_pb2.Anomalies.FromString(handle.read())
    return by_split


def report_dirs(report_uri: str) -> list[str]:
    """Where the report goes: the output artifact, and a folder TFX keeps when the gate fails.

    TFX deletes the outputs of a failed execution, and a failed gate is exactly when people
    need the report: <pipeline_root>/DataGate/reports/<execution id>/ survives.
    """
    component_dir = os.path.dirname(os.path.dirname(report_uri))
    return [report_uri, os.path.join(component_dir, "reports", os.path.basename(report_uri))]


def drift_thresholds(schema: schema_pb2.Schema) -> dict[str, float]:
    """The features the schema gives a drift comparator, with its threshold."""
    thresholds = {}
    for feature in schema.feature:
        comparator = feature.drift_comparator
        for distance in ("infinity_norm", "jensen_shannon_divergence"):
            if comparator.HasField(distance):
                thresholds[feature.name] = getattr(comparator, distance).threshold
    return thresholds


def drift_comparisons(
    current_statistics,  # noqa: ANN001 - DatasetFeatureStatisticsList; unused with `values`
    previous_statistics,  # noqa: ANN001
    schema: schema_pb2.Schema,
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
    values: dict | None = None,
) -> list[drift.Comparison]:
    """Each drift-compared feature of the new span's train split against the previous span's.

    `values`: the new span's raw values by feature (`span_values`); they give exact counts in
    the previous span's bins. Without them the new span is read from its statistics, which
    know it only per quantile bucket: discrete features (the area centroids of the coordinates)
    then alarm more often than the false-alarm rate says (tests/tfx_pipeline/test_drift.py).
    """
    current = drift.statistics_by_feature(current_statistics) if values is None else {}
    previous = drift.statistics_by_feature(previous_statistics)
    thresholds = {}
    for name, threshold in drift_thresholds(schema).items():
        # A feature missing on one side, or whose type changed, is the structure's finding.
        if name not in previous:
            continue
        if values is not None:
            if name in values:
                thresholds[name] = threshold
        elif name in current and drift.kind_of(current[name]) == drift.kind_of(previous[name]):
            thresholds[name] = threshold
    references = {name: drift.from_statistics(previous[name]) for name in thresholds}
    if values is not None:
        samples = {
            name: drift.from_values(values[name], references[name].kind)
            for name in thresholds
            if name in values
        }
    else:
        samples = {name: drift.from_statistics(current[name]) for name in thresholds}
    return drift.compare_all(references, samples, thresholds, false_alarm_rate)


def span_values(examples_uri: str, names: list[str], split: str = "train") -> dict:
    """The first value of each row of `names` in a split of ExampleGen's gzipped TFRecords:
    float arrays (NaN where missing) for numbers, object arrays (None where missing) for text.

    Decoded in C++ batches (tfx_bsl), so a million rows take seconds.
    """
    import numpy as np
    from tfx_bsl.coders import example_coder

    files = tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*"))
    decoder = example_coder.ExamplesToRecordBatchDecoder()
    parts: dict[str, list] = {name: [] for name in names}
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(8192)
    for records in dataset.as_numpy_iterator():
        for name, first in drift.first_values(decoder.DecodeBatch(list(records)), names).items():
            parts[name].append(first)
    return {
        name: np.concatenate(chunks) if chunks else np.array([]) for name, chunks in parts.items()
    }


def drift_findings(comparisons: list[drift.Comparison], policy: dict) -> list[Finding]:
    """A finding for each feature that moved (significant and over its threshold)."""
    return [
        Finding(
            DRIFT_LABEL,
            c.feature,
            DRIFT_KINDS[c.distance_name],
            c.text(),
            action_for(policy, c.feature, DRIFT_KINDS[c.distance_name]),
        )
        for c in comparisons
        if c.moved
    ]


def _load_train_statistics(uri: str):  # noqa: ANN202 - statistics_pb2.DatasetFeatureStatisticsList
    import tensorflow_data_validation as tfdv

    return tfdv.load_stats_binary(os.path.join(uri, "Split-train", "FeatureStats.pb"))


def _load_schema(schema_uri: str) -> schema_pb2.Schema:
    import tensorflow_data_validation as tfdv

    return tfdv.load_schema_text(os.path.join(schema_uri, "schema.pbtxt"))


def check(
    anomalies_uri: str,
    statistics_uri: str,
    schema_uri: str,
    previous_statistics_uri: str | None,
    policy: dict,
    report_uri: str,
    examples_uri: str | None = None,
) -> None:
    """Applies `policy` to the anomalies (and the drift against the previous span, when given).

    With `examples_uri` (the new span's examples), drift compares the span's raw values with the
    previous span's statistics; without, its statistics.

    Writes report.json and report.txt into every folder of `report_dirs(report_uri)`; raises
    DataGateError when a finding's action is `fail`.
    """
    rules = validate_policy(policy)
    found = findings(read_anomalies(anomalies_uri), rules)
    # Columns the schema declares that the span lacks or left empty (structure.py).
    found = structure.with_structure(
        found, statistics_uri, schema_uri, previous_statistics_uri, rules
    )
    comparisons = None
    if previous_statistics_uri is not None:
        schema = _load_schema(schema_uri)
        current = values = None
        if examples_uri is not None:
            values = span_values(examples_uri, list(drift_thresholds(schema)))
        else:
            current = _load_train_statistics(statistics_uri)
        comparisons = drift_comparisons(
            current, _load_train_statistics(previous_statistics_uri), schema, values=values
        )
        found += drift_findings(comparisons, rules)
    directories = report_dirs(report_uri)
    files = render_report(found)
    if comparisons is not None:
        files[DRIFT_FILE] = (
            json.dumps({"comparisons": [c.to_json() for c in comparisons]}, indent=2) + "\n"
        )
    for directory in directories:
        tf.io.gfile.makedirs(directory)
        for name, text in files.items():
            with tf.io.gfile.GFile(os.path.join(directory, name), "w") as handle:
                handle.write(text)
    failing = [f for f in found if f.action == "fail"]
    if failing:
        raise DataGateError(
            f"{len(failing)} anomalies break the data policy: "
            + "; ".join(f.text() for f in failing)
            + f" (report: {os.path.join(directories[-1], 'report.txt')})"
        )

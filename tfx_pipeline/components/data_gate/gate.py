"""The data gate's work, without TFX: read ExampleValidator's anomalies, add drift, apply the policy.

`check` writes the report (JSON and text) and raises DataGateError naming every failing anomaly;
the TFX component (`component.py`) only hands it the artifacts' URIs.
"""

import os

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2

from tfx_pipeline.components.data_gate.policy import findings, render_report, validate_policy

SPLITS = ("train", "eval")
DRIFT_LABEL = "train vs previous span"
# Beside report.json: TFDV's drift result (text Anomalies proto), every measurement and threshold.
DRIFT_FILE = "drift.pbtxt"


def read_drift(report_uri: str) -> anomalies_pb2.Anomalies | None:
    """The drift result the gate wrote into its report folder; None when it compared nothing."""
    path = os.path.join(report_uri, DRIFT_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return text_format.Parse(handle.read(), anomalies_pb2.Anomalies())


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


def drift_anomalies(
    statistics_uri: str, previous_uri: str, schema_uri: str
) -> anomalies_pb2.Anomalies:
    """TFDV's drift check of the new span's train split against the previous span's."""
    import tensorflow_data_validation as tfdv

    def load(uri: str):
        return tfdv.load_stats_binary(os.path.join(uri, "Split-train", "FeatureStats.pb"))

    schema = tfdv.load_schema_text(os.path.join(schema_uri, "schema.pbtxt"))
    return tfdv.validate_statistics(
        load(statistics_uri), schema, previous_statistics=load(previous_uri)
    )


def check(
    anomalies_uri: str,
    statistics_uri: str,
    schema_uri: str,
    previous_statistics_uri: str | None,
    policy: dict,
    report_uri: str,
) -> None:
    """Applies `policy` to the anomalies (and the drift against the previous span, when given).

    Writes report.json and report.txt into every folder of `report_dirs(report_uri)`; raises
    DataGateError when a finding's action is `fail`.
    """
    rules = validate_policy(policy)
    found = findings(read_anomalies(anomalies_uri), rules)
    drift = None
    if previous_statistics_uri is not None:
        drift = drift_anomalies(statistics_uri, previous_statistics_uri, schema_uri)
        found += [
            f for f in findings({DRIFT_LABEL: drift}, rules) if f.kind.startswith("COMPARATOR_")
        ]
    directories = report_dirs(report_uri)
    files = render_report(found)
    if drift is not None:
        # Every drift measurement with its threshold, under the threshold too: the run report
        # shows them all, not only the findings.
        files[DRIFT_FILE] = text_format.MessageToString(drift)
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

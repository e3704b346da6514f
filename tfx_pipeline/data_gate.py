"""DataGate: stops the run before Transform when ExampleValidator's anomalies break the policy.

TFX's ExampleValidator records anomalies but stops nothing. The gate reads them, applies the
declarative policy of `anomaly_policy` (fail or warn, per anomaly kind and per feature), writes a
report (JSON and text) into its output artifact, and fails with every failing anomaly named, so
Transform, training and pushing never see the data.
"""

import json
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact, standard_artifacts

from tfx_pipeline.anomaly_policy import findings, render_report, validate_policy

SPLITS = ("train", "eval")


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


class DataGateReport(artifact.Artifact):
    """The gate's verdict: report.json and report.txt."""

    # "<namespace>.<Type>": the form Kubeflow Pipelines v2 (Vertex) requires of custom types.
    TYPE_NAME = "taxi.DataGateReport"


class DataGateError(RuntimeError):
    """The data broke the policy; the message lists every failing anomaly."""


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


@component
def DataGate(  # noqa: N802 - TFX component names are class-like
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: InputArtifact[standard_artifacts.Schema],
    report: OutputArtifact[DataGateReport],
    policy: Parameter[str],
    previous_statistics: InputArtifact[standard_artifacts.ExampleStatistics] = None,
) -> None:
    """Fails the run when an anomaly or drift the policy marks `fail` is present."""
    rules = validate_policy(json.loads(policy))
    found = findings(read_anomalies(anomalies.uri), rules)
    if previous_statistics is not None:
        drift = drift_anomalies(statistics.uri, previous_statistics.uri, schema.uri)
        label = "train vs previous span"
        found += [f for f in findings({label: drift}, rules) if f.kind.startswith("COMPARATOR_")]
    directories = report_dirs(report.uri)
    files = render_report(found)
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

"""DataGate, the TFX component: stops the run before Transform when anomalies break the data policy.

TFX's ExampleValidator records anomalies but stops nothing. This component hands its artifacts
to `gate.check`, which applies the declarative policy of `policy.py` (fail or warn, per anomaly
kind and per feature), writes a report into the output artifact and fails with every failing
anomaly named, so Transform, training and pushing never see the data.
"""

import json

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact, standard_artifacts

from tfx_pipeline.components.data_gate import gate


class DataGateReport(artifact.Artifact):
    """The gate's verdict: report.json and report.txt."""

    # "<namespace>.<Type>": the form Kubeflow Pipelines v2 (Vertex) requires of custom types.
    TYPE_NAME = "taxi.DataGateReport"


@component
def DataGate(  # noqa: N802 - TFX component names are class-like
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: InputArtifact[standard_artifacts.Schema],
    report: OutputArtifact[DataGateReport],
    policy: Parameter[str],
    previous_statistics: InputArtifact[standard_artifacts.ExampleStatistics] = None,
    examples: InputArtifact[standard_artifacts.Examples] = None,
) -> None:
    """Fails the run when an anomaly or drift the policy marks `fail` is present."""
    gate.check(
        anomalies_uri=anomalies.uri,
        statistics_uri=statistics.uri,
        schema_uri=schema.uri,
        previous_statistics_uri=previous_statistics.uri if previous_statistics else None,
        policy=json.loads(policy),
        report_uri=report.uri,
        examples_uri=examples.uri if examples else None,
    )

"""Structural breaks, without TFX: a column the schema declares that the span lacks or left empty.

TFDV reports a missing column only when the schema requires its values, so a span whose CSV
lost an optional column (a producer-side break) passed unnoticed. Here every column the schema
declares for TRAINING must be in each split's statistics (SCHEMA_MISSING_COLUMN), and must hold
values where the previous span's train split had them, or, without a previous span, where the
schema's presence requires them (FEATURE_TYPE_NOT_PRESENT: TFDV's kind for a required column
with no values). A missing column's finding names the columns the span has and the schema does
not, since a renamed column shows up as one missing and one new.

The findings carry TFDV's kind names, so the policy downgrades them per feature like any other;
one of ours replaces ExampleValidator's finding of the same split, feature and kind.
"""

import os

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from tfx_pipeline.components.data_gate.policy import Finding, action_for

MISSING_COLUMN = "SCHEMA_MISSING_COLUMN"
NO_VALUES = "FEATURE_TYPE_NOT_PRESENT"
SPLITS = ("train", "eval")
TRAINING = "TRAINING"
# Lifecycle stages TFDV does not hold data to (schema.proto's LifecycleStage).
NOT_REQUIRED_STAGES = (
    schema_pb2.PLANNED,
    schema_pb2.ALPHA,
    schema_pb2.DEBUG_ONLY,
    schema_pb2.DEPRECATED,
    schema_pb2.DISABLED,
)


def read_statistics(uri: str, split: str) -> statistics_pb2.DatasetFeatureStatistics | None:
    """One split of a statistics artifact; None when the split has no statistics."""
    path = os.path.join(uri, f"Split-{split}", "FeatureStats.pb")
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "rb") as handle:
        datasets = statistics_pb2.DatasetFeatureStatisticsList.FromString(handle.read()).datasets
    return datasets[0] if datasets else None


def read_schema(uri: str) -> schema_pb2.Schema:
    with tf.io.gfile.GFile(os.path.join(uri, "schema.pbtxt")) as handle:
        return text_format.Parse(handle.read(), schema_pb2.Schema())


def in_training(feature: schema_pb2.Feature, schema: schema_pb2.Schema) -> bool:
    """Whether the schema holds TRAINING data to this feature (its environments, as TFDV reads them)."""
    if feature.deprecated or feature.lifecycle_stage in NOT_REQUIRED_STAGES:
        return False
    if feature.in_environment:
        return TRAINING in feature.in_environment
    if TRAINING in feature.not_in_environment:
        return False
    return not schema.default_environment or TRAINING in schema.default_environment


def schema_requires_values(feature: schema_pb2.Feature) -> bool:
    presence, counts = feature.presence, feature.value_count
    return presence.min_count > 0 or presence.min_fraction > 0 or counts.min > 0


def value_counts(dataset: statistics_pb2.DatasetFeatureStatistics) -> dict[str, int]:
    """Values per feature over every example (an empty CSV cell holds none)."""
    counts = {}
    for feature in dataset.features:
        name = ".".join(feature.path.step) if feature.path.step else feature.name
        which = feature.WhichOneof("stats")
        common = getattr(feature, which).common_stats if which else None
        counts[name] = int(common.tot_num_values) if common is not None else 0
    return counts


def structural_findings(
    statistics: dict[str, statistics_pb2.DatasetFeatureStatistics],
    schema: schema_pb2.Schema,
    previous: statistics_pb2.DatasetFeatureStatistics | None,
    policy: dict,
) -> list[Finding]:
    """Per split: each TRAINING column of the schema that is absent, or empty where it had values.

    Args:
      statistics: this span's statistics per split name.
      schema: the schema the gate checks against.
      previous: the previous span's train split, or None (the first span).
      policy: the anomaly policy, which gives each finding its action.
    """
    previous_values = value_counts(previous) if previous is not None else {}
    required = [f for f in schema.feature if in_training(f, schema)]
    declared = {f.name for f in schema.feature}
    found = []
    for split, dataset in statistics.items():
        if dataset.num_examples == 0:
            continue  # an empty split is the dataset's finding (DATASET_LOW_NUM_EXAMPLES)
        values = value_counts(dataset)
        new_columns = sorted(set(values) - declared)
        for feature in required:
            name = feature.name
            if name not in values:
                optional = "" if schema_requires_values(feature) else " (its values are optional)"
                description = f"the span has no column {name}, which the schema declares{optional}"
                if new_columns:
                    description += (
                        f"; it has columns the schema does not declare: "
                        f"{', '.join(new_columns)} (renamed?)"
                    )
                kind = MISSING_COLUMN
            elif values[name] == 0 and previous_values.get(name, 0) > 0:
                description = (
                    f"every value of {name} is empty in this split ({dataset.num_examples} rows); "
                    f"the previous span's train split had {previous_values[name]} values"
                )
                kind = NO_VALUES
            elif values[name] == 0 and schema_requires_values(feature):
                description = (
                    f"every value of {name} is empty in this split ({dataset.num_examples} "
                    "rows); the schema requires values"
                )
                kind = NO_VALUES
            else:
                continue
            found.append(Finding(split, name, kind, description, action_for(policy, name, kind)))
    return found


def merged(validator_findings: list[Finding], structural: list[Finding]) -> list[Finding]:
    """ExampleValidator's findings with ours: ours replace its same split, feature and kind."""
    ours = {(f.split, f.feature, f.kind): f for f in structural}
    result = [ours.pop((f.split, f.feature, f.kind), f) for f in validator_findings]
    return result + list(ours.values())


def with_structure(
    validator_findings: list[Finding],
    statistics_uri: str,
    schema_uri: str,
    previous_statistics_uri: str | None,
    policy: dict,
) -> list[Finding]:
    """The gate's findings so far plus the structural ones, read from the artifacts' URIs."""
    statistics = {}
    for split in SPLITS:
        dataset = read_statistics(statistics_uri, split)
        if dataset is not None:
            statistics[split] = dataset
    previous = (
        read_statistics(previous_statistics_uri, "train")
        if previous_statistics_uri is not None
        else None
    )
    structural = structural_findings(statistics, read_schema(schema_uri), previous, policy)
    return merged(validator_findings, structural)

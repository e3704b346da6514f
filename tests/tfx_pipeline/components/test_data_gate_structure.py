"""Structural findings: a column the schema declares that a span lacks or left empty fails the gate."""

import csv
import json

import apache_beam as beam
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from tests.conftest import DATA_ROOT, SCHEMA_PATH, read_csv_rows
from tfx_pipeline.components.arrow_csv_example_gen import csv_examples
from tfx_pipeline.components.data_gate import gate, policy, structure

FAIL_ALL = {"default": "fail"}
SCHEMA = text_format.Parse(
    """
    default_environment: "TRAINING"
    default_environment: "SERVING"
    feature { name: "fare" type: FLOAT presence { min_fraction: 1.0 min_count: 1 } }
    feature { name: "company" type: BYTES presence { min_count: 0 } }
    feature { name: "tips" type: FLOAT not_in_environment: "SERVING" }
    feature { name: "prediction" type: FLOAT not_in_environment: "TRAINING" }
    feature { name: "old_column" type: INT lifecycle_stage: DEPRECATED }
    """,
    schema_pb2.Schema(),
)


def dataset(num_examples=100, **values):
    """Statistics of one split: each feature with its total number of values."""
    result = statistics_pb2.DatasetFeatureStatistics(num_examples=num_examples)
    for name, count in values.items():
        feature = result.features.add()
        feature.path.step.append(name)
        if name in ("company", "company_name"):
            feature.type = statistics_pb2.FeatureNameStatistics.STRING
            feature.string_stats.common_stats.tot_num_values = count
        else:
            feature.type = statistics_pb2.FeatureNameStatistics.FLOAT
            feature.num_stats.common_stats.tot_num_values = count
    return result


FULL = {"fare": 100, "company": 60, "tips": 100}


def found(statistics, previous=None, rules=FAIL_ALL):
    return [
        (f.split, f.feature, f.kind, f.action)
        for f in structure.structural_findings(statistics, SCHEMA, previous, rules)
    ]


def test_a_complete_span_has_no_structural_finding():
    assert found({"train": dataset(**FULL), "eval": dataset(**FULL)}, dataset(**FULL)) == []


def test_a_missing_optional_column_fails_in_every_split_naming_it():
    without_company = {"fare": 100, "tips": 100}
    findings = structure.structural_findings(
        {"train": dataset(**without_company), "eval": dataset(**without_company)},
        SCHEMA,
        None,
        FAIL_ALL,
    )
    assert [(f.split, f.feature, f.kind, f.action) for f in findings] == [
        ("train", "company", "SCHEMA_MISSING_COLUMN", "fail"),
        ("eval", "company", "SCHEMA_MISSING_COLUMN", "fail"),
    ]
    assert findings[0].description == (
        "the span has no column company, which the schema declares (its values are optional)"
    )


def test_a_renamed_column_names_the_missing_and_the_new_column():
    (finding,) = structure.structural_findings(
        {"train": dataset(fare=100, company_name=60, tips=100)}, SCHEMA, None, FAIL_ALL
    )
    assert finding.feature == "company" and finding.kind == "SCHEMA_MISSING_COLUMN"
    assert finding.text() == (
        "[train] company: SCHEMA_MISSING_COLUMN: the span has no column company, which the "
        "schema declares (its values are optional); it has columns the schema does not "
        "declare: company_name (renamed?)"
    )


def test_an_empty_column_fails_where_the_previous_span_had_values():
    empty_company = {**FULL, "company": 0}
    findings = structure.structural_findings(
        {"train": dataset(**empty_company)}, SCHEMA, dataset(**FULL), FAIL_ALL
    )
    assert [(f.feature, f.kind, f.action) for f in findings] == [
        ("company", "FEATURE_TYPE_NOT_PRESENT", "fail")
    ]
    assert findings[0].description == (
        "every value of company is empty in this split (100 rows); the previous span's train "
        "split had 60 values"
    )
    # The previous span had none either, or there is no previous span and its values are
    # optional: nothing to compare with, no finding.
    assert found({"train": dataset(**empty_company)}, dataset(**empty_company)) == []
    assert found({"train": dataset(**empty_company)}) == []


def test_an_empty_required_column_fails_without_a_previous_span():
    assert found({"train": dataset(**{**FULL, "fare": 0})}) == [
        ("train", "fare", "FEATURE_TYPE_NOT_PRESENT", "fail")
    ]


def test_columns_not_held_to_training_data_are_not_required():
    # `prediction` is not_in_environment TRAINING and `old_column` deprecated; `tips` is only
    # kept out of SERVING, so it is required.
    assert found({"train": dataset(fare=100, company=60)}) == [
        ("train", "tips", "SCHEMA_MISSING_COLUMN", "fail")
    ]


def test_an_empty_split_is_left_to_the_dataset_check():
    assert found({"train": dataset(**FULL), "eval": dataset(num_examples=0)}) == []


def test_the_policy_downgrades_a_structural_finding_per_feature():
    rules = {"default": "fail", "features": {"company": {"SCHEMA_MISSING_COLUMN": "warn"}}}
    assert found({"train": dataset(fare=100)}, rules=rules) == [
        ("train", "company", "SCHEMA_MISSING_COLUMN", "warn"),
        ("train", "tips", "SCHEMA_MISSING_COLUMN", "fail"),
    ]


def test_a_structural_finding_replaces_example_validators_of_the_same_kind():
    validator = [
        policy.Finding("train", "fare", "FEATURE_TYPE_NOT_PRESENT", "not present", "fail"),
        policy.Finding("train", "fare", "FLOAT_TYPE_BIG_FLOAT", "too big", "fail"),
    ]
    ours = [policy.Finding("train", "fare", "FEATURE_TYPE_NOT_PRESENT", "every value", "fail")]
    ours += [policy.Finding("eval", "fare", "FEATURE_TYPE_NOT_PRESENT", "every value", "fail")]
    assert [(f.split, f.kind, f.description) for f in structure.merged(validator, ours)] == [
        ("train", "FEATURE_TYPE_NOT_PRESENT", "every value"),
        ("train", "FLOAT_TYPE_BIG_FLOAT", "too big"),
        ("eval", "FEATURE_TYPE_NOT_PRESENT", "every value"),
    ]


def test_the_shipped_policy_fails_structure_but_warns_on_the_withheld_census_tract():
    shipped = json.loads((SCHEMA_PATH.parent / "anomaly_policy.json").read_text())
    assert policy.action_for(shipped, "company", "SCHEMA_MISSING_COLUMN") == "fail"
    assert policy.action_for(shipped, "company", "FEATURE_TYPE_NOT_PRESENT") == "fail"
    # Withheld for privacy on almost every trip: span 1 has one value, span 2 none.
    assert policy.action_for(shipped, "pickup_census_tract", "FEATURE_TYPE_NOT_PRESENT") == "warn"
    assert policy.action_for(shipped, "pickup_census_tract", "SCHEMA_MISSING_COLUMN") == "fail"


@pytest.fixture(scope="module")
def renamed_company_span(tmp_path_factory):
    """Statistics and ExampleValidator's anomalies of taxi rows whose `company` became `company_name`.

    Real artifacts: the rows go through ExampleGen's CSV encoder and TFDV, as in the pipeline.
    """
    import tensorflow_data_validation as tfdv

    root = tmp_path_factory.mktemp("renamed")
    rows = read_csv_rows(DATA_ROOT / "span-2" / "data.csv", limit=300)
    with open(root / "data.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow("company_name" if name == "company" else name for name in rows[0])
        writer.writerows(row.values() for row in rows)
    schema = tfdv.load_schema_text(str(SCHEMA_PATH))
    with beam.Pipeline() as pipeline:
        _ = (
            pipeline
            | csv_examples.CsvFilesToExamples(
                [str(root / "data.csv")], csv_examples.schema_column_types(schema)
            )
            | beam.io.WriteToTFRecord(str(root / "examples"), num_shards=1)
        )
    statistics = tfdv.generate_statistics_from_tfrecord(str(root / "examples-00000-of-00001"))
    anomalies = tfdv.validate_statistics(statistics, schema)
    for split in ("train", "eval"):
        for uri, name, data in (
            (root / "statistics", "FeatureStats.pb", statistics),
            (root / "anomalies", "SchemaDiff.pb", anomalies),
        ):
            (uri / f"Split-{split}").mkdir(parents=True, exist_ok=True)
            (uri / f"Split-{split}" / name).write_bytes(data.SerializeToString())
    (root / "schema").mkdir()
    (root / "schema" / "schema.pbtxt").write_text(SCHEMA_PATH.read_text())
    return root


def check(root, rules, report_name):
    report = root / "DataGate" / "report" / report_name
    gate.check(
        anomalies_uri=str(root / "anomalies"),
        statistics_uri=str(root / "statistics"),
        schema_uri=str(root / "schema"),
        previous_statistics_uri=None,
        policy=rules,
        report_uri=str(report),
    )
    return tf.io.gfile.GFile(str(report / "report.txt")).read()


def test_a_span_with_a_renamed_optional_column_fails_the_gate(renamed_company_span):
    with pytest.raises(gate.DataGateError) as error:
        check(renamed_company_span, FAIL_ALL, "1")
    message = str(error.value)
    assert (
        "[train] company: SCHEMA_MISSING_COLUMN: the span has no column company, which the "
        "schema declares (its values are optional); it has columns the schema does not declare: "
        "company_name (renamed?)"
    ) in message
    assert "[train] company_name: SCHEMA_NEW_COLUMN" in message


def test_the_policy_can_let_a_renamed_column_pass_with_warnings(renamed_company_span):
    rules = {
        "default": "fail",
        "features": {
            "company": {"SCHEMA_MISSING_COLUMN": "warn"},
            "company_name": {"SCHEMA_NEW_COLUMN": "warn"},
        },
    }
    report = check(renamed_company_span, rules, "2")
    assert report.startswith("data gate: passed")
    assert "WARN  [train] company: SCHEMA_MISSING_COLUMN" in report
    assert "WARN  [eval] company_name: SCHEMA_NEW_COLUMN" in report

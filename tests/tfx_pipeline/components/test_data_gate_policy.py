"""The data policy: precedence of its rules, its validation, and findings from real anomaly protos."""

import json

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2

from tests.conftest import REPO_ROOT
from tfx_pipeline.components.data_gate import policy

POLICY = {
    "default": "fail",
    "kinds": {"COMPARATOR_L_INFTY_HIGH": "warn", "SCHEMA_NEW_COLUMN": "warn"},
    "features": {"company": {"default": "warn"}, "notes": {"SCHEMA_NEW_COLUMN": "fail"}},
}


def anomalies(*entries, dataset=None):
    result = anomalies_pb2.Anomalies()
    for feature, kind, description in entries:
        info = result.anomaly_info[feature]
        info.description = description
        reason = info.reason.add()
        reason.type = anomalies_pb2.AnomalyInfo.Type.Value(kind)
        reason.description = description
    if dataset:
        reason = result.dataset_anomaly_info.reason.add()
        reason.type = anomalies_pb2.AnomalyInfo.Type.Value(dataset)
        reason.description = "Low num examples in dataset."
    return result


@pytest.mark.parametrize(
    ("feature", "kind", "action"),
    [
        ("fare", "FLOAT_TYPE_BIG_FLOAT", "fail"),  # the default
        ("payment_type", "COMPARATOR_L_INFTY_HIGH", "warn"),  # by kind
        ("company", "ENUM_TYPE_UNEXPECTED_STRING_VALUES", "warn"),  # the feature's default
        ("notes", "SCHEMA_NEW_COLUMN", "fail"),  # the feature's own rule beats the kind
        ("extra", "SCHEMA_NEW_COLUMN", "warn"),
    ],
)
def test_rule_precedence(feature, kind, action):
    assert policy.action_for(POLICY, feature, kind) == action


def test_findings_cover_every_split_feature_and_the_dataset():
    found = policy.findings(
        {
            "train": anomalies(("fare", "FLOAT_TYPE_BIG_FLOAT", "Unexpectedly large value: 5000")),
            "eval": anomalies(
                ("company", "ENUM_TYPE_UNEXPECTED_STRING_VALUES", "new"),
                dataset="DATASET_LOW_NUM_EXAMPLES",
            ),
        },
        POLICY,
    )
    assert [(f.split, f.feature, f.kind, f.action) for f in found] == [
        ("train", "fare", "FLOAT_TYPE_BIG_FLOAT", "fail"),
        ("eval", "company", "ENUM_TYPE_UNEXPECTED_STRING_VALUES", "warn"),
        ("eval", "(dataset)", "DATASET_LOW_NUM_EXAMPLES", "fail"),
    ]


def test_report_lists_every_finding():
    found = policy.findings(
        {"train": anomalies(("fare", "FLOAT_TYPE_BIG_FLOAT", "too big"))}, POLICY
    )
    files = policy.render_report(found)
    report = json.loads(files["report.json"])
    assert report["passed"] is False and report["findings"][0]["feature"] == "fare"
    assert "FAIL  [train] fare: FLOAT_TYPE_BIG_FLOAT: too big" in files["report.txt"]


def test_invalid_policies_name_every_problem():
    with pytest.raises(ValueError) as error:
        policy.validate_policy(
            {"default": "stop", "kinds": {"NOT_A_KIND": "warn"}, "features": {"x": "warn"}, "y": 1}
        )
    message = str(error.value)
    for part in (
        "default must be 'fail' or 'warn'",
        "unknown anomaly kind 'NOT_A_KIND'",
        "features.x must map",
        "unknown policy keys ['y']",
    ):
        assert part in message


def test_the_shipped_policy_fails_schema_violations_and_warns_on_drift():
    shipped = json.loads((REPO_ROOT / "data" / "schema" / "anomaly_policy.json").read_text())
    assert policy.validate_policy(shipped)["default"] == "fail"
    assert policy.action_for(shipped, "fare", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH") == "warn"
    assert policy.action_for(shipped, "payment_type", "COMPARATOR_L_INFTY_HIGH") == "warn"
    assert policy.action_for(shipped, "fare", "FLOAT_TYPE_BIG_FLOAT") == "fail"

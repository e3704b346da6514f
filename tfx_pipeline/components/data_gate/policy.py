"""The declarative data policy: which ExampleValidator anomalies fail a run and which only warn.

Policy, e.g. data/schema/anomaly_policy.json:
    {"default": "fail",
     "kinds": {"COMPARATOR_L_INFTY_HIGH": "warn"},
     "features": {"company": {"default": "warn"}, "fare": {"FLOAT_TYPE_HAS_NAN": "fail"}}}
A feature's own rule wins over its `default`, which wins over `kinds`, which wins over `default`.
TFX-free, so a runner can check a policy file before loading TFX.
"""

import dataclasses
import json

from tensorflow_metadata.proto.v0 import anomalies_pb2

from tfx_pipeline.problems import raise_if_any

ACTIONS = ("fail", "warn")
DATASET = "(dataset)"


@dataclasses.dataclass(frozen=True)
class Finding:
    split: str
    feature: str
    kind: str
    description: str
    action: str

    def text(self) -> str:
        return f"[{self.split}] {self.feature}: {self.kind}: {self.description}"


def validate_policy(policy: dict) -> dict:
    """Checks a policy; raises ConfigProblems naming every problem. Returns the policy."""
    if not isinstance(policy, dict):
        raise_if_any(["must be a JSON object"], "invalid anomaly policy")
    problems = []
    known_kinds = set(anomalies_pb2.AnomalyInfo.Type.keys())

    def check_action(where: str, value: object) -> None:
        if value not in ACTIONS:
            problems.append(f"{where} must be 'fail' or 'warn', got {value!r}")

    def check_kind(where: str, kind: str) -> None:
        if kind != "default" and kind not in known_kinds:
            problems.append(f"{where}: unknown anomaly kind {kind!r}")

    unknown_keys = set(policy) - {"default", "kinds", "features"}
    if unknown_keys:
        problems.append(f"unknown policy keys {sorted(unknown_keys)}")
    check_action("default", policy.get("default", "fail"))
    for kind, action in policy.get("kinds", {}).items():
        check_kind("kinds", kind)
        check_action(f"kinds.{kind}", action)
    for feature, rules in policy.get("features", {}).items():
        if not isinstance(rules, dict):
            problems.append(f"features.{feature} must map anomaly kinds to fail/warn")
            continue
        for kind, action in rules.items():
            check_kind(f"features.{feature}", kind)
            check_action(f"features.{feature}.{kind}", action)
    raise_if_any(problems, "invalid anomaly policy")
    return policy


def action_for(policy: dict, feature: str, kind: str) -> str:
    rules = policy.get("features", {}).get(feature, {})
    if kind in rules:
        return rules[kind]
    if "default" in rules:
        return rules["default"]
    return policy.get("kinds", {}).get(kind, policy.get("default", "fail"))


def findings(anomalies_by_split: dict[str, anomalies_pb2.Anomalies], policy: dict) -> list[Finding]:
    """Every anomaly reason of every split, with the policy's action for it."""
    result = []
    for split, anomalies in anomalies_by_split.items():
        infos = list(sorted(anomalies.anomaly_info.items()))
        if anomalies.HasField("dataset_anomaly_info"):
            infos.append((DATASET, anomalies.dataset_anomaly_info))
        for feature, info in infos:
            for reason in info.reason or [None]:
                kind = (
                    anomalies_pb2.AnomalyInfo.Type.Name(reason.type) if reason else "UNKNOWN_TYPE"
                )
                description = (reason.description if reason else "") or info.description
                result.append(
                    Finding(split, feature, kind, description, action_for(policy, feature, kind))
                )
    return result


def render_report(found: list[Finding]) -> dict[str, str]:
    """The gate's report files: report.json (machine-readable) and report.txt (for people)."""
    failing = [f for f in found if f.action == "fail"]
    report_json = json.dumps(
        {"passed": not failing, "findings": [dataclasses.asdict(f) for f in found]}, indent=2
    )
    lines = [f"data gate: {'FAILED' if failing else 'passed'}"]
    lines += [f"{f.action.upper():5} {f.text()}" for f in found] or ["no anomalies"]
    return {"report.json": report_json + "\n", "report.txt": "\n".join(lines) + "\n"}

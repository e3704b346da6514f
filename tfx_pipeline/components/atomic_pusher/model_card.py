"""The model card of a pushed version: what the model is, what it learned from, how it was judged.

TFX-free: `build_card` reads the artifacts the Pusher was given (plain MLMD ids and URIs, local or
gs://) and returns the card as a dict, whose JSON schema docs/model_card.md describes field by
field; `render_html` makes one self-contained page of it (inline CSS, nothing fetched, no script).
A part that is missing or cannot be read is "not recorded", with the reason in `not_recorded`;
it never stops the push. The card goes into the version's `assets.extra/`, which TF Serving does
not read (beyond its warmup file), and the duplicate check of push.py leaves it out.
"""

import dataclasses
import datetime
import html
import importlib.metadata
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence

import tensorflow as tf
from google.protobuf import message, text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from models import features

SCHEMA_VERSION = 1
CARD_JSON = "assets.extra/model_card.json"
CARD_HTML = "assets.extra/model_card.html"
CARD_FILES = (CARD_JSON, CARD_HTML)
NOT_RECORDED = "not recorded"
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'"

# Where the other components leave what the card reads (held equal to their own constants by
# tests/tfx_pipeline/components/test_atomic_pusher.py: this folder may not import theirs).
JUDGEMENT_FILE = "blessing_judgement.json"  # gated_evaluator/results.py
INFRA_VALIDATION_FILE = "infra_validation.json"  # infra_validator/executor.py
HYPERPARAMETERS_FILE = "best_hyperparameters.txt"  # TFX's Tuner
SCHEMA_FILE = "schema.pbtxt"  # ImportSchemaGen and SchemaGen
STATISTICS_FILE = "FeatureStats.pb"  # StatisticsGen, in Split-<name>/
SPLIT_PREFIX = "Split-"
# The raw column whose range the card gives as the training data's date range (Unix seconds).
DATE_FEATURE = "trip_start_timestamp"
# Package versions recorded in the card, by distribution name.
FRAMEWORKS = ("tensorflow", "tfx", "tensorflow-transform", "tensorflow-model-analysis")

OVERALL = "overall"
CANDIDATE_MODEL_NAMES = ("candidate", "")  # TFMA's name for the candidate: "" without a baseline
BASELINE_MODEL_NAME = "baseline"
INTERVAL = "value [low, high]: 95% jackknife confidence interval (TFMA)"
NOT_GATED = "not gated"
NOT_JUDGED = "not judged"
FAIL = "FAIL"
PASS = "pass"
CHANGE_RULES = ("max_auc_drop", "max_slice_auc_drop")
RULE_DESCRIPTIONS = {
    "min_auc": "the overall AUC point estimate must reach the floor",
    "max_auc_drop": (
        "the overall AUC change against the last blessed model fails only when its whole "
        "interval is below the bound"
    ),
    "min_slice_auc": "a gated slice fails only when its whole AUC interval is below the floor",
    "max_slice_auc_drop": (
        "a gated slice's AUC change fails only when its whole interval is below the bound"
    ),
    "slice_gaps": "AUC(first) - AUC(second) fails only when its whole interval is beyond the gap",
}

# Reading an artifact may fail in these ways; each makes its part "not recorded".
READ_ERRORS = (
    OSError,
    ValueError,
    KeyError,
    TypeError,
    tf.errors.OpError,
    message.Error,
    text_format.ParseError,
)


@dataclasses.dataclass(frozen=True)
class ArtifactRef:
    """One input artifact as the card needs it: MLMD id (None when unknown), URI, span."""

    id: int | None
    uri: str
    span: int | None = None


@dataclasses.dataclass(frozen=True)
class PushFacts:
    """What the Pusher knows about the push itself."""

    model_name: str
    version: int
    pushed_at: float  # Unix seconds
    serving_path: str
    pipeline_name: str | None = None
    run_id: str | None = None
    data_root: str | None = None
    frameworks: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CardInputs:
    """The Pusher's input artifacts; None (or no examples) where a channel brought none."""

    model: ArtifactRef | None = None
    model_blessing: ArtifactRef | None = None
    infra_blessing: ArtifactRef | None = None
    examples: tuple[ArtifactRef, ...] = ()
    statistics: ArtifactRef | None = None
    schema: ArtifactRef | None = None
    hyperparameters: ArtifactRef | None = None
    evaluation: ArtifactRef | None = None


def framework_versions() -> dict[str, str]:
    """The installed version of each of FRAMEWORKS."""
    found = {}
    for name in FRAMEWORKS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = NOT_RECORDED
    return found


# --- reading the artifacts -------------------------------------------------------------------


def _finite(value: float | None) -> float | None:
    """JSON has no NaN: a value TFMA could not compute is null."""
    if value is None or not math.isfinite(value):
        return None
    return value


def _estimate(value: float | None, low: float | None = None, high: float | None = None) -> dict:
    return {"value": _finite(value), "low": _finite(low), "high": _finite(high)}


def _read_text(path: str) -> str:
    with tf.io.gfile.GFile(path) as handle:
        return handle.read()


def _utc(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def read_split_statistics(uri: str) -> dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
    """StatisticsGen's statistics by split name; raises FileNotFoundError when there are none."""
    found = {}
    for entry in sorted(tf.io.gfile.listdir(uri)):
        name = entry.rstrip("/")
        path = os.path.join(uri, name, STATISTICS_FILE)
        if name.startswith(SPLIT_PREFIX) and tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path, "rb") as handle:
                found[name[len(SPLIT_PREFIX) :]] = (
                    statistics_pb2.DatasetFeatureStatisticsList.FromString(handle.read())
                )
    if not found:
        raise FileNotFoundError(f"no {SPLIT_PREFIX}*/{STATISTICS_FILE} under {uri}")
    return found


def _feature_name(feature: statistics_pb2.FeatureNameStatistics) -> str:
    return ".".join(feature.path.step) if feature.path.step else feature.name


def read_statistics(uri: str) -> dict:
    """Rows per split and the range of DATE_FEATURE over every split."""
    splits = read_split_statistics(uri)
    rows = {split: sum(d.num_examples for d in stats.datasets) for split, stats in splits.items()}
    lows, highs = [], []
    for stats in splits.values():
        for dataset in stats.datasets:
            for feature in dataset.features:
                if _feature_name(feature) == DATE_FEATURE and feature.HasField("num_stats"):
                    lows.append(feature.num_stats.min)
                    highs.append(feature.num_stats.max)
    date_range = NOT_RECORDED
    if lows:
        low, high = int(min(lows)), int(max(highs))
        date_range = {
            "feature": DATE_FEATURE,
            "min": _utc(low),
            "max": _utc(high),
            "min_unix_seconds": low,
            "max_unix_seconds": high,
        }
    return {
        "uri": uri,
        "rows": rows,
        "total_rows": sum(rows.values()),
        "date_range": date_range,
    }


def feature_role(name: str) -> str:
    """What the model does with a raw column, from the feature contract (models/features.py)."""
    if name in features.NUMERIC_FEATURES:
        return "numeric"
    if name in features.BUCKETIZED_FEATURES:
        return "bucketized"
    if name in features.CATEGORICAL_INT_FEATURES:
        return "categorical integer"
    if name in features.VOCABULARY_FEATURES:
        return "vocabulary"
    if name == features.TIPS_KEY:
        return "label source"
    return "not used"


def read_features(uri: str) -> list[dict]:
    """Every column of the schema with its type and its role in the model."""
    schema = text_format.Parse(_read_text(os.path.join(uri, SCHEMA_FILE)), schema_pb2.Schema())
    return [
        {
            "name": feature.name,
            "type": schema_pb2.FeatureType.Name(feature.type),
            "role": feature_role(feature.name),
            "label_source": feature.name in (features.TIPS_KEY, features.FARE_KEY),
        }
        for feature in schema.feature
    ]


def read_hyperparameters(uri: str) -> dict:
    """The values of Keras Tuner's HyperParameters config, as the Tuner wrote them."""
    values = json.loads(_read_text(os.path.join(uri, HYPERPARAMETERS_FILE)))["values"]
    return {"uri": uri, "values": dict(sorted(values.items()))}


def read_infra_validation(uri: str) -> dict:
    """What the InfraValidator measured: server, load time, requests, latency, problems."""
    result = json.loads(_read_text(os.path.join(uri, INFRA_VALIDATION_FILE)))
    return {
        "uri": uri,
        "blessed": result["blessed"],
        "server": result.get("server", NOT_RECORDED),
        "load_seconds": result.get("load_seconds"),
        "requests_checked": result.get("requests_checked"),
        "warmup_records": result.get("warmup_records"),
        "latency_ms": result.get("latency_ms", {}),
        "problems": result.get("problems", []),
    }


def slice_name(slice_key) -> str:
    """'overall' or 'payment_type=Cash', as the GatedEvaluator names slices in its judgement."""
    parts = []
    for single in slice_key.single_slice_keys:
        value = getattr(single, single.WhichOneof("kind"))
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        parts.append(f"{single.column}={value}")
    return ", ".join(parts) or OVERALL


def read_metrics(uri: str) -> dict[tuple[str, str, str, bool], dict]:
    """Every numeric metric of TFMA's output by (slice, model, metric, is_diff), as estimates.

    Cross-slice metrics (the slice gaps) are left out: the judgement carries them.
    """
    # Here, not at the top: TFMA takes seconds to load, and push.py and the history command
    # import this module for its file names.
    import tensorflow_model_analysis as tfma

    found = {}
    for metrics in tfma.load_metrics(uri):
        if metrics.HasField("cross_slice_key"):
            continue
        name = slice_name(metrics.slice_key)
        for entry in metrics.metric_keys_and_values:
            if not entry.value.HasField("double_value"):
                continue
            low = high = None
            if entry.HasField("confidence_interval"):
                low = entry.confidence_interval.lower_bound.double_value.value
                high = entry.confidence_interval.upper_bound.double_value.value
            key = (name, entry.key.model_name, entry.key.name, entry.key.is_diff)
            found[key] = _estimate(entry.value.double_value.value, low, high)
    if not found:
        raise FileNotFoundError(f"no TFMA metrics under {uri}")
    return found


def threshold_text(rule: str, bound: float) -> str:
    """The rule as people read it, as the judge words it: '>= 0.9', '|gap| <= 0.1'..."""
    if rule in CHANGE_RULES:
        return f"change >= {bound:g} vs baseline"
    if rule == "slice_gaps":
        return f"|gap| <= {bound:g}"
    return f">= {bound:g}"


def _check(check: Mapping) -> dict:
    value = check.get("value")
    return {
        "rule": check["rule"],
        "metric": check["metric"],
        "threshold": threshold_text(check["rule"], check["bound"]),
        "bound": check["bound"],
        "verdict": check["verdict"],
        "value": _estimate(value["value"], value.get("low"), value.get("high")) if value else None,
        "note": check.get("note", ""),
    }


def slice_verdict(checks: Sequence[Mapping]) -> str:
    """One slice's verdict from its checks: any failure fails it."""
    if not checks:
        return NOT_GATED
    if any(check["verdict"] == FAIL for check in checks):
        return FAIL
    if all(check["verdict"] == NOT_JUDGED for check in checks):
        return NOT_JUDGED
    return PASS


def read_evaluation(uri: str) -> dict:
    """Every slice's metrics (candidate, baseline, change, with intervals), the rules, verdicts.

    The verdicts come from the GatedEvaluator's judgement beside TFMA's output; without one
    (an evaluation by TFX's stock Evaluator) they are "not recorded".
    """
    estimates = read_metrics(uri)
    models = {model for _, model, _, _ in estimates}
    candidate = next((name for name in CANDIDATE_MODEL_NAMES if name in models), "")
    judgement_path = os.path.join(uri, JUDGEMENT_FILE)
    judgement = (
        json.loads(_read_text(judgement_path)) if tf.io.gfile.exists(judgement_path) else None
    )
    # (slice or slice pair, check) for every check of the judgement.
    checks = [(raw["slice"], _check(raw)) for raw in (judgement or {}).get("checks", [])]
    checks_by_slice = {}
    for name, check in checks:
        checks_by_slice.setdefault(name, []).append(check)

    names = sorted({name for name, _, _, _ in estimates}, key=lambda n: (n != OVERALL, n))
    slices = []
    for name in names:
        metric_names = sorted(
            {m for s, model, m, _ in estimates if s == name and model == candidate}
        )
        metrics = {
            metric: {
                "candidate": estimates.get((name, candidate, metric, False)),
                "baseline": estimates.get((name, BASELINE_MODEL_NAME, metric, False)),
                "change": estimates.get((name, candidate, metric, True)),
            }
            for metric in metric_names
        }
        count = (metrics.get("example_count") or {}).get("candidate") or {}
        slice_checks = checks_by_slice.get(name, [])
        slices.append(
            {
                "slice": name,
                "example_count": int(count["value"]) if count.get("value") is not None else None,
                "metrics": metrics,
                "verdict": slice_verdict(slice_checks) if judgement else NOT_RECORDED,
                "checks": slice_checks,
            }
        )
    rules = {}
    for _, check in checks:
        if check["rule"] != "slice_gaps":
            rules.setdefault(
                (check["rule"], check["threshold"]),
                {
                    "rule": check["rule"],
                    "metric": check["metric"],
                    "threshold": check["threshold"],
                    "description": RULE_DESCRIPTIONS.get(check["rule"], ""),
                },
            )
    gaps = [{"slices": name, **check} for name, check in checks if check["rule"] == "slice_gaps"]
    return {
        "uri": uri,
        "interval": INTERVAL,
        "has_baseline": BASELINE_MODEL_NAME in models,
        "blessed": judgement["blessed"] if judgement else NOT_RECORDED,
        "rules": list(rules.values()),
        "slices": slices,
        "slice_gaps": gaps,
    }


# --- the card --------------------------------------------------------------------------------


class _Parts:
    """Reads the card's parts, each on its own: a part that cannot be read is "not recorded"."""

    def __init__(self) -> None:
        self.not_recorded: list[dict] = []

    def missing(self, part: str, reason: str) -> str:
        self.not_recorded.append({"part": part, "reason": reason})
        return NOT_RECORDED

    def read(
        self, part: str, ref: ArtifactRef | None, reader: Callable[[str], object], absent: str
    ) -> object:
        if ref is None:
            return self.missing(part, absent)
        try:
            return reader(ref.uri)
        except READ_ERRORS as error:
            text = str(error).strip().splitlines()
            return self.missing(
                part, f"could not read {ref.uri}: {type(error).__name__}: {text[0] if text else ''}"
            )


def _id(ref: ArtifactRef | None) -> int | str:
    return ref.id if ref is not None and ref.id is not None else NOT_RECORDED


def build_card(push: PushFacts, inputs: CardInputs) -> dict:
    """The model card of one push (docs/model_card.md), every missing part named."""
    parts = _Parts()
    model_details = {
        "pipeline_name": push.pipeline_name
        or parts.missing("model_details.pipeline_name", "the Pusher was given no pipeline name"),
        "model_name": push.model_name,
        "version": push.version,
        "pushed_at": _utc(push.pushed_at),
        "pipeline_run_id": push.run_id
        or parts.missing(
            "model_details.pipeline_run_id", "the orchestrator gave the Pusher no run id"
        ),
        "serving_path": push.serving_path,
        "trained_model_uri": inputs.model.uri
        if inputs.model
        else parts.missing("model_details.trained_model_uri", "the Pusher was given no model"),
        "label": {
            "name": features.LABEL_KEY,
            "definition": (
                f"{features.TIPS_KEY} > {features.TIP_FRACTION_THRESHOLD:g} * {features.FARE_KEY}"
            ),
        },
        "frameworks": dict(push.frameworks),
    }
    examples = [{"id": _id(ref), "span": ref.span, "uri": ref.uri} for ref in inputs.examples]
    if not examples:
        parts.missing("training_data.examples", "the Pusher was given no examples")
    training_data = {
        "data_root": push.data_root
        or parts.missing("training_data.data_root", "the Pusher was given no data root"),
        "spans": sorted({ref.span for ref in inputs.examples if ref.span is not None}),
        "examples": examples,
        "statistics": parts.read(
            "training_data.statistics",
            inputs.statistics,
            read_statistics,
            "the Pusher was given no statistics",
        ),
    }
    statistics = training_data["statistics"]
    if isinstance(statistics, dict) and statistics["date_range"] == NOT_RECORDED:
        parts.missing(
            "training_data.statistics.date_range", f"the statistics hold no range of {DATE_FEATURE}"
        )
    card = {
        "schema_version": SCHEMA_VERSION,
        "model_details": model_details,
        "training_data": training_data,
        "features": parts.read(
            "features", inputs.schema, read_features, "the Pusher was given no schema"
        ),
        "hyperparameters": parts.read(
            "hyperparameters",
            inputs.hyperparameters,
            read_hyperparameters,
            "no hyperparameters artifact: the Trainer used the model code's defaults",
        ),
        "evaluation": parts.read(
            "evaluation", inputs.evaluation, read_evaluation, "the Pusher was given no evaluation"
        ),
        "infra_validation": parts.read(
            "infra_validation",
            inputs.infra_blessing,
            read_infra_validation,
            "the Pusher was given no infra blessing",
        ),
        "lineage": {
            "model": _id(inputs.model),
            "model_blessing": _id(inputs.model_blessing),
            "infra_blessing": _id(inputs.infra_blessing),
            "examples": [_id(ref) for ref in inputs.examples],
            "statistics": _id(inputs.statistics),
            "schema": _id(inputs.schema),
            "hyperparameters": _id(inputs.hyperparameters),
            "evaluation": _id(inputs.evaluation),
        },
    }
    evaluation = card["evaluation"]
    if isinstance(evaluation, dict) and evaluation["blessed"] == NOT_RECORDED:
        parts.missing("evaluation.verdicts", f"no {JUDGEMENT_FILE} beside TFMA's output")
    card["known_limits"] = known_limits(card)
    card["not_recorded"] = parts.not_recorded
    return card


def known_limits(card: Mapping) -> list[dict]:
    """What the card's numbers do not say: unjudged slices and why, no baseline, one span's rows."""
    limits = []

    def limit(part: str, text: str, slice_: str | None = None) -> None:
        entry = {"part": part, "slice": slice_, "limit": text}
        if entry not in limits:
            limits.append(entry)

    evaluation = card["evaluation"]
    if isinstance(evaluation, dict):
        if not evaluation["has_baseline"]:
            limit(
                "evaluation",
                "no earlier blessed model: the no-regression checks start with the next model",
            )
        for row in evaluation["slices"]:
            for check in row["checks"]:
                if check["verdict"] == NOT_JUDGED:
                    limit("evaluation", check["note"], row["slice"])
            mean_label = (row["metrics"].get("mean_label") or {}).get("candidate") or {}
            if not row["checks"] and mean_label.get("value") in (0.0, 1.0):
                limit("evaluation", "one class only: AUC undefined", row["slice"])
        for gap in evaluation["slice_gaps"]:
            if gap["verdict"] == NOT_JUDGED:
                limit("evaluation", gap["note"], gap["slices"])
    training = card["training_data"]
    if len(training["spans"]) > 1 and isinstance(training["statistics"], dict):
        limit(
            "training_data",
            f"rows and date range describe this run's span ({max(training['spans'])}) only; "
            f"the Trainer read spans {', '.join(map(str, training['spans']))}",
        )
    return limits


def _json_safe(value: object) -> object:
    """`value` with every non-finite float (NaN from TFMA or a latency) as null."""
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, Mapping):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def to_json(card: Mapping) -> str:
    return json.dumps(_json_safe(card), indent=2, allow_nan=False) + "\n"


def card_files(card: Mapping) -> dict[str, bytes]:
    """The card as the files a push adds to its version (relative path -> content)."""
    return {
        CARD_JSON: to_json(card).encode("utf-8"),
        CARD_HTML: render_html(card).encode("utf-8"),
    }


# --- HTML ------------------------------------------------------------------------------------

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1f2328; margin: 0 auto; max-width: 1100px;
  padding: 12px 20px 40px; }
h1 { font-size: 21px; margin: 6px 0 2px; } h2 { font-size: 17px; margin: 24px 0 6px;
  border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: 4px 0 10px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: 2px 7px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td { overflow-wrap: anywhere; } .note { color: #6e7781; }
"""


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _number(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) >= 1 else f"{value:.4f}"
    return str(value)


# Metrics shown without an interval (a count's jackknife interval says nothing to a reader) and
# the ranges intervals are clipped to for display, as the run summary shows them (the JSON keeps
# TFMA's raw bounds).
COUNT_METRICS = ("example_count",)
RATE_METRICS = ("auc", "binary_accuracy", "precision", "recall", "mean_label")


def _interval(
    estimate: Mapping | None, signed: bool = False, within: tuple[float, float] | None = None
) -> str:
    """'0.9123 [0.9011, 0.9234]' (signed: '+0.0100 [-0.0030, +0.0230]'); '-' when missing.

    With `within`, the bounds are clipped to that range (a jackknife interval of a rate can
    reach past 0 or 1 on a small slice).
    """
    if not estimate or estimate.get("value") is None:
        return "-"
    form = "{:+.4f}" if signed else "{:.4f}"
    text = form.format(estimate["value"]) if signed else _number(estimate["value"])
    low, high = estimate.get("low"), estimate.get("high")
    if low is not None and high is not None:
        if within is not None:
            low, high = max(low, within[0]), min(high, within[1])
        text += f" [{form.format(low)}, {form.format(high)}]"
    return text


def _metric_cells(name: str, metric: Mapping) -> tuple[str, str, str]:
    """Candidate, baseline and change of one metric as the card's tables show them."""
    if name in COUNT_METRICS:
        return tuple(  # type: ignore[return-value]
            _number((metric[key] or {}).get("value")) if metric[key] else "-"
            for key in ("candidate", "baseline", "change")
        )
    rate = (0.0, 1.0) if name in RATE_METRICS else None
    return (
        _interval(metric["candidate"], within=rate),
        _interval(metric["baseline"], within=rate),
        _interval(metric["change"], signed=True, within=(-1.0, 1.0) if rate else None),
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{_esc(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _pairs(pairs: Sequence[tuple[str, object]]) -> str:
    return (
        "<table>"
        + "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in pairs)
        + "</table>"
    )


def _section(title: str, body: str) -> str:
    return f"<h2>{_esc(title)}</h2>{body}"


def _html_evaluation(evaluation: object) -> str:
    if not isinstance(evaluation, Mapping):
        return f"<p>{_esc(evaluation)}</p>"
    blessed = evaluation["blessed"]
    verdict = "blessed" if blessed is True else "NOT blessed" if blessed is False else blessed
    out = [
        f"<p>Verdict: <b>{_esc(verdict)}</b>; baseline: "
        f"{'the last blessed model' if evaluation['has_baseline'] else 'none'}. "
        f"Shown as {_esc(evaluation['interval'])}.</p>"
    ]
    out.append(
        _table(
            ["rule", "threshold", "meaning"],
            [(r["rule"], r["threshold"], r["description"]) for r in evaluation["rules"]],
        )
    )
    slices = evaluation["slices"]
    overall = next((s for s in slices if s["slice"] == OVERALL), None)
    if overall:
        out.append("<p>Overall slice:</p>")
        out.append(
            _table(
                ["metric", "candidate", "baseline", "change"],
                [(name, *_metric_cells(name, m)) for name, m in overall["metrics"].items()],
            )
        )
    rows = []
    for row in slices:
        auc = row["metrics"].get("auc") or {}
        mean_label = (row["metrics"].get("mean_label") or {}).get("candidate") or {}
        if mean_label.get("value") in (0.0, 1.0):
            auc = {}  # one class only: TFMA's AUC of 0 says nothing
        notes = "; ".join(
            f"{c['threshold']}: {c['note']}" if c["note"] else c["threshold"] for c in row["checks"]
        )
        rows.append(
            (
                row["slice"],
                _number(row["example_count"]),
                *(_metric_cells("auc", auc) if auc else ("-", "-", "-")),
                row["verdict"],
                notes,
            )
        )
    for gap in evaluation["slice_gaps"]:
        rows.append(
            (
                gap["slices"],
                "-",
                _interval(gap["value"], True),
                "-",
                "-",
                gap["verdict"],
                gap["note"],
            )
        )
    out.append("<p>AUC by slice:</p>")
    out.append(
        _table(["slice", "examples", "AUC", "baseline AUC", "change", "verdict", "rules"], rows)
    )
    return "".join(out)


def _html_value(value: object) -> str:
    """A part that may be "not recorded", or a mapping shown as a two-column table."""
    if isinstance(value, Mapping):
        return _pairs(
            [(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in value.items()]
        )
    return f"<p>{_esc(value)}</p>"


def render_html(card: Mapping) -> str:
    """The card as one self-contained HTML page: inline CSS, nothing fetched, no script."""
    details = card["model_details"]
    training = card["training_data"]
    statistics = training["statistics"]
    body = [
        f"<h1>Model card: {_esc(details['model_name'])} version {_esc(details['version'])}</h1>",
        _section(
            "Model details",
            _pairs(
                [
                    ("pipeline", details["pipeline_name"]),
                    ("run", details["pipeline_run_id"]),
                    ("pushed at", details["pushed_at"]),
                    ("serving path", details["serving_path"]),
                    ("label", f"{details['label']['name']} = {details['label']['definition']}"),
                    *[(f"{name} version", v) for name, v in details["frameworks"].items()],
                ]
            ),
        ),
    ]
    data_rows = [
        ("data root", training["data_root"]),
        ("spans", ", ".join(map(str, training["spans"])) or NOT_RECORDED),
    ]
    if isinstance(statistics, Mapping):
        data_rows += [(f"rows ({split})", n) for split, n in statistics["rows"].items()]
        date_range = statistics["date_range"]
        if isinstance(date_range, Mapping):
            date_range = f"{date_range['min']} to {date_range['max']} ({date_range['feature']})"
        data_rows.append(("date range", date_range))
    else:
        data_rows.append(("statistics", statistics))
    data_rows += [(f"examples (span {e['span']})", e["uri"]) for e in training["examples"]]
    body.append(_section("Training data", _pairs(data_rows)))
    body.append(_section("Evaluation", _html_evaluation(card["evaluation"])))
    infra = card["infra_validation"]
    if isinstance(infra, Mapping):
        infra = {k: v for k, v in infra.items() if k != "uri"}
    body.append(_section("Infra validation", _html_value(infra)))
    hyperparameters = card["hyperparameters"]
    if isinstance(hyperparameters, Mapping):
        hyperparameters = hyperparameters["values"]
    body.append(_section("Hyperparameters", _html_value(hyperparameters)))
    feature_list = card["features"]
    body.append(
        _section(
            "Features",
            _table(
                ["name", "type", "role", "label source"],
                [
                    (f["name"], f["type"], f["role"], "yes" if f["label_source"] else "")
                    for f in feature_list
                ],
            )
            if isinstance(feature_list, list)
            else _html_value(feature_list),
        )
    )
    body.append(
        _section(
            "Known limits",
            _table(
                ["part", "slice", "limit"],
                [(x["part"], x["slice"] or "", x["limit"]) for x in card["known_limits"]],
            )
            if card["known_limits"]
            else "<p>none</p>",
        )
    )
    if card["not_recorded"]:
        body.append(
            _section(
                "Not recorded",
                _table(
                    ["part", "reason"], [(x["part"], x["reason"]) for x in card["not_recorded"]]
                ),
            )
        )
    body.append(_section("Lineage (MLMD artifact ids)", _html_value(card["lineage"])))
    title = f"Model card: {details['model_name']} version {details['version']}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>"
        + "".join(body)
        + f'<p class="note">schema_version {_esc(card["schema_version"])}</p></body></html>\n'
    )

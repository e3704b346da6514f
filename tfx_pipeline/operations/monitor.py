"""`python -m tfx_pipeline.monitor`: skew, drift and prediction drift of logged requests, per served version.

Reads the server's request log (complete `*.tfrecord` files written by `python -m serving
--request_log_dir`) and keeps the requests of the last --window-hours answered by the newest
version in that window. Three checks (tfx_pipeline/drift.py, docs/drift.md), each feature's
distance with its significance at the sizes compared, a change counting only when both:

- skew: against the training statistics of that version, found through MLMD lineage (Pusher
  <- Trainer <- Transform <- ExampleGen -> StatisticsGen);
- drift: against the window before, same version, when it had enough requests;
- prediction drift: the served predictions against the version's predictions on its eval split.

Thresholds and the false-alarm budget come from data/schema/monitoring.json. The served rows are
also validated against the schema (e.g. a payment type outside the closed list).

Writes <output-dir>/monitoring/report-<time>.{json,txt}, naming what moved, by how much and how
surely, and what the watch loop will do; on an alert also
<output-dir>/monitoring/triggers/<time>.json, which `local_runner.py --watch` consumes, and a
`monitor_alert` notification (--notifications).
"""

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import sys
import time
from collections.abc import Callable, Iterable

from models import features
from tfx_pipeline import config as config_lib
from tfx_pipeline import inputs, layout, metadata
from tfx_pipeline.notifications import config as notifications_config
from tfx_pipeline.notifications import events as notification_events
from tfx_pipeline.notifications.notifier import Notifier
from tfx_pipeline.problems import EXIT_USAGE, ConfigProblems, print_problems, raise_if_any

DEFAULT_CONFIG = layout.MONITORING_CONFIG
DEFAULT_SCHEMA = layout.CURATED_SCHEMA

EXIT_OK = 0
EXIT_TOO_FEW = 3
EXIT_ALERT = 4

# The request log's record layout, written by serving/request_log.py. A file contract like the TF
# Serving model layout, so the pipeline does not import serving/; tests/test_contracts.py reads
# a log the server wrote with these names.
LOG_FILE_SUFFIX = ".tfrecord"
LOG_METADATA_PREFIX = "__log_"
LOG_MODEL_KEY = "__log_model_name"
LOG_VERSION_KEY = "__log_model_version"
LOG_TIME_KEY = "__log_time_micros"
LOG_OUTPUT_PREFIX = "__log_output_"

STATUS_OK = "ok"
STATUS_ALERT = "alert"
STATUS_TOO_FEW = "too_few_requests"
# The report's checks, and how its lines name them.
CHECK_SKEW = "training"
CHECK_WINDOW = "previous_window"
CHECK_PREDICTIONS = "predictions"
CHECKS = {
    CHECK_SKEW: "vs training data",
    CHECK_WINDOW: "vs previous window",
    CHECK_PREDICTIONS: "predictions vs eval split",
}
# How prediction drift names the model's output in a report.
PREDICTION_FEATURE = "prediction"

EPILOG = f"""\
exit status:
  {EXIT_OK}  nothing moved significantly past its threshold
  {EXIT_ALERT}  alert: a feature or the predictions moved significantly past the threshold, or the
     requests break the schema
     (a trigger file for local_runner.py --watch is written)
  {EXIT_TOO_FEW}  too few logged requests in the window to judge (not an alert)
  {EXIT_USAGE}  bad flags, config or paths, or no training statistics for the served version
"""


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    """Which features are compared and how far each may move (data/schema/monitoring.json)."""

    features: tuple[str, ...]
    min_requests: int
    window_hours: float
    categorical_threshold: float
    numeric_threshold: float
    feature_thresholds: dict[str, float]
    alert_on_schema_anomalies: bool
    false_alarm_rate: float = 0.01

    def threshold(self, feature: str, categorical: bool) -> float:
        default = self.categorical_threshold if categorical else self.numeric_threshold
        return self.feature_thresholds.get(feature, default)


def read_config(path: pathlib.Path) -> MonitorConfig:
    """Reads and checks the monitoring config; raises ConfigProblems naming every problem."""
    raw = inputs.read_json_object(path, "monitoring config")
    problems = []
    known = {
        "features",
        "min_requests",
        "window_hours",
        "skew_thresholds",
        "feature_thresholds",
        "alert_on_schema_anomalies",
        "false_alarm_rate",
    }
    problems += [f"unknown key {key!r}" for key in sorted(set(raw) - known)]
    features = raw.get("features")
    if not (isinstance(features, list) and features and all(isinstance(f, str) for f in features)):
        problems.append("'features' must be a non-empty list of feature names")
        features = []
    thresholds = raw.get("skew_thresholds", {})
    categorical = thresholds.get("categorical_infinity_norm")
    numeric = thresholds.get("numeric_jensen_shannon_divergence")
    for name, value in (
        ("skew_thresholds.categorical_infinity_norm", categorical),
        ("skew_thresholds.numeric_jensen_shannon_divergence", numeric),
        *((f"feature_thresholds.{k}", v) for k, v in raw.get("feature_thresholds", {}).items()),
    ):
        if not isinstance(value, int | float) or not 0 < value <= 1:
            problems.append(f"{name} must be a number in (0, 1], got {value!r}")
    unknown_overrides = set(raw.get("feature_thresholds", {})) - set(features)
    problems += [f"feature_thresholds.{k} is not in 'features'" for k in sorted(unknown_overrides)]
    min_requests = raw.get("min_requests", 200)
    if not isinstance(min_requests, int) or min_requests < 1:
        problems.append(f"min_requests must be a positive whole number, got {min_requests!r}")
    window_hours = raw.get("window_hours", 24)
    if not isinstance(window_hours, int | float) or window_hours <= 0:
        problems.append(f"window_hours must be a positive number, got {window_hours!r}")
    false_alarm_rate = raw.get("false_alarm_rate", 0.01)
    if not isinstance(false_alarm_rate, int | float) or not 0 < false_alarm_rate < 1:
        problems.append(f"false_alarm_rate must be a number in (0, 1), got {false_alarm_rate!r}")
    raise_if_any(problems, f"monitoring config {path}")
    return MonitorConfig(
        features=tuple(features),
        min_requests=min_requests,
        window_hours=float(window_hours),
        categorical_threshold=float(categorical),
        numeric_threshold=float(numeric),
        feature_thresholds={k: float(v) for k, v in raw.get("feature_thresholds", {}).items()},
        alert_on_schema_anomalies=bool(raw.get("alert_on_schema_anomalies", True)),
        false_alarm_rate=float(false_alarm_rate),
    )


@dataclasses.dataclass(frozen=True)
class LoggedRequests:
    """The logged rows of one model in the window, features only, by the version that answered."""

    by_version: dict[int, list[bytes]]
    files: int
    newest_version: int | None


def completed_log_files(log_dir: pathlib.Path) -> list[pathlib.Path]:
    """Complete log files; files still being written are hidden (dot-named) and skipped."""
    return sorted(
        p for p in log_dir.iterdir() if p.name.endswith(LOG_FILE_SUFFIX) and p.name[0] != "."
    )


def read_request_log(
    log_dir: pathlib.Path, model_name: str, since_micros: int, until_micros: int | None = None
) -> LoggedRequests:
    """Rows of `model_name` logged in [since_micros, until_micros), input features and outputs.

    The log's own metadata is removed, except the model's outputs (`__log_output_*`), which the
    prediction drift check reads and the feature checks ignore.
    """
    import tensorflow as tf
    from tensorflow.core.example import example_pb2

    files = completed_log_files(log_dir)
    by_version: dict[int, list[bytes]] = {}
    newest: tuple[int, int] | None = None
    if files:
        for record in tf.data.TFRecordDataset([str(p) for p in files]).as_numpy_iterator():
            example = example_pb2.Example.FromString(record)
            feature = example.features.feature
            if feature[LOG_MODEL_KEY].bytes_list.value[:1] != [model_name.encode()]:
                continue
            logged_at = feature[LOG_TIME_KEY].int64_list.value[0]
            if logged_at < since_micros or (until_micros is not None and logged_at >= until_micros):
                continue
            version = feature[LOG_VERSION_KEY].int64_list.value[0]
            for key in [k for k in feature if k.startswith(LOG_METADATA_PREFIX)]:
                if not key.startswith(LOG_OUTPUT_PREFIX):
                    del feature[key]
            by_version.setdefault(version, []).append(example.SerializeToString())
            if newest is None or logged_at > newest[0]:
                newest = (logged_at, version)
    return LoggedRequests(by_version, len(files), newest[1] if newest else None)


@dataclasses.dataclass(frozen=True)
class ServedVersion:
    """What a pushed version is compared with, found through MLMD lineage."""

    training_statistics: str  # FeatureStats.pb of the train split it was trained on
    trained_span: int | None
    evaluation: str | None  # the evaluation that blessed it (its eval-split predictions)


def served_version(metadata_path: str, pipeline_name: str, version: int) -> ServedVersion:
    """The training statistics, span and blessing evaluation of the pushed `version`.

    Raises LookupError naming what is missing.
    """
    store = metadata.open_store(metadata_path)
    pushes = [p for p in metadata.pushed_models(store, pipeline_name) if p.version == version]
    if not pushes or pushes[-1].model_id is None:
        raise LookupError(
            f"version {version} was not pushed by pipeline {pipeline_name!r} "
            f"(no Pusher record in {metadata_path})"
        )
    push = pushes[-1]
    examples = metadata.training_examples(store, push.model_id)
    # Trained on several spans: the newest stands for them (the others passed the drift gate).
    statistics = metadata.statistics_of(store, examples[-1].id) if examples else None
    if statistics is None:
        raise LookupError(f"no StatisticsGen output for the data version {version} trained on")
    path = os.path.join(statistics.uri, "Split-train", "FeatureStats.pb")
    if not os.path.exists(path):
        raise LookupError(f"training statistics of version {version} are gone: {path}")
    span = metadata.custom_property(examples[-1], "span")
    evaluation = (
        metadata.evaluation_of_blessing(store, push.blessing_id) if push.blessing_id else None
    )
    return ServedVersion(
        training_statistics=path,
        trained_span=int(span) if span is not None else None,
        evaluation=evaluation.uri if evaluation is not None else None,
    )


def monitored_schema(schema, config: MonitorConfig):  # noqa: ANN001, ANN201 - schema_pb2.Schema
    """The schema restricted to the monitored features, for validating the served rows.

    Features a request never carries (the label, the trip timestamp) are dropped so their absence
    is not an anomaly, and so is the dataset's minimum row count (min_requests decides that).
    TFDV's comparators are cleared: skew and drift are measured by `tfx_pipeline.drift`.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    restricted = schema_pb2.Schema()
    restricted.CopyFrom(schema)
    restricted.ClearField("dataset_constraints")
    missing = set(config.features) - {f.name for f in schema.feature}
    if missing:
        raise ConfigProblems([f"monitored features {sorted(missing)} are not in the schema"])
    kept = [f for f in restricted.feature if f.name in config.features]
    del restricted.feature[:]
    for feature in kept:
        feature.ClearField("drift_comparator")
        feature.ClearField("skew_comparator")
        restricted.feature.append(feature)
    return restricted


def decode(records: list[bytes]):  # noqa: ANN201 - pyarrow.RecordBatch
    """Logged tf.Examples as one Arrow RecordBatch (tfx_bsl's C++ decoder), read once for the
    drift checks' values and for the schema validation's statistics."""
    from tfx_bsl.coders import example_coder

    return example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(list(records))


def feature_comparisons(
    window: dict[str, list],
    reference: dict,
    config: MonitorConfig,
    false_alarm_rate: float,
) -> list:
    """Each monitored feature of the window against `reference` (name -> drift.Distribution)."""
    from tfx_pipeline import drift

    samples, thresholds = {}, {}
    for name in config.features:
        if name not in reference:
            continue
        kind = reference[name].kind
        samples[name] = drift.from_values(window.get(name, []), kind)
        thresholds[name] = config.threshold(name, kind == drift.CATEGORICAL)
    return drift.compare_all(reference, samples, thresholds, false_alarm_rate)


def training_reference(training_statistics) -> dict:  # noqa: ANN001
    """The training split's statistics as drift references, by feature."""
    from tfx_pipeline import drift

    return {
        name: drift.from_statistics(stats)
        for name, stats in drift.statistics_by_feature(training_statistics).items()
    }


def window_reference(window: dict[str, list], kinds: dict[str, str]) -> dict:
    """An earlier window's raw values as drift references, by feature (kinds from training)."""
    from tfx_pipeline import drift

    return {name: drift.from_values(window[name], kind) for name, kind in kinds.items()}


def prediction_comparison(
    outputs: list, evaluation_uri: str, config: MonitorConfig, alpha_rate: float
) -> list:
    """The served predictions against the candidate's predictions on its eval split."""
    from tfx_pipeline import drift
    from tfx_pipeline.reporting import evaluation_plots

    buckets = evaluation_plots.prediction_buckets(evaluation_uri)
    if not buckets:
        return []
    present = sum(count for _, _, count in buckets)
    reference = drift.Distribution(drift.NUMERIC, present=present, buckets=tuple(buckets))
    sample = drift.from_values(outputs, drift.NUMERIC)
    name = PREDICTION_FEATURE
    return [drift.compare(name, reference, sample, config.numeric_threshold, alpha_rate)]


def schema_anomalies(
    batch,  # noqa: ANN001 - the served rows, a pyarrow.RecordBatch (`decode`)
    schema,  # noqa: ANN001 - schema_pb2.Schema
    config: MonitorConfig,
) -> dict[str, list[str]]:
    """TFDV's validation of the served rows against the schema (SERVING environment).

    The rows' statistics are computed in memory, as TFDV's own DataFrame entry point does: a
    window is small, and a Beam pipeline would cost seconds of start-up for each report.
    """
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics import stats_impl

    checked = monitored_schema(schema, config)
    options = tfdv.StatsOptions(feature_allowlist=list(config.features))
    serving_statistics = stats_impl.generate_statistics_in_memory(batch, options)
    anomalies = tfdv.validate_statistics(serving_statistics, checked, environment="SERVING")
    return {
        name: [f"{reason.short_description}: {reason.description}" for reason in info.reason]
        for name, info in sorted(anomalies.anomaly_info.items())
    }


@dataclasses.dataclass
class Report:
    status: str
    model_name: str
    created: str
    window_hours: float
    log_files: int
    requests: int
    min_requests: int
    version: int | None = None
    other_versions: dict[int, int] = dataclasses.field(default_factory=dict)
    training_statistics: str | None = None
    # Each check's comparisons (tfx_pipeline.drift.Comparison), by CHECKS name.
    checks: dict[str, list] = dataclasses.field(default_factory=dict)
    previous_requests: int = 0
    schema_anomalies: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    alert_on_schema_anomalies: bool = True
    false_alarm_rate: float = 0.01
    trained_span: int | None = None
    newest_span: int | None = None

    @property
    def moved(self) -> list[tuple[str, object]]:
        """(check, comparison) of every feature that moved, in CHECKS order."""
        return [(check, c) for check in CHECKS for c in self.checks.get(check, []) if c.moved]

    @property
    def features_moved(self) -> list[str]:
        return list(dict.fromkeys(c.feature for _, c in self.moved))

    def next_step(self) -> str:
        """What the watch loop will do about an alert."""
        if self.newest_span is not None and (
            self.trained_span is None or self.newest_span > self.trained_span
        ):
            return f"local_runner.py --watch retrains on span {self.newest_span}"
        span = f"span {self.trained_span}" if self.trained_span is not None else "its data"
        return (
            f"nothing new to retrain on: version {self.version} was trained on {span}; "
            "the watch loop reruns the pipeline, which keeps the model until a new span lands"
        )

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["other_versions"] = {str(k): v for k, v in self.other_versions.items()}
        data["checks"] = {
            check: [c.to_json() for c in comparisons] for check, comparisons in self.checks.items()
        }
        data["features_moved"] = self.features_moved
        if self.status == STATUS_ALERT:
            data["next_step"] = self.next_step()
        return data

    def summary_lines(self) -> Iterable[str]:
        """The readable report: the verdict first, then what moved, by how much, how surely."""
        verdict = {
            STATUS_OK: "OK: nothing moved significantly past its threshold",
            STATUS_ALERT: "ALERT: the served data moved",
            STATUS_TOO_FEW: (
                f"TOO FEW REQUESTS: {self.requests} logged, {self.min_requests} needed to judge "
                "(not an alert)"
            ),
        }[self.status]
        yield f"Monitoring {self.model_name} at {self.created}: {verdict}"
        version = f"version {self.version}" if self.version is not None else "no version"
        yield (
            f"Requests:  {self.requests} answered by {version} in the last "
            f"{self.window_hours:g} h ({self.log_files} log files)"
        )
        if self.other_versions:
            others = ", ".join(f"{v}: {n}" for v, n in sorted(self.other_versions.items()))
            yield f"           not compared (answered by other versions): {others}"
        if self.training_statistics:
            yield f"Compared with the training statistics {self.training_statistics}"
        if self.checks:
            yield (
                f"A change counts when significant (at most {self.false_alarm_rate:.0%} false "
                "alarms per report) and over its threshold"
            )
        for check, comparison in self.moved:
            yield f"  MOVED ({CHECKS[check]}) {comparison.text()}"
        for feature, reasons in self.schema_anomalies.items():
            for reason in reasons:
                yield f"  SCHEMA {feature}: {reason}"
        for check in CHECKS:
            comparisons = self.checks.get(check)
            if comparisons is None:
                continue
            steady = [
                f"{c.feature} {c.distance:.3f}" + ("" if c.significant else " (not significant)")
                for c in comparisons
                if not c.moved
            ]
            if check == CHECK_WINDOW:
                yield f"  {CHECKS[check]}: {self.previous_requests} requests in the previous window"
            if steady:
                yield f"  within thresholds ({CHECKS[check]}): " + ", ".join(steady)
        if self.status == STATUS_ALERT:
            yield f"Next:      {self.next_step()}"


def evaluate(
    current: LoggedRequests,
    model_name: str,
    config: MonitorConfig,
    schema,  # noqa: ANN001 - schema_pb2.Schema
    served_version_of: Callable[[int], ServedVersion],
    version: int | None = None,
    previous: LoggedRequests | None = None,
    newest_span: int | None = None,
) -> Report:
    """The report for the requests of `version` (default: the newest that answered).

    Three checks, each with a third of the false-alarm budget: the window against the training
    data (skew), against the previous window of the same version (drift, when it had enough
    requests), and the served predictions against the eval split's (prediction drift).
    """
    import numpy as np
    import tensorflow_data_validation as tfdv

    from tfx_pipeline import drift

    chosen = version if version is not None else current.newest_version
    rows = current.by_version.get(chosen, []) if chosen is not None else []
    report = Report(
        status=STATUS_TOO_FEW,
        model_name=model_name,
        created=datetime.datetime.now().isoformat(timespec="seconds"),
        window_hours=config.window_hours,
        log_files=current.files,
        requests=len(rows),
        min_requests=config.min_requests,
        version=chosen,
        other_versions={v: len(r) for v, r in current.by_version.items() if v != chosen},
        alert_on_schema_anomalies=config.alert_on_schema_anomalies,
        false_alarm_rate=config.false_alarm_rate,
        newest_span=newest_span,
    )
    if len(rows) < config.min_requests:
        return report
    served = served_version_of(chosen)
    report.training_statistics = served.training_statistics
    report.trained_span = served.trained_span
    reference = training_reference(tfdv.load_stats_binary(served.training_statistics))
    reference = {name: reference[name] for name in config.features if name in reference}
    output_key = LOG_OUTPUT_PREFIX + features.PROBABILITY_OUTPUT
    batch = decode(rows)
    window = drift.first_values(batch, [*reference, output_key])
    earlier = previous.by_version.get(chosen, []) if previous is not None else []
    report.previous_requests = len(earlier)
    checks = [CHECK_SKEW]
    if len(earlier) >= config.min_requests:
        checks.append(CHECK_WINDOW)
    outputs = window[output_key]
    predictions = outputs[~np.isnan(outputs)] if outputs.dtype.kind == "f" else []
    if served.evaluation and len(predictions):
        checks.append(CHECK_PREDICTIONS)
    # A third of the budget per check, made or not: a report without the drift check is not
    # allowed more false alarms per feature.
    rate = config.false_alarm_rate / len(CHECKS)
    report.checks[CHECK_SKEW] = feature_comparisons(window, reference, config, rate)
    if CHECK_WINDOW in checks:
        kinds = {name: dist.kind for name, dist in reference.items()}
        before = window_reference(drift.first_values(decode(earlier), kinds), kinds)
        report.checks[CHECK_WINDOW] = feature_comparisons(window, before, config, rate)
    if CHECK_PREDICTIONS in checks:
        report.checks[CHECK_PREDICTIONS] = prediction_comparison(
            predictions, served.evaluation, config, rate
        )
    report.schema_anomalies = schema_anomalies(batch, schema, config)
    alert = bool(report.moved) or (config.alert_on_schema_anomalies and report.schema_anomalies)
    report.status = STATUS_ALERT if alert else STATUS_OK
    return report


def write_report(report: Report, output_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    """report-<time>.{json,txt} under <output-dir>/monitoring/, and a trigger file on an alert."""
    output = layout.OutputLayout(output_dir)
    folder = output.monitoring_dir
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    data = report.to_json()
    written = {
        "json": folder / f"report-{stamp}.json",
        "text": folder / f"report-{stamp}.txt",
    }
    written["json"].write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    written["text"].write_text("\n".join(report.summary_lines()) + "\n")
    if report.status == STATUS_ALERT:
        triggers = output.triggers_dir
        triggers.mkdir(parents=True, exist_ok=True)
        trigger = triggers / f"{stamp}.json"
        # Written beside and renamed: the watch loop never reads a half-written trigger.
        partial = triggers / f".{stamp}.json.partial"
        partial.write_text(
            json.dumps(
                {
                    "report": str(written["json"]),
                    "model_name": report.model_name,
                    "version": report.version,
                    "features_moved": data["features_moved"],
                    "schema_anomalies": sorted(report.schema_anomalies),
                },
                indent=2,
            )
            + "\n"
        )
        partial.rename(trigger)
        written["trigger"] = trigger
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfx_pipeline.monitor",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--log-dir",
        type=pathlib.Path,
        required=True,
        help="the server's --request_log_dir",
    )
    parser.add_argument(
        "--output-dir",
        type=pathlib.Path,
        default=layout.DEFAULT_OUTPUT_DIR,
        help="the runner's --output-dir: MLMD is read there, reports go to its monitoring/ "
        "(default: %(default)s)",
    )
    parser.add_argument("--model-name", default=config_lib.MODEL_NAME, help="default: %(default)s")
    parser.add_argument(
        "--pipeline-name", default=config_lib.LOCAL_PIPELINE_NAME, help="default: %(default)s"
    )
    parser.add_argument(
        "--config", type=pathlib.Path, default=DEFAULT_CONFIG, help="default: %(default)s"
    )
    parser.add_argument(
        "--schema", type=pathlib.Path, default=DEFAULT_SCHEMA, help="default: %(default)s"
    )
    parser.add_argument(
        "--data-root",
        type=pathlib.Path,
        default=layout.BUNDLED_DATA_ROOT,
        help="the runner's --data-root: an alert says whether a newer span is there to retrain "
        "on (default: %(default)s)",
    )
    parser.add_argument(
        "--window-hours",
        type=float,
        help="only requests logged this recently (default: the config's window_hours)",
    )
    parser.add_argument(
        "--min-requests",
        type=int,
        help="fewer requests than this is 'too few to judge' (default: the config's min_requests)",
    )
    parser.add_argument(
        "--version",
        type=int,
        help="compare the requests of this version (default: the newest that answered)",
    )
    notifications_config.add_argument(parser)
    return parser


def notify_alert(
    report: Report,
    written: dict[str, pathlib.Path],
    notifications: notifications_config.NotificationConfig,
    pipeline_name: str,
) -> None:
    """Sends the alert to the sinks configured for monitor alerts: what moved, how far, how
    surely, and what the loop will do."""
    moved = report.features_moved or sorted(report.schema_anomalies)
    with Notifier(notifications, pipeline=pipeline_name) as notifier:
        notifier.notify(
            notification_events.MONITOR_ALERT,
            f"monitor alert on {report.model_name} version {report.version}: "
            f"{', '.join(moved)} moved",
            details={
                "model_name": report.model_name,
                "version": report.version,
                "features_moved": report.features_moved,
                "moved": [
                    {"check": check, **comparison.to_json()} for check, comparison in report.moved
                ],
                "schema_anomalies": report.schema_anomalies,
                "next_step": report.next_step(),
                "report": str(written["json"]),
                "trigger": str(written.get("trigger")),
            },
            summary_lines=list(report.summary_lines()),
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problems = []
    if not args.log_dir.is_dir():
        problems.append(
            f"request log folder {args.log_dir} does not exist (the server's --request_log_dir)"
        )
    if args.window_hours is not None and not args.window_hours > 0:
        problems.append(f"--window-hours must be positive, got {args.window_hours}")
    if args.min_requests is not None and args.min_requests < 1:
        problems.append(f"--min-requests must be at least 1, got {args.min_requests}")
    metadata_path = layout.OutputLayout(args.output_dir).metadata_path
    if not metadata_path.exists():
        problems.append(f"no pipeline metadata at {metadata_path}; run the pipeline first")
    config = schema = None
    try:
        config = read_config(args.config)
    except ConfigProblems as error:
        problems += error.problems
    try:
        schema = inputs.read_schema(args.schema)
    except ConfigProblems as error:
        problems += error.problems
    if config is not None and schema is not None:
        try:
            monitored_schema(schema, config)
        except ConfigProblems as error:
            problems += error.problems
    notifications = notifications_config.NotificationConfig()
    if args.notifications is not None:
        try:
            notifications = notifications_config.read_config(args.notifications)
        except ConfigProblems as error:
            problems += error.problems
    if problems:
        return print_problems(problems)
    config = dataclasses.replace(
        config,
        window_hours=args.window_hours or config.window_hours,
        min_requests=args.min_requests or config.min_requests,
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    now = time.time()
    window_micros = int(config.window_hours * 3600 * 1e6)
    until = int(now * 1e6)
    logged = read_request_log(args.log_dir, args.model_name, until - window_micros)
    previous = read_request_log(
        args.log_dir, args.model_name, until - 2 * window_micros, until - window_micros
    )
    try:
        newest_span = layout.latest_span_number(args.data_root)
    except OSError:
        newest_span = None

    def served_version_of(version: int) -> ServedVersion:
        return served_version(str(metadata_path), args.pipeline_name, version)

    try:
        report = evaluate(
            logged,
            args.model_name,
            config,
            schema,
            served_version_of,
            args.version,
            previous=previous,
            newest_span=newest_span,
        )
    except LookupError as error:
        return print_problems([f"cannot compare: {error}"])
    written = write_report(report, args.output_dir)
    for line in report.summary_lines():
        print(line)
    print(f"Report:    {written['json']}")
    if "trigger" in written:
        print(f"Trigger:   {written['trigger']} (local_runner.py --watch retrains on it)")
    if report.status == STATUS_ALERT:
        notify_alert(report, written, notifications, args.pipeline_name)
    return {STATUS_OK: EXIT_OK, STATUS_ALERT: EXIT_ALERT, STATUS_TOO_FEW: EXIT_TOO_FEW}[
        report.status
    ]


if __name__ == "__main__":
    sys.exit(main())

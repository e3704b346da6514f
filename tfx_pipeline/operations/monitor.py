"""`python -m tfx_pipeline.monitor`: training/serving skew of logged requests, per served version.

Reads the server's request log (complete `*.tfrecord` files written by `python -m serving
--request_log_dir`), keeps the requests of the last --window-hours answered by the newest
version in that window, computes their TFDV statistics and compares them with the training
statistics of that version, found through MLMD lineage (Pusher <- Trainer <- Transform <-
ExampleGen -> StatisticsGen). Skew uses TFDV's comparators with thresholds from
data/schema/monitoring.json: L-infinity distance for string features, Jensen-Shannon
divergence (on quantile histograms) for numeric ones. The served data is also validated against
the schema (e.g. a payment type outside the closed list).

Writes <output-dir>/monitoring/report-<time>.{json,txt}; on an alert also
<output-dir>/monitoring/triggers/<time>.json, which `local_runner.py --watch` consumes.
"""

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterable

from tfx_pipeline import config as config_lib
from tfx_pipeline import inputs, layout, metadata
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

STATUS_OK = "ok"
STATUS_ALERT = "alert"
STATUS_TOO_FEW = "too_few_requests"
L_INFINITY = "infinity_norm"
JENSEN_SHANNON = "jensen_shannon_divergence"

EPILOG = f"""\
exit status:
  {EXIT_OK}  no monitored feature moved past its threshold
  {EXIT_ALERT}  alert: a feature moved past its threshold or the requests break the schema
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
    raise_if_any(problems, f"monitoring config {path}")
    return MonitorConfig(
        features=tuple(features),
        min_requests=min_requests,
        window_hours=float(window_hours),
        categorical_threshold=float(categorical),
        numeric_threshold=float(numeric),
        feature_thresholds={k: float(v) for k, v in raw.get("feature_thresholds", {}).items()},
        alert_on_schema_anomalies=bool(raw.get("alert_on_schema_anomalies", True)),
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


def read_request_log(log_dir: pathlib.Path, model_name: str, since_micros: int) -> LoggedRequests:
    """Rows of `model_name` logged at or after `since_micros`, metadata features removed."""
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
            if logged_at < since_micros:
                continue
            version = feature[LOG_VERSION_KEY].int64_list.value[0]
            for key in [k for k in feature if k.startswith(LOG_METADATA_PREFIX)]:
                del feature[key]
            by_version.setdefault(version, []).append(example.SerializeToString())
            if newest is None or logged_at > newest[0]:
                newest = (logged_at, version)
    return LoggedRequests(by_version, len(files), newest[1] if newest else None)


def training_statistics_path(metadata_path: str, pipeline_name: str, version: int) -> str:
    """FeatureStats.pb of the train split the pushed `version` was trained on (MLMD lineage).

    Raises LookupError naming what is missing.
    """
    store = metadata.open_store(metadata_path)
    pushes = [p for p in metadata.pushed_models(store, pipeline_name) if p.version == version]
    if not pushes or pushes[-1].model_id is None:
        raise LookupError(
            f"version {version} was not pushed by pipeline {pipeline_name!r} "
            f"(no Pusher record in {metadata_path})"
        )
    examples = metadata.training_examples(store, pushes[-1].model_id)
    # Trained on several spans: the newest stands for them (the others passed the drift gate).
    statistics = metadata.statistics_of(store, examples[-1].id) if examples else None
    if statistics is None:
        raise LookupError(f"no StatisticsGen output for the data version {version} trained on")
    path = os.path.join(statistics.uri, "Split-train", "FeatureStats.pb")
    if not os.path.exists(path):
        raise LookupError(f"training statistics of version {version} are gone: {path}")
    return path


@dataclasses.dataclass(frozen=True)
class FeatureSkew:
    feature: str
    comparator: str
    value: float
    threshold: float

    @property
    def moved(self) -> bool:
        return self.value > self.threshold


def _is_categorical(feature) -> bool:  # noqa: ANN001 - a schema_pb2.Feature
    """String features. Integer categories (community areas) count as numbers: StatisticsGen
    computes their statistics without the schema, as numbers, and skew needs both sides alike."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    return feature.type == schema_pb2.BYTES


def monitored_schema(schema, config: MonitorConfig):  # noqa: ANN001, ANN201 - schema_pb2.Schema
    """The schema restricted to the monitored features, with skew comparators from the config.

    Features a request never carries (the label, the trip timestamp) are dropped so their absence
    is not an anomaly, and so is the dataset's minimum row count (min_requests decides that).
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
        threshold = config.feature_thresholds.get(feature.name)
        if _is_categorical(feature):
            comparator = feature.skew_comparator.infinity_norm
            comparator.threshold = threshold or config.categorical_threshold
        else:
            comparator = feature.skew_comparator.jensen_shannon_divergence
            comparator.threshold = threshold or config.numeric_threshold
            # Quantile histograms: equal-width ones over heavy-tailed fares and distances put
            # nearly every value in one bucket, so the divergence there measures the tail only.
            comparator.source.type = schema_pb2.HistogramSelection.QUANTILES
        restricted.feature.append(feature)
    return restricted


def compare(
    serving_examples: list[bytes], training_statistics, schema, config: MonitorConfig
) -> tuple[list[FeatureSkew], dict[str, list[str]]]:  # noqa: ANN001
    """TFDV skew of the served rows against the training statistics, and their schema anomalies."""
    import tensorflow as tf
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    checked = monitored_schema(schema, config)
    with tempfile.TemporaryDirectory(prefix="monitor-") as scratch:
        path = os.path.join(scratch, "requests.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for record in serving_examples:
                writer.write(record)
        serving_statistics = tfdv.generate_statistics_from_tfrecord(
            path,
            # No schema, as StatisticsGen runs: both sides describe each feature alike.
            stats_options=tfdv.StatsOptions(feature_allowlist=list(config.features)),
        )
    skew_anomalies = tfdv.validate_statistics(
        training_statistics, checked, serving_statistics=serving_statistics
    )
    skews = []
    for info in skew_anomalies.drift_skew_info:
        for measurement in info.skew_measurements:
            l_infinity = measurement.type == anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY
            comparator = L_INFINITY if l_infinity else JENSEN_SHANNON
            skews.append(
                FeatureSkew(
                    ".".join(info.path.step), comparator, measurement.value, measurement.threshold
                )
            )
    schema_anomalies = tfdv.validate_statistics(serving_statistics, checked, environment="SERVING")
    problems = {
        name: [f"{reason.short_description}: {reason.description}" for reason in info.reason]
        for name, info in sorted(schema_anomalies.anomaly_info.items())
    }
    return sorted(skews, key=lambda s: (not s.moved, -s.value)), problems


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
    skew: list[FeatureSkew] = dataclasses.field(default_factory=list)
    schema_anomalies: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    alert_on_schema_anomalies: bool = True

    @property
    def moved(self) -> list[FeatureSkew]:
        return [s for s in self.skew if s.moved]

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["other_versions"] = {str(k): v for k, v in self.other_versions.items()}
        for row in data["skew"]:
            row["moved"] = row["value"] > row["threshold"]
        data["features_moved"] = [s.feature for s in self.moved]
        return data

    def summary_lines(self) -> Iterable[str]:
        """The readable report: the verdict first, then each feature that moved and by how much."""
        verdict = {
            STATUS_OK: "OK: no monitored feature moved past its threshold",
            STATUS_ALERT: "ALERT: the served data moved away from the training data",
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
        for skew in self.moved:
            name = "L-infinity" if skew.comparator == L_INFINITY else "Jensen-Shannon"
            yield (
                f"  MOVED {skew.feature}: {name} {skew.value:.3f} > threshold {skew.threshold:g}"
            )
        for feature, reasons in self.schema_anomalies.items():
            for reason in reasons:
                yield f"  SCHEMA {feature}: {reason}"
        if self.skew:
            steady = [f"{s.feature} {s.value:.3f}" for s in self.skew if not s.moved]
            if steady:
                yield "  within thresholds: " + ", ".join(steady)


def evaluate(
    logged: LoggedRequests,
    model_name: str,
    config: MonitorConfig,
    schema,  # noqa: ANN001 - schema_pb2.Schema
    statistics_path_of: Callable[[int], str],
    version: int | None = None,
) -> Report:
    """The report for the requests of `version` (default: the newest that answered)."""
    import tensorflow_data_validation as tfdv

    chosen = version if version is not None else logged.newest_version
    rows = logged.by_version.get(chosen, []) if chosen is not None else []
    report = Report(
        status=STATUS_TOO_FEW,
        model_name=model_name,
        created=datetime.datetime.now().isoformat(timespec="seconds"),
        window_hours=config.window_hours,
        log_files=logged.files,
        requests=len(rows),
        min_requests=config.min_requests,
        version=chosen,
        other_versions={v: len(r) for v, r in logged.by_version.items() if v != chosen},
        alert_on_schema_anomalies=config.alert_on_schema_anomalies,
    )
    if len(rows) < config.min_requests:
        return report
    report.training_statistics = statistics_path_of(chosen)
    training = tfdv.load_stats_binary(report.training_statistics)
    report.skew, report.schema_anomalies = compare(rows, training, schema, config)
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
    return parser


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
    if problems:
        return print_problems(problems)
    config = dataclasses.replace(
        config,
        window_hours=args.window_hours or config.window_hours,
        min_requests=args.min_requests or config.min_requests,
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    since = int((time.time() - config.window_hours * 3600) * 1e6)
    logged = read_request_log(args.log_dir, args.model_name, since)

    def statistics_path_of(version: int) -> str:
        return training_statistics_path(str(metadata_path), args.pipeline_name, version)

    try:
        report = evaluate(logged, args.model_name, config, schema, statistics_path_of, args.version)
    except LookupError as error:
        return print_problems([f"cannot compare: {error}"])
    written = write_report(report, args.output_dir)
    for line in report.summary_lines():
        print(line)
    print(f"Report:    {written['json']}")
    if "trigger" in written:
        print(f"Trigger:   {written['trigger']} (local_runner.py --watch retrains on it)")
    return {STATUS_OK: EXIT_OK, STATUS_ALERT: EXIT_ALERT, STATUS_TOO_FEW: EXIT_TOO_FEW}[
        report.status
    ]


if __name__ == "__main__":
    sys.exit(main())

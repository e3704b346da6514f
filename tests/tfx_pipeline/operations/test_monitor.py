"""The monitor on logged requests: steady data passes, shifted data alerts naming the feature."""

import dataclasses
import json
import pathlib
import random

import numpy as np
import pytest

from models import features
from serving.request_log import RequestLogger, RequestLogSettings
from tests.conftest import DATA_ROOT, read_csv_rows
from tfx_pipeline import layout
from tfx_pipeline.operations import monitor

MODEL = "taxi"
VERSION = 1795000000


@pytest.fixture(scope="module")
def config() -> monitor.MonitorConfig:
    return monitor.read_config(monitor.DEFAULT_CONFIG)


@pytest.fixture(scope="module")
def training_statistics_path(tmp_path_factory) -> str:
    """TFDV statistics of span 2, as StatisticsGen computes them (without the schema)."""
    import tensorflow_data_validation as tfdv

    path = tmp_path_factory.mktemp("stats") / "FeatureStats.pb"
    statistics = tfdv.generate_statistics_from_csv(str(DATA_ROOT / "span-2" / "data.csv"))
    path.write_bytes(statistics.SerializeToString())
    return str(path)


def held_out_rows(count: int, seed: int = 7) -> list[dict[str, str]]:
    rows = read_csv_rows(DATA_ROOT / "span-2" / "data.csv")
    random.Random(seed).shuffle(rows)
    return rows[:count]


def log_requests(log_dir: pathlib.Path, rows: list[dict[str, str]], version: int = VERSION):
    """Logs `rows` the way the server does for serving_raw requests, ten rows per request."""
    logger = RequestLogger(RequestLogSettings(directory=str(log_dir))).start([MODEL])
    dtypes = {"string": object, "int": np.int64, "float": np.float32}
    for start in range(0, len(rows), 10):
        instances = [features.raw_json_instance(row) for row in rows[start : start + 10]]
        inputs = {
            key: np.array([instance[key] for instance in instances], dtypes[kind])
            for key, kind in features.RAW_FEATURE_DTYPES.items()
        }
        probabilities = np.full(len(instances), 0.5, np.float32)
        logger.submit(MODEL, version, "serving_raw", inputs, {"probabilities": probabilities})
    logger.close()


def evaluate(log_dir, config, schema, training_statistics_path) -> monitor.Report:
    logged = monitor.read_request_log(log_dir, MODEL, since_micros=0)
    return monitor.evaluate(logged, MODEL, config, schema, lambda _: training_statistics_path)


def test_requests_from_the_training_distribution_raise_no_alert(
    tmp_path, config, schema, training_statistics_path
):
    log_requests(tmp_path, held_out_rows(300))
    report = evaluate(tmp_path, config, schema, training_statistics_path)
    assert report.status == monitor.STATUS_OK, list(report.summary_lines())
    assert (report.version, report.requests) == (VERSION, 300)
    assert {s.feature for s in report.skew} == set(config.features)
    assert report.moved == [] and report.schema_anomalies == {}


def test_tripled_fares_alert_naming_fare(tmp_path, config, schema, training_statistics_path):
    rows = [dict(row, fare=str(float(row["fare"]) * 3)) for row in held_out_rows(300)]
    log_requests(tmp_path, rows)
    report = evaluate(tmp_path, config, schema, training_statistics_path)
    assert report.status == monitor.STATUS_ALERT
    assert [s.feature for s in report.moved] == ["fare"]
    (fare,) = report.moved
    assert fare.comparator == monitor.JENSEN_SHANNON and fare.value > fare.threshold
    text = "\n".join(report.summary_lines())
    assert f"MOVED fare: Jensen-Shannon {fare.value:.3f} > threshold 0.3" in text


def test_a_new_payment_type_alerts_naming_payment_type(
    tmp_path, config, schema, training_statistics_path
):
    rows = held_out_rows(300)
    rows = [dict(row, payment_type="Crypto") if i % 3 == 0 else row for i, row in enumerate(rows)]
    log_requests(tmp_path, rows)
    report = evaluate(tmp_path, config, schema, training_statistics_path)
    assert report.status == monitor.STATUS_ALERT
    assert [s.feature for s in report.moved] == ["payment_type"]
    assert report.moved[0].comparator == monitor.L_INFINITY
    assert list(report.schema_anomalies) == ["payment_type"]
    assert "Crypto" in report.schema_anomalies["payment_type"][0]


def test_only_the_newest_version_is_compared_and_the_window_applies(
    tmp_path, config, schema, training_statistics_path
):
    log_requests(tmp_path, held_out_rows(40, seed=1), version=VERSION - 5)
    log_requests(tmp_path, held_out_rows(250, seed=2), version=VERSION)
    report = evaluate(tmp_path, config, schema, training_statistics_path)
    assert (report.version, report.requests, report.other_versions) == (
        VERSION,
        250,
        {VERSION - 5: 40},
    )
    future = monitor.read_request_log(tmp_path, MODEL, since_micros=2**62)
    assert future.by_version == {} and future.newest_version is None


def test_too_few_requests_is_its_own_answer_not_an_alert(tmp_path, capsys):
    log_dir, output_dir = tmp_path / "log", tmp_path / "outputs"
    log_requests(log_dir, held_out_rows(30))
    output_dir.mkdir()
    # Never opened: too few requests are answered before any lineage look-up.
    (output_dir / "metadata.sqlite").touch()
    code = monitor.main(["--log-dir", str(log_dir), "--output-dir", str(output_dir)])
    assert code == monitor.EXIT_TOO_FEW
    out = capsys.readouterr().out
    assert "TOO FEW REQUESTS: 30 logged, 200 needed to judge (not an alert)" in out
    (report,) = (output_dir / "monitoring").glob("report-*.json")
    assert json.loads(report.read_text())["status"] == monitor.STATUS_TOO_FEW
    assert not layout.OutputLayout(output_dir).triggers_dir.exists()


def test_an_empty_log_folder_is_too_few_requests(tmp_path, capsys):
    (tmp_path / "log").mkdir()
    (tmp_path / "metadata.sqlite").touch()
    argv = ["--log-dir", str(tmp_path / "log"), "--output-dir", str(tmp_path)]
    assert monitor.main(argv) == monitor.EXIT_TOO_FEW
    assert "0 logged" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, message",
    [
        ({"features": []}, "'features' must be a non-empty list"),
        ({"min_requests": 0}, "min_requests must be a positive whole number"),
        ({"skew_thresholds": {"categorical_infinity_norm": 2}}, "must be a number in (0, 1]"),
        ({"feature_thresholds": {"tips_typo": 0.2}}, "feature_thresholds.tips_typo is not in"),
        ({"features": ["fare", "no_such_feature"]}, "['no_such_feature'] are not in the schema"),
        ({"colour": "blue"}, "unknown key 'colour'"),
    ],
)
def test_bad_config_exits_2_naming_the_problem(tmp_path, change, message, capsys):
    raw = json.loads(monitor.DEFAULT_CONFIG.read_text())
    raw.update(change)
    (tmp_path / "monitoring.json").write_text(json.dumps(raw))
    (tmp_path / "log").mkdir()
    (tmp_path / "metadata.sqlite").touch()
    argv = ["--log-dir", str(tmp_path / "log"), "--output-dir", str(tmp_path)]
    assert monitor.main([*argv, "--config", str(tmp_path / "monitoring.json")]) == 2
    assert message in capsys.readouterr().err


def test_bad_paths_and_flags_exit_2_naming_each(tmp_path, capsys):
    argv = ["--log-dir", str(tmp_path / "nope"), "--output-dir", str(tmp_path)]
    assert monitor.main([*argv, "--window-hours", "0", "--min-requests", "0"]) == 2
    error = capsys.readouterr().err
    for expected in (
        f"request log folder {tmp_path / 'nope'} does not exist",
        "--window-hours must be positive",
        "--min-requests must be at least 1",
        "no pipeline metadata at",
    ):
        assert expected in error


def test_threshold_overrides_per_feature(config, schema):
    tight = dataclasses.replace(config, feature_thresholds={"fare": 0.05})
    by_name = {f.name: f for f in monitor.monitored_schema(schema, tight).feature}
    assert by_name["fare"].skew_comparator.jensen_shannon_divergence.threshold == 0.05
    assert by_name["payment_type"].skew_comparator.infinity_norm.threshold == 0.15
    assert "tips" not in by_name and not by_name["fare"].HasField("drift_comparator")

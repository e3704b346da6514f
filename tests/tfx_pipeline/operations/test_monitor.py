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


def evaluate(
    log_dir, config, schema, training_statistics_path, until=None, newest_span=None
) -> monitor.Report:
    """The monitor's report on the rows logged after `until` (all when None), the rows logged
    before it as the previous window."""
    logged = monitor.read_request_log(log_dir, MODEL, since_micros=until or 0)
    previous = monitor.read_request_log(log_dir, MODEL, 0, until) if until else None
    served = monitor.ServedVersion(training_statistics_path, trained_span=2, evaluation=None)
    return monitor.evaluate(
        logged,
        MODEL,
        config,
        schema,
        lambda _: served,
        previous=previous,
        newest_span=newest_span,
    )


def now_micros() -> int:
    import time

    return int(time.time() * 1e6)


def test_requests_from_the_training_distribution_raise_no_alert(
    tmp_path, config, schema, training_statistics_path
):
    log_requests(tmp_path, held_out_rows(300))
    report = evaluate(tmp_path, config, schema, training_statistics_path)
    assert report.status == monitor.STATUS_OK, list(report.summary_lines())
    assert (report.version, report.requests) == (VERSION, 300)
    assert {c.feature for c in report.checks[monitor.CHECK_SKEW]} == set(config.features)
    assert report.moved == [] and report.schema_anomalies == {}
    # No previous window and no evaluation: those checks are not made, and not invented.
    assert set(report.checks) == {monitor.CHECK_SKEW}


def test_tripled_fares_alert_naming_fare_what_moved_and_what_happens_next(
    tmp_path, config, schema, training_statistics_path
):
    rows = [dict(row, fare=str(float(row["fare"]) * 3)) for row in held_out_rows(300)]
    log_requests(tmp_path, rows)
    report = evaluate(tmp_path, config, schema, training_statistics_path, newest_span=2)
    assert report.status == monitor.STATUS_ALERT
    assert report.features_moved == ["fare"]
    ((check, fare),) = report.moved
    assert check == monitor.CHECK_SKEW
    assert fare.distance_name == "Jensen-Shannon" and fare.distance > fare.threshold == 0.04
    assert fare.significant and fare.p_value < 1e-12
    # What moved: the top fare deciles of training now hold most of the requests.
    assert fare.changes[0].sample_share > 3 * fare.changes[0].reference_share, fare.text()
    text = "\n".join(report.summary_lines())
    assert f"MOVED (vs training data) fare: Jensen-Shannon {fare.distance:.3f} > 0.04" in text
    assert "significant (p < 1e-12 at 300 vs" in text and "moved most: " in text
    assert "Next:      nothing new to retrain on: version" in text
    newer = evaluate(tmp_path, config, schema, training_statistics_path, newest_span=3)
    assert newer.next_step() == "local_runner.py --watch retrains on span 3"


def test_a_new_payment_type_alerts_naming_payment_type_and_the_value(
    tmp_path, config, schema, training_statistics_path
):
    rows = held_out_rows(300)
    rows = [dict(row, payment_type="Crypto") if i % 3 == 0 else row for i, row in enumerate(rows)]
    log_requests(tmp_path, rows)
    report = evaluate(tmp_path, config, schema, training_statistics_path)
    assert report.status == monitor.STATUS_ALERT
    assert report.features_moved == ["payment_type"]
    (_, payment), *_ = report.moved
    assert payment.distance_name == "L-infinity"
    assert payment.changes[0].text() == "Crypto 0.0% -> 33.3%"
    assert list(report.schema_anomalies) == ["payment_type"]
    assert "Crypto" in report.schema_anomalies["payment_type"][0]


def test_the_window_is_compared_with_the_previous_window_of_the_same_version(
    tmp_path, config, schema, training_statistics_path
):
    log_requests(tmp_path, held_out_rows(250, seed=11))
    boundary = now_micros()
    log_requests(tmp_path, held_out_rows(250, seed=12))
    steady = evaluate(tmp_path, config, schema, training_statistics_path, until=boundary)
    assert steady.status == monitor.STATUS_OK, list(steady.summary_lines())
    assert (steady.requests, steady.previous_requests) == (250, 250)
    assert {c.feature for c in steady.checks[monitor.CHECK_WINDOW]} == set(config.features)

    shifted = tmp_path / "shifted"
    log_requests(shifted, held_out_rows(250, seed=11))
    boundary = now_micros()
    rows = held_out_rows(250, seed=12)
    log_requests(
        shifted, [dict(row, trip_miles=str(float(row["trip_miles"] or 0) * 2)) for row in rows]
    )
    report = evaluate(shifted, config, schema, training_statistics_path, until=boundary)
    moved = {(check, c.feature) for check, c in report.moved}
    assert (monitor.CHECK_WINDOW, "trip_miles") in moved, list(report.summary_lines())
    assert "MOVED (vs previous window) trip_miles" in "\n".join(report.summary_lines())


def test_a_window_too_small_to_judge_says_so_instead_of_alerting(
    tmp_path, config, schema, training_statistics_path
):
    """Twenty rows with tripled fares move Jensen-Shannon past the threshold; significance at
    that size decides, and a smaller min_requests lets the monitor judge them honestly."""
    rows = [dict(row, fare=str(float(row["fare"]) * 1.3)) for row in held_out_rows(20)]
    log_requests(tmp_path, rows)
    small = dataclasses.replace(config, min_requests=10)
    report = evaluate(tmp_path, small, schema, training_statistics_path)
    fare = next(c for c in report.checks[monitor.CHECK_SKEW] if c.feature == "fare")
    assert fare.over_threshold and not fare.significant, fare.text()
    assert report.status == monitor.STATUS_OK


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
    assert tight.threshold("fare", categorical=False) == 0.05
    assert tight.threshold("trip_miles", categorical=False) == config.numeric_threshold == 0.04
    assert tight.threshold("payment_type", categorical=True) == config.categorical_threshold
    by_name = {f.name: f for f in monitor.monitored_schema(schema, tight).feature}
    assert "tips" not in by_name and not by_name["fare"].HasField("drift_comparator")
    assert not by_name["fare"].HasField("skew_comparator")

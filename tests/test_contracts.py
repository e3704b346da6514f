"""Contracts two parts of the project share on purpose, where neither may import the other.

The pipeline and serving/ meet at files on disk (the TF Serving model directory, the request log);
the runner, the watch loop and TFX's ExampleGen must find the same span; our ExampleGen writes
what TFX's readers expect. Each contract is defined once per side and held together here.
"""

import os

import numpy as np
import pytest

from serving import request_log, request_schema, rollback, versions
from tests.conftest import DATA_ROOT, SCHEMA_PATH
from tfx_pipeline import inputs, layout
from tfx_pipeline.components.atomic_pusher import push
from tfx_pipeline.operations import history, monitor, rollback_log
from tfx_pipeline.problems import ConfigProblems


def saved_model(path, weights: bytes) -> str:
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"graph")
    (path / "variables" / "variables.data-00000-of-00001").write_bytes(weights)
    return str(path)


def test_a_version_rolled_back_by_serving_is_never_pushed_again_by_the_pipeline(tmp_path):
    assert push.ROLLED_BACK_PREFIX == rollback.ROLLED_BACK_PREFIX
    base = tmp_path / "serving" / "taxi"
    good = saved_model(tmp_path / "good", b"good")
    bad = saved_model(tmp_path / "bad", b"bad")
    kept, _ = push.push_atomically(good, str(base), now=100)
    dropped, _ = push.push_atomically(bad, str(base), now=200)
    rollback.rollback(str(base), reason="contract test")
    # The server serves the kept version; the pipeline sees the same folders as versions.
    assert (
        sorted(versions.version_folders(str(base))) == push.existing_versions(str(base)) == [kept]
    )
    with pytest.raises(push.RolledBackModelError):
        push.push_atomically(bad, str(base), now=300)
    served = max(versions.version_folders(str(base)))
    assert history._on_disk(str(base / str(dropped)), dropped, served) == "rolled back"
    assert history._on_disk(str(base / str(kept)), kept, served) == "SERVED"


def test_the_watch_loop_reads_the_rollback_log_serving_writes(tmp_path):
    assert rollback_log.LOG_NAME == rollback.LOG_NAME
    base = tmp_path / "taxi"
    for version in (5, 12):
        (base / str(version)).mkdir(parents=True)
    record = rollback.rollback(str(base), reason="contract test")
    (line,) = rollback_log.complete_lines(base / rollback_log.LOG_NAME)
    event = rollback_log.rollback_event(line, base / rollback_log.LOG_NAME)
    assert event.title == "rolled back to version 5 (from 12): contract test"
    assert {key: event.details[key] for key in record} == record


def test_the_server_checks_requests_against_the_schema_the_pusher_puts_in_each_version(tmp_path):
    assert push.SERVED_SCHEMA_FILE == request_schema.SCHEMA_FILE
    assert push.SERVED_SCHEMA_FILE in push.PUSH_RECORD_FILES
    base = tmp_path / "taxi"
    model = saved_model(tmp_path / "model", b"weights")

    def with_schema(version: int) -> dict[str, bytes]:
        return {push.SERVED_SCHEMA_FILE: SCHEMA_PATH.read_bytes()}

    version, _ = push.push_atomically(model, str(base), now=100, extra_files=with_schema)
    check = request_schema.RequestSchemaCheck(request_schema.RequestSchemaSettings())
    schema = check.schema_for("taxi", version, str(base / str(version)))
    assert schema is not None and schema.source == os.path.join(
        base, str(version), push.SERVED_SCHEMA_FILE
    )
    assert "payment_type" in {rule.name for rule in schema.rules}
    # The schema is a record of the push, not part of the model: the same model is not pushed
    # again for it.
    assert push.push_atomically(model, str(base), now=200, extra_files=with_schema) == (
        version,
        False,
    )


def test_a_push_in_progress_is_no_version_to_the_server(tmp_path):
    base = tmp_path / "taxi"
    for name in ("5", "12", f"{push.STAGING_PREFIX}13-abcd", f"{push.ROLLED_BACK_PREFIX}14", "x"):
        (base / name).mkdir(parents=True)
    assert sorted(versions.version_folders(str(base))) == push.existing_versions(str(base))
    assert push.existing_versions(str(base)) == [5, 12]


def test_the_monitor_reads_the_request_log_the_server_writes(tmp_path):
    assert monitor.LOG_FILE_SUFFIX == request_log.FILE_SUFFIX
    assert monitor.LOG_METADATA_PREFIX == request_log.METADATA_PREFIX
    assert (
        monitor.LOG_MODEL_KEY,
        monitor.LOG_VERSION_KEY,
        monitor.LOG_TIME_KEY,
        monitor.LOG_OUTPUT_PREFIX,
    ) == (
        request_log.MODEL_KEY,
        request_log.VERSION_KEY,
        request_log.TIME_KEY,
        request_log.OUTPUT_PREFIX,
    )
    logger = request_log.RequestLogger(
        request_log.RequestLogSettings(directory=str(tmp_path))
    ).start(["taxi"])
    inputs_ = {"fare": np.array([12.5, 3.0], np.float32), "company": np.array(["a", ""], object)}
    outputs = {"probabilities": np.array([0.25, 0.75], np.float32)}
    logger.submit("taxi", 7, "serving_raw", inputs_, outputs)
    logger.submit("other", 9, "serving_raw", inputs_, outputs)
    logger.close()
    logged = monitor.read_request_log(tmp_path, "taxi", since_micros=0)
    assert (logged.newest_version, sorted(logged.by_version)) == (7, [7])
    (first, second) = logged.by_version[7]
    from tensorflow.core.example import example_pb2

    features = example_pb2.Example.FromString(first).features.feature
    # The request's features and the model's outputs; the rest of the server's metadata is
    # stripped.
    assert sorted(features) == ["__log_output_probabilities", "company", "fare"]
    assert features["fare"].float_list.value == [12.5]
    assert features["__log_output_probabilities"].float_list.value == [0.25]
    assert not example_pb2.Example.FromString(second).features.feature["company"].bytes_list.value


def test_the_runner_the_watcher_and_tfx_find_the_same_latest_span(tmp_path):
    from tfx.components.example_gen import utils
    from tfx.proto import example_gen_pb2

    csv = (DATA_ROOT / "span-1" / "data.csv").read_text().splitlines(keepends=True)[:3]
    for name in ("span-2", "span-10", ".span-11", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.csv").write_text("".join(csv))
    (tmp_path / "span-12").write_text("a file, not a span folder")

    def tfx_span() -> int:
        # A new Split each time: TFX writes the resolved span back into the one it is given.
        split = example_gen_pb2.Input.Split(name="single_split", pattern=layout.SPAN_PATTERN)
        return utils.calculate_splits_fingerprint_span_and_version(str(tmp_path), [split])[1]

    assert tfx_span() == layout.latest_span_number(tmp_path) == 10
    assert inputs.latest_span_files(tmp_path)[0] == 10
    # A folder TFX's pattern matches but cannot number stops ExampleGen; the runner says so first.
    (tmp_path / "span-x").mkdir()
    (tmp_path / "span-x" / "data.csv").write_text("".join(csv))
    with pytest.raises(ValueError, match="Cannot find span number"):
        tfx_span()
    with pytest.raises(ConfigProblems, match="span-x is not named span-<number>"):
        inputs.latest_span_files(tmp_path)


def test_our_example_gen_names_its_shards_as_tfx_does():
    from tfx.components.example_gen import write_split

    from tfx_pipeline.components.arrow_csv_example_gen import shuffle

    assert shuffle.SHARD_PREFIX == write_split.DEFAULT_TF_RECORD_FILE_NAME
    assert os.path.basename(shuffle.shard_path("x", 0, 1)).startswith(shuffle.SHARD_PREFIX)

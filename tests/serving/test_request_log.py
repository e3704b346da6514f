"""Request logging: what is logged, that nothing sampled is lost, and that it never hurts a request."""

import json
import logging
import math
import os
import stat
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from serving import request_log
from serving.__main__ import build_parser, request_log_settings
from serving.__main__ import main as serving_main
from serving.client import ServingClient
from serving.config import load_config_file
from serving.request_log import RequestLogger, RequestLogSettings
from serving.server import ModelServer
from serving.versions import ModelSpec
from tests.serving.conftest import Http


def read_log(directory) -> list[tf.train.Example]:
    """Every record of the completed log files (TF's reader checks the TFRecord CRCs)."""
    paths = sorted(
        os.path.join(directory, name)
        for name in os.listdir(directory)
        if name.endswith(request_log.FILE_SUFFIX) and not name.startswith(".")
    )
    if not paths:
        return []
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(paths)]


def writing_file(directory, larger_than: int = 0) -> str:
    """The hidden file being written, once more than `larger_than` bytes are in it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for name in os.listdir(directory):
            path = os.path.join(directory, name)
            if name.endswith(request_log.WRITING_SUFFIX) and os.path.getsize(path) > larger_than:
                return path
        time.sleep(0.01)
    raise AssertionError(f"nothing was written to {directory}")


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


ROW = {"x": np.array([[1.0, 2.0]], np.float32)}


def values(example: tf.train.Example, key: str) -> list:
    feature = example.features.feature[key]
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value) if kind else []


@pytest.fixture
def tiny_spec(model_root):
    return ModelSpec(name="tiny", base_path=str(model_root / "tiny"))


def serve(specs, **kwargs):
    return ModelServer(specs, port=0, poll_seconds=0, access_log=False, **kwargs)


def test_logged_rows_carry_features_version_time_and_prediction(tiny_spec, tmp_path):
    settings = RequestLogSettings(directory=str(tmp_path / "log"))
    with serve([tiny_spec], request_log=settings) as server:
        client = ServingClient(server.url)
        assert client.predict_rows("tiny", [[1.0, 2.0], [3.0, 4.0]]) == [9.0, 21.0]
        reply = client.predict_rows(
            "tiny", [{"a": float("nan"), "b": "", "c": -1}], signature_name="multi"
        )
        assert reply[0]["echo"] == ""
    first, second, missing = read_log(tmp_path / "log")
    assert values(first, "x") == [1.0, 2.0] and values(second, "x") == [3.0, 4.0]
    assert values(first, request_log.OUTPUT_PREFIX + "y") == [9.0]
    assert values(second, request_log.OUTPUT_PREFIX + "y") == [21.0]
    assert values(first, request_log.MODEL_KEY) == [b"tiny"]
    assert values(first, request_log.VERSION_KEY) == [2]  # latest version answered
    assert values(first, request_log.SIGNATURE_KEY) == [b"serving_default"]
    assert 0 <= time.time() - values(first, request_log.TIME_KEY)[0] / 1e6 < 10
    # NaN, "" and -1 are the raw signatures' missing markers: logged as features with no values.
    for key in ("a", "b", "c"):
        assert key in missing.features.feature and values(missing, key) == [], key
    assert values(missing, request_log.OUTPUT_PREFIX + "plus_one") == [0]


def test_serialized_examples_are_logged_as_the_examples_sent():
    sent = tf.train.Example()
    sent.features.feature["fare"].float_list.value.append(12.5)
    sent.features.feature["payment_type"].bytes_list.value.append(b"Cash")
    inputs = {"examples": np.array([sent.SerializeToString()], dtype=object)}
    (record,) = request_log.request_examples(
        "taxi", 7, "serving_default", 1.0, inputs, {"probabilities": np.array([0.25])}
    )
    logged = tf.train.Example.FromString(record)
    assert values(logged, "fare") == [12.5] and values(logged, "payment_type") == [b"Cash"]
    assert values(logged, request_log.VERSION_KEY) == [7]
    assert values(logged, request_log.OUTPUT_PREFIX + "probabilities") == [0.25]


def test_logging_changes_no_response_byte(model_root, tmp_path):
    specs = [ModelSpec(name="tiny", base_path=str(model_root / "tiny"))]
    requests = [
        ("POST", "/v1/models/tiny:predict", '{"instances": [[1, 2.5], [3, 4]]}'),
        (
            "POST",
            "/v1/models/tiny:predict",
            '{"signature_name": "multi", "inputs": {"a": [1.5], "b": ["x"], "c": [3]}}',
        ),
        ("POST", "/v1/models/tiny:predict", '{"instances": [["one", 2]]}'),
        ("GET", "/v1/models/tiny", None),
    ]
    answers = []
    for settings in (None, RequestLogSettings(directory=str(tmp_path / "log"))):
        with serve(specs, request_log=settings) as server:
            http = Http(server.port)
            answers.append([http.call(m, p, b)[::2] for m, p, b in requests])
    assert answers[0] == answers[1]
    assert len(read_log(tmp_path / "log")) == 3  # two rows, then one; the 400 is not logged


def test_concurrent_load_loses_no_sampled_request(tiny_spec, tmp_path):
    # Small files: rotation happens many times while requests arrive.
    settings = RequestLogSettings(directory=str(tmp_path / "log"), max_file_bytes=4096)
    threads_count, per_thread = 8, 60
    with serve([tiny_spec], request_log=settings) as server:
        client = ServingClient(server.url)

        def send(thread: int) -> None:
            for i in range(per_thread):
                client.predict_rows("tiny", [[float(thread), float(i)]])

        threads = [threading.Thread(target=send, args=(t,)) for t in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        logger = server.request_log
    assert logger.counts() == {("tiny", request_log.LOGGED): threads_count * per_thread}
    logged = {tuple(values(e, "x")) for e in read_log(tmp_path / "log")}
    expected = {(float(t), float(i)) for t in range(threads_count) for i in range(per_thread)}
    assert logged == expected
    assert len(logger.completed_files) > 1, "max_file_bytes should have rotated the file"
    assert not [n for n in os.listdir(tmp_path / "log") if n.startswith(".")]


def test_files_are_completed_by_age_and_only_then_visible(tiny_spec, tmp_path):
    settings = RequestLogSettings(directory=str(tmp_path / "log"), max_file_seconds=0.3)
    with serve([tiny_spec], request_log=settings) as server:
        ServingClient(server.url).predict_rows("tiny", [[1.0, 1.0]])
        names = os.listdir(tmp_path / "log")
        assert all(n.startswith(".") and n.endswith(request_log.WRITING_SUFFIX) for n in names)
        deadline = time.monotonic() + 10
        while not read_log(tmp_path / "log") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(read_log(tmp_path / "log")) == 1, "the old file was not completed"


def test_sampling_rate_zero_logs_nothing_and_half_logs_about_half(tiny_spec, tmp_path):
    for rate, low, high in ((0.0, 0, 0), (0.5, 60, 140)):
        settings = RequestLogSettings(directory=str(tmp_path / str(rate)), sampling_rate=rate)
        with serve([tiny_spec], request_log=settings) as server:
            client = ServingClient(server.url)
            for i in range(200):
                client.predict_rows("tiny", [[float(i), 0.0]])
        assert low <= len(read_log(tmp_path / str(rate))) <= high, rate


def test_unwritable_log_folder_is_reported_counted_and_never_fails_a_request(
    tiny_spec, tmp_path, caplog
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should be")
    settings = RequestLogSettings(directory=str(blocker / "log"))
    with serve([tiny_spec], request_log=settings) as server:
        client = ServingClient(server.url)
        assert [client.predict_rows("tiny", [[1.0, 1.0]])[0] for _ in range(5)] == [6.0] * 5
        http = Http(server.port)
        server.request_log.close()  # waits until the writer has tried every request
        _, _, metrics = http.call("GET", "/monitoring/prometheus/metrics")
    assert server.request_log.counts() == {("tiny", request_log.DROPPED_WRITE_ERROR): 5}
    assert (
        ':tensorflow:serving:rest:request_log_count{model_name="tiny",'
        'outcome="dropped_write_error"} 5' in metrics.decode()
    )
    reported = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(str(blocker / "log") in m and "cannot be written" in m for m in reported)
    assert any("cannot write the request log" in m for m in reported)


def test_a_write_error_keeps_the_records_already_written(tmp_path):
    logger = RequestLogger(RequestLogSettings(directory=str(tmp_path)))
    logger.start(["tiny"])
    row = {"x": np.array([[1.0, 2.0]], np.float32)}
    logger.submit("tiny", 1, "serving_default", row, {"y": np.array([3.0])})
    writing_file(tmp_path)
    (open_file,) = logger._files.values()  # noqa: SLF001 - simulate the disk filling up
    open_file.handle.close()
    open_file.handle = open(os.devnull, "rb")  # noqa: SIM115 - writes now fail with EBADF
    logger.submit("tiny", 1, "serving_default", row, {"y": np.array([3.0])})
    logger.submit("tiny", 1, "serving_default", row, {"y": np.array([4.0])})
    logger.close()
    assert logger.counts() == {
        ("tiny", request_log.LOGGED): 2,
        ("tiny", request_log.DROPPED_WRITE_ERROR): 1,
    }
    outputs = [values(e, request_log.OUTPUT_PREFIX + "y") for e in read_log(tmp_path)]
    assert sorted(outputs) == [[3.0], [4.0]]


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    logger = RequestLogger(RequestLogSettings(directory=str(tmp_path), queue_size=2))
    # Not started: nothing drains the queue, as when the writer is stuck on a slow disk.
    row = {"x": np.array([[1.0, 2.0]], np.float32)}
    for _ in range(5):
        logger.submit("tiny", 1, "serving_default", row, {})
    assert logger.counts() == {("tiny", request_log.DROPPED_QUEUE_FULL): 3}
    logger.start(["tiny"])
    logger.close()
    assert logger.counts()[("tiny", request_log.LOGGED)] == 2
    assert len(read_log(tmp_path)) == 2


def test_model_config_logging_config_sets_rate_and_file_prefix(model_root, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(
        f"model_config_list {{ config {{ name: 'tiny' base_path: '{model_root / 'tiny'}'"
        f" logging_config {{ log_collector_config {{ type: 'file' filename_prefix:"
        f" '{tmp_path / 'own' / 'tinylog'}' }} sampling_config {{ sampling_rate: 1.0 }} }} }} }}"
    )
    (spec,) = load_config_file(str(config))
    assert spec.log_sampling_rate == 1.0
    with serve([spec]) as server:
        ServingClient(server.url).predict_rows("tiny", [[1.0, 1.0]])
    (name,) = os.listdir(tmp_path / "own")
    assert name.startswith("tinylog-") and len(read_log(tmp_path / "own")) == 1
    # Without --request_log_dir, the request log flags still apply to such a model's files.
    args = build_parser().parse_args(["--request_log_file_mode", "0640"])
    with serve([spec], request_log=request_log_settings(args)) as server:
        ServingClient(server.url).predict_rows("tiny", [[1.0, 1.0]])
    assert server.request_log.settings.file_mode == 0o640
    modes = {
        stat.S_IMODE(os.stat(tmp_path / "own" / n).st_mode) for n in os.listdir(tmp_path / "own")
    }
    assert modes == {0o600, 0o640}


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--request_log_sampling_rate", "1.5"], "--request_log_sampling_rate must be within"),
        (["--request_log_max_file_bytes", "0"], "--request_log_max_file_bytes must be positive"),
        (["--request_log_queue_size", "-1"], "--request_log_queue_size must be positive"),
        (["--request_log_file_mode", "rw-r-----"], "--request_log_file_mode must be an octal"),
        (["--request_log_file_mode", "0648"], "--request_log_file_mode must be an octal"),
        (["--request_log_file_mode", "4600"], "--request_log_file_mode (got 4600) takes perm"),
        (["--request_log_file_mode", "0440"], "(got 0440) must let the server's user read and"),
        (["--request_log_file_mode", "0666"], "(got 0666) must not let every user write"),
    ],
)
def test_bad_request_log_flags_exit_2_naming_the_flag(flags, message, tmp_path, capsys):
    argv = ["--model_base_path", str(tmp_path), "--request_log_dir", str(tmp_path), *flags]
    assert serving_main(argv) == 2
    assert message in capsys.readouterr().err


def test_logging_config_without_a_folder_needs_request_log_dir(model_root, tmp_path, capsys):
    config = tmp_path / "models.config"
    config.write_text(
        f"model_config_list {{ config {{ name: 'tiny' base_path: '{model_root / 'tiny'}'"
        " logging_config { log_collector_config { filename_prefix: 'tinylog' }"
        " sampling_config { sampling_rate: 0.5 } } } }"
    )
    assert serving_main(["--model_config_file", str(config), "--rest_api_port", "0"]) == 2
    error = capsys.readouterr().err
    assert "'tiny'" in error and "--request_log_dir is not set" in error


def test_log_records_decode_with_tfdv_statistics(tiny_spec, tmp_path):
    import tensorflow_data_validation as tfdv

    settings = RequestLogSettings(directory=str(tmp_path))
    with serve([tiny_spec], request_log=settings) as server:
        ServingClient(server.url).predict_rows(
            "tiny", [{"a": 2.0, "b": "q", "c": 1}, {"a": 4.0, "b": "r", "c": 2}], "multi"
        )
    (path,) = [p for p in os.listdir(tmp_path) if not p.startswith(".")]
    stats = tfdv.generate_statistics_from_tfrecord(str(tmp_path / path))
    (dataset,) = stats.datasets
    assert dataset.num_examples == 2
    by_name = {f.path.step[0]: f for f in dataset.features}
    assert math.isclose(by_name["a"].num_stats.mean, 3.0)
    assert json.dumps(sorted(by_name)).count(request_log.METADATA_PREFIX) >= 4


def test_every_bad_request_log_flag_is_named_at_once(tmp_path, capsys):
    argv = ["--model_base_path", str(tmp_path), "--request_log_dir", str(tmp_path)]
    flags = ["--request_log_file_mode", "640x", "--request_log_queue_size", "0"]
    assert serving_main([*argv, *flags]) == 2
    error = capsys.readouterr().err
    assert "--request_log_file_mode must be an octal" in error
    assert "--request_log_queue_size must be positive" in error


def test_request_log_file_mode_flag_sets_the_mode(tmp_path):
    flags = ["--request_log_dir", str(tmp_path)]
    assert request_log_settings(build_parser().parse_args(flags)).file_mode == 0o600
    for text in ("0640", "640", "0o640"):
        args = build_parser().parse_args([*flags, "--request_log_file_mode", text])
        assert request_log_settings(args).file_mode == 0o640, text


@pytest.mark.parametrize(
    "file_mode, umask",
    [(None, 0o000), (None, 0o022), (0o640, 0o000), (0o640, 0o077)],
    ids=["default-umask000", "default-umask022", "0640-umask000", "0640-umask077"],
)
def test_log_files_get_exactly_the_file_mode_whatever_the_umask(file_mode, umask, tmp_path):
    expected = 0o600 if file_mode is None else file_mode
    options = {} if file_mode is None else {"file_mode": file_mode}
    previous_umask = os.umask(umask)
    try:
        logger = RequestLogger(RequestLogSettings(directory=str(tmp_path), **options))
        logger.start(["tiny"])
        logger.submit("tiny", 1, "serving_default", ROW, {})
        assert mode(writing_file(tmp_path)) == expected
        logger.close()
    finally:
        os.umask(previous_umask)
    (completed,) = logger.completed_files
    assert mode(completed) == expected
    assert len(read_log(tmp_path)) == 1


def test_a_file_that_cannot_be_renamed_into_place_is_not_counted_as_logged(tmp_path, caplog):
    counted = []
    settings = RequestLogSettings(directory=str(tmp_path))
    logger = RequestLogger(settings, count=lambda model, outcome: counted.append(outcome))
    logger.start(["tiny"])
    logger.submit("tiny", 1, "serving_default", ROW, {})
    size = os.path.getsize(writing_file(tmp_path))
    logger.submit("tiny", 1, "serving_default", ROW, {})
    writing = writing_file(tmp_path, larger_than=size)
    assert logger.counts() == {}, "written is not logged until the file is complete"
    # A folder where the final name goes: rename() fails, as it would on a failing disk.
    final = os.path.join(tmp_path, os.path.basename(writing)[1 : -len(request_log.WRITING_SUFFIX)])
    os.makedirs(os.path.join(final, "occupied"))
    logger.close()
    assert logger.counts() == {("tiny", request_log.DROPPED_COMPLETE_ERROR): 2}
    assert counted == [request_log.DROPPED_COMPLETE_ERROR] * 2
    assert logger.completed_files == []
    (reported,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert f"cannot complete request log file {writing}" in reported
    assert "its 2 requests are not logged" in reported
    assert os.path.getsize(writing) > size, "the rows written are kept under the hidden name"

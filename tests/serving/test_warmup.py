"""SavedModel warmup: a version's sample requests are replayed before it serves.

Expected behaviour and texts are TF Serving 2.16.1's (tensorflow_serving/servables/tensorflow/
saved_model_warmup_util.cc and saved_model_warmup.cc, file:line in the comments), never our
own output.
"""

import logging
import shutil
import threading
import time
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)

from serving.client import ServingClient
from serving.grpc_client import (
    GrpcServingClient,
    GrpcServingClientError,
    example_input,
    model_spec,
)
from serving.server import ModelServer
from serving.versions import ModelSpec
from serving.warmup import WarmupSettings
from tests.serving.tiny_models import save_counter

WARMUP_METRIC = ":tensorflow:serving:model_warmup_latency"
# saved_model_warmup_util.cc:228, after a read error with code DATA_LOSS.
TFRECORD_HINT = ". Please verify your warmup data is in TFRecord format."


@pytest.fixture(scope="module")
def counter_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("counter")
    save_counter(str(root), 1)
    return root


def write_warmup(version_dir, records) -> str:
    """assets.extra/tf_serving_warmup_requests of `records` (PredictionLogs or raw bytes)."""
    path = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record if isinstance(record, bytes) else record.SerializeToString())
    return str(path)


def predict_log(model: str, inputs: dict, signature: str = "") -> prediction_log_pb2.PredictionLog:
    request = predict_pb2.PredictRequest(model_spec=model_spec(model, signature))
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )


def counter_log() -> prediction_log_pb2.PredictionLog:
    return predict_log("counter", {"x": np.array([1.0, 2.0], dtype=np.float32)})


def x_examples(*values: float):
    return example_input(
        [
            tf.train.Example(
                features=tf.train.Features(
                    feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[value]))}
                )
            )
            for value in values
        ]
    )


def classify_log(signature: str = "") -> prediction_log_pb2.PredictionLog:
    request = classification_pb2.ClassificationRequest(
        model_spec=model_spec("classifier", signature), input=x_examples(0.5, -1.0)
    )
    return prediction_log_pb2.PredictionLog(
        classify_log=prediction_log_pb2.ClassifyLog(request=request)
    )


def regress_log(signature: str = "regress_x") -> prediction_log_pb2.PredictionLog:
    request = regression_pb2.RegressionRequest(
        model_spec=model_spec("classifier", signature), input=x_examples(3.0)
    )
    return prediction_log_pb2.PredictionLog(
        regress_log=prediction_log_pb2.RegressLog(request=request)
    )


def multi_inference_log(
    method: str = "tensorflow/serving/regress",
) -> prediction_log_pb2.PredictionLog:
    request = inference_pb2.MultiInferenceRequest(
        tasks=[
            inference_pb2.InferenceTask(
                model_spec=model_spec("classifier"), method_name="tensorflow/serving/classify"
            ),
            inference_pb2.InferenceTask(
                model_spec=model_spec("classifier", "regress_x"), method_name=method
            ),
        ],
        input=x_examples(1.0, 2.0),
    )
    return prediction_log_pb2.PredictionLog(
        multi_inference_log=prediction_log_pb2.MultiInferenceLog(request=request)
    )


def warmup_histograms(server: ModelServer) -> dict[tuple[str, str], int]:
    """(model_path, status) -> count of the warmup latency histogram, from the REST metrics page
    when the server has one, else from the same text in-process."""
    if server.port is not None:
        url = server.url + "/monitoring/prometheus/metrics"
        text = urllib.request.urlopen(url).read().decode()
    else:
        text = server.metrics.exposition()
    counts = {}
    for line in text.splitlines():
        if line.startswith(WARMUP_METRIC + "_count{"):
            labels, value = line[len(WARMUP_METRIC + "_count{") :].rsplit("} ", 1)
            pairs = dict(part.split("=", 1) for part in labels.split('",'))
            counts[(pairs["model_path"].strip('"'), pairs["status"].strip('"'))] = int(value)
    return counts


def test_every_record_is_replayed_the_configured_times_before_the_version_serves(
    tmp_path, counter_root, caplog
):
    caplog.set_level(logging.INFO, logger="serving")
    version = tmp_path / "counter" / "1"
    shutil.copytree(counter_root / "1", version)
    path = write_warmup(version, [counter_log()] * 4)
    spec = ModelSpec(name="counter", base_path=str(tmp_path / "counter"))
    settings = WarmupSettings(request_iterations=3)
    with ModelServer([spec], port=0, poll_seconds=0, access_log=False, warmup=settings) as server:
        # 4 records x 3 iterations ran before this first real request (the counter starts at
        # 0 with every load).
        calls = ServingClient(server.url).predict_rows("counter", [1.0])
        assert calls == [13]
        assert warmup_histograms(server) == {(str(version), "OK"): 1}
    # saved_model_warmup_util.cc:234, the line closing a successful replay.
    finished = [
        r.getMessage() for r in caplog.records if "Finished reading warmup" in r.getMessage()
    ]
    assert len(finished) == 1
    assert finished[0].startswith(
        f"Finished reading warmup data for model at {path}. Number of warmup records read: 4. "
        "Elapsed time (microseconds): "
    )


def test_a_pushed_version_stays_loading_while_it_warms_up(tmp_path, counter_root):
    base = tmp_path / "counter"
    shutil.copytree(counter_root / "1", base / "1")
    spec = ModelSpec(name="counter", base_path=str(base))
    settings = WarmupSettings(request_iterations=200)
    with (
        ModelServer(
            [spec], port=0, grpc_port=0, poll_seconds=0.05, access_log=False, warmup=settings
        ) as server,
        GrpcServingClient(f"127.0.0.1:{server.grpc_port}") as client,
    ):
        staging = tmp_path / "staging"
        shutil.copytree(counter_root / "1", staging)
        write_warmup(staging, [counter_log()] * 5)
        seen: list[tuple[str, bool]] = []  # (version 2's state, warmup already recorded)
        answered_by_1: list[float] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                states = {version: state for version, state, _ in client.model_status("counter")}
                if 2 in states:
                    # Read after the state: AVAILABLE here means the metric had to be there.
                    seen.append((states[2], bool(warmup_histograms(server))))
                    if states[2] == "LOADING":
                        try:
                            answer = client.predict_rows("counter", [{"x": 1.0}], version=1)
                        except GrpcServingClientError:  # retired: version 2 just became AVAILABLE
                            continue
                        answered_by_1.append(answer[0])
                    if states[2] == "AVAILABLE":
                        return
                time.sleep(0.002)

        watcher = threading.Thread(target=watch)
        watcher.start()
        staging.rename(base / "2")
        watcher.join(timeout=60)
        stop.set()
        assert ("LOADING", False) in seen
        assert seen[-1] == ("AVAILABLE", True)
        assert all(recorded for state, recorded in seen if state == "AVAILABLE")
        # Meanwhile version 1 (no warmup file) answered every call: its own count, 1, 2, ...
        assert answered_by_1 == list(range(1, len(answered_by_1) + 1))
        # 5 records x 200 iterations, then this call.
        assert client.predict_rows("counter", [{"x": 1.0}], version=2) == [1001]


def test_every_request_kind_is_replayed_and_failures_fail_the_load(tmp_path, model_root):
    """One server, one model per case: TF Serving's code and message for each failure."""
    cases = {
        # saved_model_warmup.cc:43-66: the four kinds it replays; a record with no request
        # is skipped (the switch's default).
        "all_kinds": (
            "classifier",
            [classify_log(), regress_log(), multi_inference_log(), b""],
            None,
        ),
        "all_1000": ("tiny", [b""] * 1000, None),
        # saved_model_warmup_util.cc:115.
        "unparsable": (
            "tiny",
            [b"not a prediction log"],
            ("INVALID_ARGUMENT", "Failed to parse warmup record: not a prediction log from {}"),
        ),
        # saved_model_warmup_util.cc:123: more than kMaxNumRecords (1000).
        "too_many": (
            "tiny",
            [b""] * 1001,
            ("INVALID_ARGUMENT", "Number of warmup records exceeds the maximum (1000) at {}"),
        ),
        # saved_model_warmup.cc:67-72: log_type_case() is the oneof's field number.
        "session_run": (
            "tiny",
            [prediction_log_pb2.PredictionLog(session_run_log=prediction_log_pb2.SessionRunLog())],
            ("UNIMPLEMENTED", "Unsupported log_type for warmup: 5"),
        ),
        "streamed": (
            "tiny",
            [
                prediction_log_pb2.PredictionLog(
                    predict_streamed_log=prediction_log_pb2.PredictStreamedLog()
                )
            ],
            ("UNIMPLEMENTED", "Unsupported log_type for warmup: 7"),
        ),
        # A request failing as it would over gRPC: predict_util.cc:90, classifier.cc:160,
        # multi_inference.cc (Infer).
        "predict_bad_signature": (
            "tiny",
            [predict_log("tiny", {"x": np.ones([1, 2], np.float32)}, signature="nope")],
            ("FAILED_PRECONDITION", 'Serving signature key "nope" not found.'),
        ),
        "classify_bad_signature": (
            "classifier",
            [classify_log(signature="nope")],
            ("INVALID_ARGUMENT", "No signature was found with the name: nope"),
        ),
        "multi_bad_method": (
            "classifier",
            [multi_inference_log(method="tensorflow/serving/predict")],
            ("UNIMPLEMENTED", "Unsupported signature method_name: tensorflow/serving/predict"),
        ),
    }
    specs, paths = [], {}
    for name, (model, records, _) in cases.items():
        version = tmp_path / name / "1"
        shutil.copytree(model_root / model / "1", version)
        paths[name] = write_warmup(version, records)
        specs.append(ModelSpec(name=name, base_path=str(tmp_path / name)))
    not_tfrecord = tmp_path / "not_tfrecord" / "1"
    shutil.copytree(model_root / "tiny" / "1", not_tfrecord)
    (not_tfrecord / "assets.extra").mkdir()
    (not_tfrecord / "assets.extra" / "tf_serving_warmup_requests").write_text(
        "plain text, not a TFRecord file"
    )
    specs.append(ModelSpec(name="not_tfrecord", base_path=str(tmp_path / "not_tfrecord")))

    with ModelServer(specs, port=None, poll_seconds=0, access_log=False) as server:
        for name, (_, _, failure) in cases.items():
            (status,) = server.manager.statuses(name)
            if failure is None:
                assert (status.state.value, status.error_code) == ("AVAILABLE", "OK"), name
                assert server.manager.loaded_versions(name) == [1]
            else:
                code, message = failure
                assert status.state.value == "END", name
                assert (status.error_code, status.error_message) == (
                    code,
                    message.format(paths[name]),
                ), name
                assert server.manager.loaded_versions(name) == [], name
        (status,) = server.manager.statuses("not_tfrecord")
        assert status.error_code == "DATA_LOSS"
        # The reader's own message (TensorFlow's record_reader.cc), then TF Serving's hint.
        assert status.error_message.startswith("corrupted record at 0")
        assert status.error_message.endswith(TFRECORD_HINT)
        assert server.manager.loaded_versions("not_tfrecord") == []
        # Recorded when the file was read to its end or could not be read further
        # (saved_model_warmup_util.cc:223); the other failures return before that.
        read_error = status.error_message[: -len(TFRECORD_HINT)]
        assert warmup_histograms(server) == {
            (str(tmp_path / "all_kinds" / "1"), "OK"): 1,
            (str(tmp_path / "all_1000" / "1"), "OK"): 1,
            (str(not_tfrecord), f"DATA_LOSS: {read_error}"): 1,
        }


def test_disabled_warmup_loads_without_replaying(tmp_path, counter_root):
    version = tmp_path / "counter" / "1"
    shutil.copytree(counter_root / "1", version)
    write_warmup(version, [counter_log()] * 3)
    spec = ModelSpec(name="counter", base_path=str(tmp_path / "counter"))
    with ModelServer(
        [spec],
        port=0,
        poll_seconds=0,
        access_log=False,
        warmup=WarmupSettings(enabled=False),
    ) as server:
        assert ServingClient(server.url).predict_rows("counter", [1.0]) == [1]
        assert warmup_histograms(server) == {}

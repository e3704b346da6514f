"""Server-side batching: concurrent calls share one model call and each gets its own rows back."""

import concurrent.futures
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from serving.app import ServerSettings
from serving.batching import Batcher, BatchingParameters
from serving.client import ServingClient
from serving.errors import ServingError
from serving.servable import Servable
from serving.server import ModelServer
from serving.versions import ModelSpec


class RecordingModel:
    def __init__(self):
        self.batch_sizes = []
        self.lock = threading.Lock()

    def __call__(self, inputs):
        with self.lock:
            self.batch_sizes.append(len(inputs["x"]))
        return {"y": inputs["x"] * 10, "name": np.array([b"r"] * len(inputs["x"]), dtype=object)}


def test_concurrent_calls_are_merged_and_split_back():
    model = RecordingModel()
    batcher = Batcher(
        model,
        BatchingParameters(max_batch_size=64, batch_timeout_micros=50_000, num_batch_threads=1),
    )
    try:
        futures = [batcher.submit({"x": np.array([i, i + 0.5])}) for i in range(10)]
        results = [f.result(timeout=10) for f in futures]
    finally:
        batcher.close()
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["y"], [i * 10, (i + 0.5) * 10])
        assert list(result["name"]) == [b"r", b"r"]
    assert sum(model.batch_sizes) == 20 and max(model.batch_sizes) > 2


def test_batches_never_exceed_max_batch_size():
    model = RecordingModel()
    batcher = Batcher(model, BatchingParameters(max_batch_size=4, batch_timeout_micros=20_000))
    try:
        futures = [batcher.submit({"x": np.array([1.0, 2.0])}) for _ in range(9)]
        for future in futures:
            future.result(timeout=10)
        with pytest.raises(ServingError, match="larger than maximum input batch size 4"):
            batcher.submit({"x": np.zeros(5)})
    finally:
        batcher.close()
    assert max(model.batch_sizes) <= 4


def merged_in_one_batch(**overrides) -> BatchingParameters:
    """Parameters under which `max_batch_size` one-row calls submitted together form one batch."""
    return BatchingParameters(batch_timeout_micros=10_000_000, num_batch_threads=1, **overrides)


class RejectsNegativeRows:
    """A model that, like a parse op, fails the whole call when any one row is malformed."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, inputs):
        x = inputs["x"]
        with self.lock:
            self.calls.append(len(x))
        bad = np.flatnonzero(x < 0)
        if bad.size:
            raise ServingError.invalid_argument(f"row {bad[0]} of {len(x)} is negative")
        return {"y": x * 10}


def test_a_bad_call_in_a_merged_batch_fails_only_itself():
    model = RejectsNegativeRows()
    batches = []
    batcher = Batcher(
        model,
        merged_in_one_batch(max_batch_size=5),
        on_batch=lambda rows, tasks: batches.append((rows, tasks)),
    )
    try:
        values = [1.0, 2.0, -1.0, 4.0, 5.0]
        futures = [batcher.submit({"x": np.array([value])}) for value in values]
        for value, future in zip(values, futures, strict=True):
            if value < 0:
                # Its own error, from running alone: not the merged call's "row 2 of 5".
                with pytest.raises(ServingError, match="^row 0 of 1 is negative$") as error:
                    future.result(timeout=10)
                assert error.value.code == "INVALID_ARGUMENT"
            else:
                np.testing.assert_array_equal(future.result(timeout=10)["y"], [value * 10])
    finally:
        batcher.close()
    # One merged call, then one call per caller and no more.
    assert model.calls == [5, 1, 1, 1, 1, 1]
    assert batches == [(5, 5)] + [(1, 1)] * 5
    assert batcher.isolated_failures == 1


def test_callers_that_all_fail_each_get_their_error_for_one_extra_call_each():
    model = RejectsNegativeRows()
    batcher = Batcher(model, merged_in_one_batch(max_batch_size=3))
    try:
        futures = [batcher.submit({"x": -np.ones(1)}) for _ in range(3)]
        for future in futures:
            with pytest.raises(ServingError, match="^row 0 of 1 is negative$"):
                future.result(timeout=10)
    finally:
        batcher.close()
    assert model.calls == [3, 1, 1, 1]


@pytest.mark.parametrize(
    "fault",
    [
        ServingError("RESOURCE_EXHAUSTED", "OOM when allocating tensor"),
        ServingError("UNAVAILABLE", "device lost"),
        RuntimeError("a bug on the server side"),
    ],
    ids=lambda fault: getattr(fault, "code", type(fault).__name__),
)
def test_a_fault_that_is_not_the_requests_is_not_retried_per_caller(fault):
    calls = []

    def broken(inputs):
        calls.append(len(inputs["x"]))
        raise fault

    batcher = Batcher(broken, merged_in_one_batch(max_batch_size=4))
    try:
        futures = [batcher.submit({"x": np.ones(1)}) for _ in range(4)]
        for future in futures:
            with pytest.raises(type(fault)) as error:
                future.result(timeout=10)
            assert error.value is fault
    finally:
        batcher.close()
    assert calls == [4]
    assert batcher.isolated_failures == 0


def test_a_failing_on_batch_hook_does_not_fail_the_calls():
    def broken_hook(rows, tasks):
        raise RuntimeError("exporter down")

    batcher = Batcher(RecordingModel(), merged_in_one_batch(max_batch_size=2), on_batch=broken_hook)
    try:
        futures = [batcher.submit({"x": np.array([float(i)])}) for i in range(2)]
        assert [list(f.result(timeout=10)["y"]) for f in futures] == [[0.0], [10.0]]
    finally:
        batcher.close()


def test_a_cancelled_caller_does_not_stop_the_batch_thread():
    release = threading.Event()

    def blocked_then_rejecting(inputs):
        release.wait(10)
        raise ServingError.invalid_argument("bad row")

    batcher = Batcher(blocked_then_rejecting, merged_in_one_batch(max_batch_size=1))
    try:
        first = batcher.submit({"x": np.ones(1)})
        queued = batcher.submit({"x": np.ones(1)})
        assert queued.cancel()
        release.set()
        with pytest.raises(ServingError, match="bad row"):
            first.result(timeout=10)
        # The single thread survived settling the cancelled future and still serves calls.
        with pytest.raises(ServingError, match="bad row"):
            batcher.submit({"x": np.ones(1)}).result(timeout=10)
    finally:
        batcher.close()


def test_full_queue_is_unavailable():
    release = threading.Event()

    def slow(inputs):
        release.wait(10)
        return {"y": inputs["x"]}

    batcher = Batcher(
        slow,
        BatchingParameters(
            max_batch_size=1, max_enqueued_batches=2, num_batch_threads=1, batch_timeout_micros=0
        ),
    )
    try:
        futures = [batcher.submit({"x": np.ones(1)}) for _ in range(2)]
        with pytest.raises(ServingError) as error:
            for _ in range(5):
                futures.append(batcher.submit({"x": np.ones(1)}))
        assert error.value.code == "UNAVAILABLE" and error.value.http_status == 503
    finally:
        release.set()
        batcher.close()


def test_batching_parameters_are_validated():
    with pytest.raises(ValueError, match="max_batch_size must be positive"):
        BatchingParameters(max_batch_size=0)


def test_batched_server_answers_exactly_like_the_unbatched_one(model_root):
    spec = ModelSpec(name="tiny", base_path=str(model_root / "tiny"))
    settings = ServerSettings(
        batching=BatchingParameters(max_batch_size=32, batch_timeout_micros=5000)
    )
    with ModelServer([spec], port=0, settings=settings, poll_seconds=0, access_log=False) as server:
        client = ServingClient(server.url)
        rows = [[[float(i), 1.0]] for i in range(40)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda row: client.predict_rows("tiny", row), rows))
        assert answers == [[(i + 1.0) * 3] for i in range(40)]
        multi = client.predict_rows("tiny", [{"a": 1.0, "b": "x", "c": 1}], signature_name="multi")
        assert multi == [{"doubled": 2.0, "echo": "x", "length": 1, "plus_one": 2}]


def serialized_example(x: float) -> bytes:
    feature = tf.train.Feature(float_list=tf.train.FloatList(value=[x]))
    return tf.train.Example(features=tf.train.Features(feature={"x": feature})).SerializeToString()


def test_garbage_from_one_client_fails_none_of_the_others(model_root):
    """16 clients send tf.Examples the model parses, 1 sends garbage; only the garbage fails."""
    servable = Servable(str(model_root / "classifier" / "1"))
    batch_tasks = []
    batcher = Batcher(
        lambda batch: servable.run("regress_x", batch),
        BatchingParameters(max_batch_size=32, batch_timeout_micros=2000, num_batch_threads=2),
        on_batch=lambda rows, tasks: batch_tasks.append(tasks),
    )
    deadline = time.monotonic() + 2.0
    good_failures, good_answers, bad_errors, bad_answers = [], [], [], []

    def good_client(client: int) -> None:
        while time.monotonic() < deadline:
            x = float(client)
            inputs = {"inputs": np.array([serialized_example(x)], dtype=object)}
            try:
                outputs = batcher.submit(inputs).result(timeout=30)
            except ServingError as error:
                good_failures.append(error.message)
                continue
            good_answers.append(float(outputs["outputs"][0, 0]) == x * 2.0)

    def bad_client() -> None:
        while time.monotonic() < deadline:
            inputs = {"inputs": np.array([b"\xffnot a tf.Example"], dtype=object)}
            try:
                batcher.submit(inputs).result(timeout=30)
            except ServingError as error:
                bad_errors.append(error.code)
            else:
                bad_answers.append(inputs)

    try:
        with concurrent.futures.ThreadPoolExecutor(17) as pool:
            runs = [pool.submit(good_client, client) for client in range(16)]
            runs.append(pool.submit(bad_client))
            for run in runs:
                run.result()
    finally:
        batcher.close()
    good_calls = len(good_failures) + len(good_answers)
    assert not good_failures, (
        f"{len(good_failures)} of {good_calls} good calls failed, e.g. {good_failures[0]}"
    )
    assert good_answers and all(good_answers)
    assert bad_errors and set(bad_errors) == {"INVALID_ARGUMENT"} and not bad_answers
    # The garbage did share batches with good calls, so the isolation was exercised.
    assert max(batch_tasks) > 1 and batcher.isolated_failures > 0

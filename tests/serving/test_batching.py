"""Server-side batching: concurrent calls share one model call and each gets its own rows back."""

import concurrent.futures
import threading

import numpy as np
import pytest

from serving.app import ServerSettings
from serving.batching import Batcher, BatchingParameters
from serving.client import ServingClient
from serving.errors import ServingError
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


def test_a_failing_batch_fails_every_caller_in_it():
    def broken(inputs):
        raise ServingError.invalid_argument("model exploded")

    batcher = Batcher(broken, BatchingParameters(batch_timeout_micros=20_000))
    try:
        futures = [batcher.submit({"x": np.ones(1)}) for _ in range(3)]
        for future in futures:
            with pytest.raises(ServingError, match="model exploded"):
                future.result(timeout=10)
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

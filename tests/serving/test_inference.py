"""Inference: predict calls around version retirement when batching is on."""

import shutil

import numpy as np

from serving.batching import BatchingParameters
from serving.inference import Inference
from serving.servable import Servable
from serving.versions import ModelManager, ModelSpec

X = {"x": np.array([[1.0, 1.0]], dtype=np.float32)}


def manager_for(tmp_path, model_root) -> ModelManager:
    base = tmp_path / "tiny"
    shutil.copytree(model_root / "tiny" / "1", base / "1")
    manager = ModelManager([ModelSpec("tiny", str(base))], loader=Servable, poll_seconds=0)
    manager.start()
    return manager


def test_a_version_retired_after_lookup_still_answers_and_gets_no_batcher(tmp_path, model_root):
    manager = manager_for(tmp_path, model_root)
    inference = Inference(manager, BatchingParameters())
    stale = inference.resolve("tiny", None, None)
    assert inference.submit_predict(stale, "serving_default", X).result(10)["y"].tolist() == [4.0]
    shutil.copytree(model_root / "tiny" / "2", tmp_path / "tiny" / "2")
    manager.poll()  # version 2 loads, version 1 is retired
    inference.prune_batchers()
    assert manager.loaded_versions("tiny") == [2]
    # The request resolved version 1 before it was retired: it is answered by version 1.
    outputs = inference.submit_predict(stale, "serving_default", X).result(10)
    assert outputs["y"].tolist() == [4.0]
    assert [key[1] for key in inference._batchers] == []  # noqa: SLF001 - no batcher leaks
    current = inference.resolve("tiny", None, None)
    assert inference.submit_predict(current, "serving_default", X).result(10)["y"].tolist() == [6.0]
    inference.close()
    manager.stop()


def test_pruning_keeps_what_was_queued_before_the_batcher_left(tmp_path, model_root):
    manager = manager_for(tmp_path, model_root)
    # A long batch window: calls wait in the queue while the version is retired under them.
    inference = Inference(manager, BatchingParameters(batch_timeout_micros=300_000))
    loaded = inference.resolve("tiny", None, None)
    futures = [inference.submit_predict(loaded, "serving_default", X) for _ in range(5)]
    shutil.copytree(model_root / "tiny" / "2", tmp_path / "tiny" / "2")
    manager.poll()
    inference.prune_batchers()
    assert [future.result(10)["y"].tolist() for future in futures] == [[4.0]] * 5
    inference.close()
    manager.stop()

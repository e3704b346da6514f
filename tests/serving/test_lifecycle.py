"""Model lifecycle: new versions appear without a restart, broken ones are never served."""

import logging
import os
import shutil
import threading
import time
import urllib.request
import weakref

import pytest

from serving import rollback
from serving.app import ServerSettings
from serving.batching import BatchingParameters
from serving.client import ServingClient, ServingClientError
from serving.grpc_client import GrpcServingClient
from serving.server import ModelServer
from serving.versions import (
    ModelManager,
    ModelSpec,
    VersionPolicy,
    list_base_path,
    version_folders,
)
from tests.serving.tiny_models import save_tiny

POLL_SECONDS = 0.1


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def base_path(tmp_path, model_root):
    path = tmp_path / "tiny"
    shutil.copytree(model_root / "tiny" / "1", path / "1")
    return path


def predict(client, version=None):
    return client.predict_rows("tiny", [[1, 1]], version=version)[0]


def push(source, base_path, version):
    """Copied beside, then renamed into place: how an atomic push lands."""
    staging = base_path / f".{version}.tmp"
    shutil.copytree(source, staging)
    staging.rename(base_path / str(version))


def messages_with(caplog, text):
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def _predicts_over(transport: str, server: ModelServer):
    """A predict function over REST or gRPC (both clients raise ServingClientError)."""
    if transport == "rest":
        client = ServingClient(server.url)
        return lambda: predict(client)
    grpc_client = GrpcServingClient(f"127.0.0.1:{server.grpc_port}")
    return lambda: grpc_client.predict_rows("tiny", [{"x": [1.0, 1.0]}])[0]


@pytest.mark.parametrize("transport", ["rest", "grpc"])
@pytest.mark.parametrize("batching", [None, BatchingParameters()], ids=["unbatched", "batched"])
def test_version_swap_under_concurrent_load_fails_no_request(
    base_path, model_root, transport, batching
):
    spec = ModelSpec(name="tiny", base_path=str(base_path))
    with ModelServer(
        [spec],
        port=0,
        grpc_port=0,
        poll_seconds=POLL_SECONDS,
        access_log=False,
        settings=ServerSettings(batching=batching),
    ) as server:
        call = _predicts_over(transport, server)
        assert call() == 4.0
        results, failures, stop = [], [], threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    results.append(call())
                except ServingClientError as error:
                    failures.append(error)

        threads = [threading.Thread(target=load) for _ in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        push(model_root / "tiny" / "2", base_path, 2)
        assert wait_for(lambda: server.manager.loaded_versions("tiny") == [2])
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join()
        assert failures == []
        assert 4.0 in results and results[-1] == 6.0
        # Version 1 was retired only after version 2 served; it stays listed as END.
        states = {
            s["version"]: s["state"]
            for s in ServingClient(server.url).model_status("tiny")["model_version_status"]
        }
        assert states == {"2": "AVAILABLE", "1": "END"}
        batches = batch_size_histogram(server)
        if batching is None:
            assert batches is None
        else:
            # Proof over HTTP that concurrent calls were merged: fewer model calls than requests.
            assert batches["count"] < len(results) + 1
            assert batches["sum"] >= len(results) + 1


def batch_size_histogram(server: ModelServer) -> dict | None:
    """count and sum of processed_batch_size from the server's Prometheus page, or None."""
    text = urllib.request.urlopen(server.url + "/monitoring/prometheus/metrics").read().decode()
    values = {}
    for line in text.splitlines():
        for field in ("sum", "count"):
            prefix = f":tensorflow:serving:batching_session:processed_batch_size_{field} "
            if line.startswith(prefix):
                values[field] = float(line[len(prefix) :])
    return values or None


def test_a_corrupt_version_is_refused_and_the_good_one_keeps_serving(base_path, model_root):
    spec = ModelSpec(name="tiny", base_path=str(base_path))
    with ModelServer([spec], port=0, poll_seconds=POLL_SECONDS, access_log=False) as server:
        client = ServingClient(server.url)
        broken = base_path / "3"
        shutil.copytree(model_root / "tiny" / "2", broken)
        (broken / "saved_model.pb").write_bytes(b"not a saved model")
        assert wait_for(
            lambda: any(
                s["version"] == "3" and s["state"] == "END"
                for s in client.model_status("tiny")["model_version_status"]
            )
        )
        status = client.model_status("tiny", version=3)["model_version_status"][0]
        assert status["status"]["error_code"] != "OK"
        assert "Failed to load servable tiny version 3" in status["status"]["error_message"]
        time.sleep(3 * POLL_SECONDS)
        assert predict(client) == 4.0
        assert server.manager.loaded_versions("tiny") == [1]
        # Repaired in place: the changed files are retried and served.
        shutil.rmtree(broken)
        shutil.copytree(model_root / "tiny" / "2", broken)
        assert wait_for(lambda: server.manager.loaded_versions("tiny") == [3])
        assert predict(client) == 6.0


def test_half_written_version_is_not_served_until_complete(base_path, model_root):
    spec = ModelSpec(name="tiny", base_path=str(base_path))
    with ModelServer([spec], port=0, poll_seconds=POLL_SECONDS, access_log=False) as server:
        client = ServingClient(server.url)
        partial = base_path / "5"
        partial.mkdir()
        shutil.copy(model_root / "tiny" / "2" / "saved_model.pb", partial / "saved_model.pb")
        time.sleep(5 * POLL_SECONDS)
        assert predict(client) == 4.0
        shutil.copytree(model_root / "tiny" / "2" / "variables", partial / "variables")
        assert wait_for(lambda: server.manager.loaded_versions("tiny") == [5])
        assert predict(client) == 6.0


def test_version_policies(model_root):
    folders = version_folders(str(model_root / "tiny"))
    assert sorted(folders) == [1, 2]
    assert ModelSpec("m", "p").wanted([1, 5, 3]) == {5}
    assert ModelSpec("m", "p", latest_count=2).wanted([1, 5, 3]) == {3, 5}
    assert ModelSpec("m", "p", policy=VersionPolicy.ALL).wanted([1, 5, 3]) == {1, 3, 5}
    specific = ModelSpec("m", "p", policy=VersionPolicy.SPECIFIC, specific_versions=(1, 9))
    assert specific.wanted([1, 5, 3]) == {1}


def test_non_numeric_folders_are_ignored(tmp_path, model_root):
    shutil.copytree(model_root / "tiny" / "1", tmp_path / "7")
    (tmp_path / "v8").mkdir()
    (tmp_path / "9.tmp").mkdir()
    (tmp_path / "10").write_text("a file, not a folder")
    assert list(version_folders(str(tmp_path))) == [7]


def test_model_without_versions_yet_answers_not_found_then_serves(tmp_path, model_root):
    spec = ModelSpec(name="tiny", base_path=str(tmp_path / "tiny"))
    with ModelServer([spec], port=0, poll_seconds=POLL_SECONDS, access_log=False) as server:
        client = ServingClient(server.url)
        with pytest.raises(ServingClientError) as error:
            predict(client)
        assert error.value.status == 404
        save_tiny(str(tmp_path / "tiny"), 1, scale=2.0)
        assert wait_for(lambda: server.manager.loaded_versions("tiny") == [1])
        assert predict(client) == 4.0


def test_a_base_path_that_is_a_file_stops_no_other_models_polls(
    tmp_path, base_path, model_root, caplog
):
    caplog.set_level(logging.INFO, logger="serving.versions")
    not_a_folder = tmp_path / "broken.tar"
    not_a_folder.write_text("a file where a base path should be")
    specs = [
        ModelSpec(name="broken", base_path=str(not_a_folder)),
        ModelSpec("tiny", str(base_path)),
    ]
    with ModelServer(specs, port=0, poll_seconds=POLL_SECONDS, access_log=False) as server:
        client = ServingClient(server.url)
        assert predict(client) == 4.0
        # The model listed after the broken one still picks up a push...
        push(model_root / "tiny" / "2", base_path, 2)
        assert wait_for(lambda: server.manager.loaded_versions("tiny") == [2])
        assert predict(client) == 6.0
        # ...and a rollback.
        rollback.rollback(str(base_path), reason="lifecycle test")
        assert wait_for(lambda: server.manager.loaded_versions("tiny") == [1])
        assert predict(client) == 4.0
    # Polled every 0.1 s for seconds, reported once.
    (problem,) = messages_with(caplog, "Cannot poll servable broken")
    assert str(not_a_folder) in problem and "Not a directory" in problem


def test_each_models_poll_is_isolated_and_each_reason_is_logged_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="serving.versions")
    for name in ("flaky", "good", "unloadable"):
        (tmp_path / name / "1").mkdir(parents=True)

    def load(path: str) -> str:
        if "unloadable" in path:
            raise RuntimeError("not a SavedModel")
        return path

    specs = [
        # os.scandir raises ValueError here, not OSError: any exception must be contained.
        ModelSpec(name="nul", base_path=str(tmp_path / "nul\0byte")),
        ModelSpec(name="unloadable", base_path=str(tmp_path / "unloadable")),
        ModelSpec(name="flaky", base_path=str(tmp_path / "flaky")),
        ModelSpec(name="good", base_path=str(tmp_path / "good")),
    ]
    manager = ModelManager(specs, loader=load, poll_seconds=0)
    manager.poll()
    assert manager.loaded_versions("flaky") == manager.loaded_versions("good") == [1]
    flaky = tmp_path / "flaky"
    shutil.rmtree(flaky)
    flaky.write_text("the base path became a file")
    (tmp_path / "good" / "2").mkdir()
    for _ in range(3):
        manager.poll()
    # Like TF Serving after a failed poll, the broken model keeps what it serves.
    assert manager.loaded_versions("flaky") == [1]
    assert manager.loaded_versions("good") == [2]
    flaky.unlink()  # a second, different reason
    for _ in range(3):
        manager.poll()
    assert manager.loaded_versions("flaky") == [1]
    (flaky / "2").mkdir(parents=True)
    manager.poll()
    assert manager.loaded_versions("flaky") == [2]
    assert manager.loaded_versions("unloadable") == []

    (nul,) = messages_with(caplog, "Cannot poll servable nul")
    assert "ValueError" in nul and "null" in nul
    file_problem, missing_problem = messages_with(caplog, "Cannot poll servable flaky")
    assert "Not a directory" in file_problem and "loaded versions [1] keep serving" in file_problem
    assert "No such file or directory" in missing_problem
    assert len(messages_with(caplog, "Polling servable flaky at base path")) == 1
    assert len(messages_with(caplog, "Failed to load servable unloadable version 1")) == 1


def test_symlinked_versions_count_and_every_skipped_child_says_why(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    elsewhere = tmp_path / "elsewhere" / "model"
    elsewhere.mkdir(parents=True)
    (base / "1").mkdir()
    (base / "2").symlink_to(elsewhere)  # outside the base path: TF Serving follows it too
    (base / "3").symlink_to(tmp_path / "gone")
    (base / "4").write_text("a file")
    (base / "5").symlink_to(base / "4")
    (base / "6").symlink_to(base / "6")
    (base / "v7").mkdir()
    (base / "\u00b2").mkdir()  # "²": str.isdigit() says yes, int() refuses it
    (base / "08").mkdir()
    (base / "8").mkdir()
    listing = list_base_path(str(base))
    assert listing.versions == {1: str(base / "1"), 2: str(base / "2"), 8: str(base / "8")}
    assert listing.symlinks == {2: os.path.realpath(elsewhere)}
    assert listing.skipped == {
        "3": f"it is a dangling symlink (to {tmp_path / 'gone'})",
        "4": "it is a file, not a folder",
        "5": f"it is a symlink to a file ({base / '4'}), not a folder",
        "6": "it cannot be read (Too many levels of symbolic links)",
        "v7": "its name is not a version number",
        "\u00b2": "its name is not a version number",
        "08": "8 names the same version and is served instead",
    }
    assert sorted(version_folders(str(base))) == [1, 2, 8]


def test_a_symlinked_version_is_served_and_skipped_children_are_logged_once(
    tmp_path, model_root, caplog
):
    caplog.set_level(logging.INFO, logger="serving.versions")
    base = tmp_path / "tiny"
    shutil.copytree(model_root / "tiny" / "1", base / "1")
    (base / "2").symlink_to(model_root / "tiny" / "2")
    (base / "3").symlink_to(tmp_path / "not-yet")
    (base / "notes").mkdir()
    spec = ModelSpec(name="tiny", base_path=str(base))
    with ModelServer([spec], port=0, poll_seconds=POLL_SECONDS, access_log=False) as server:
        client = ServingClient(server.url)
        assert server.manager.loaded_versions("tiny") == [2]
        assert predict(client) == 6.0
        time.sleep(5 * POLL_SECONDS)
        # The dangling link's target appears (atomically): version 3 is served.
        shutil.copytree(model_root / "tiny" / "1", tmp_path / ".not-yet")
        (tmp_path / ".not-yet").rename(tmp_path / "not-yet")
        assert wait_for(lambda: server.manager.loaded_versions("tiny") == [3])
        assert predict(client) == 4.0
    (dangling,) = messages_with(caplog, f"not serving {base / '3'}")
    assert "dangling symlink" in dangling
    assert len(messages_with(caplog, f"not serving {base / 'notes'}: its name is not")) == 1
    linked = messages_with(caplog, "version 2 is a symlink to")
    assert len(linked) == 1 and str(model_root / "tiny" / "2") in linked[0]


def test_a_retired_version_is_released_after_the_delay_not_during_the_swap(tmp_path):
    """Its teardown must not run beside the new version's first requests."""

    class Loaded:
        def __init__(self, path: str) -> None:
            self.path = path

    (tmp_path / "m" / "1").mkdir(parents=True)
    manager = ModelManager(
        [ModelSpec("m", str(tmp_path / "m"))],
        loader=Loaded,
        poll_seconds=0,
        release_delay_seconds=0.5,
    )
    manager.poll()
    retired = weakref.ref(manager.resolve("m").servable)
    (tmp_path / "m" / "2").mkdir()
    manager.poll()
    assert manager.loaded_versions("m") == [2]
    assert retired() is not None  # not torn down during the swap
    assert wait_for(lambda: retired() is None, timeout=10)


@pytest.mark.parametrize("release_delay_seconds", [0.3, 0.0])
def test_a_retired_version_in_reference_cycles_is_freed_although_the_heap_was_frozen(
    tmp_path, release_delay_seconds
):
    """A SavedModel lives in reference cycles and each load freezes the heap (gc.freeze): only a
    collection that unfreezes it frees a retired version; before, each swap leaked one."""

    class Cyclic:
        def __init__(self, path: str) -> None:
            self.path = path
            self.myself = self  # only the cyclic collector can free it

    (tmp_path / "m" / "1").mkdir(parents=True)
    manager = ModelManager(
        [ModelSpec("m", str(tmp_path / "m"))],
        loader=Cyclic,
        poll_seconds=0,
        release_delay_seconds=release_delay_seconds,
    )
    manager.poll()
    retired = weakref.ref(manager.resolve("m").servable)
    (tmp_path / "m" / "2").mkdir()
    manager.poll()
    assert manager.loaded_versions("m") == [2]
    assert wait_for(lambda: retired() is None, timeout=10)
    assert manager.resolve("m").servable.path.endswith("2")  # the new version was not freed

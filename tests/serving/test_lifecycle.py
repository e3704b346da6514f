"""Model lifecycle: new versions appear without a restart, broken ones are never served."""

import shutil
import threading
import time

import pytest

from serving.client import ServingClient, ServingClientError
from serving.server import ModelServer
from serving.versions import ModelSpec, VersionPolicy, version_folders
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


def test_version_swap_under_concurrent_load_fails_no_request(base_path, model_root):
    spec = ModelSpec(name="tiny", base_path=str(base_path))
    with ModelServer([spec], port=0, poll_seconds=POLL_SECONDS, access_log=False) as server:
        client = ServingClient(server.url)
        assert predict(client) == 4.0
        results, failures, stop = [], [], threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    results.append(predict(client))
                except ServingClientError as error:
                    failures.append(error)

        threads = [threading.Thread(target=load) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        # Written beside, then renamed into place: how an atomic push lands.
        shutil.copytree(model_root / "tiny" / "2", base_path / ".2.tmp")
        (base_path / ".2.tmp").rename(base_path / "2")
        assert wait_for(lambda: server.manager.loaded_versions("tiny") == [2])
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join()
        assert failures == []
        assert 4.0 in results and results[-1] == 6.0
        # Version 1 was retired only after version 2 served; it stays listed as END.
        states = {
            s["version"]: s["state"] for s in client.model_status("tiny")["model_version_status"]
        }
        assert states == {"2": "AVAILABLE", "1": "END"}


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

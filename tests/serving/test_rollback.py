"""Rollback: the previous version serves again, for this server and any TF Serving, and it is logged."""

import json
import shutil
import time

import pytest

from serving import rollback
from serving.client import ServingClient
from serving.server import ModelServer
from serving.versions import ModelSpec, version_folders


@pytest.fixture
def base_path(tmp_path, model_root):
    path = tmp_path / "tiny"
    shutil.copytree(model_root / "tiny" / "1", path / "1")
    shutil.copytree(model_root / "tiny" / "2", path / "2")
    return path


def test_rollback_with_the_server_running_answers_from_the_old_version_within_a_poll(base_path):
    poll = 0.2
    spec = ModelSpec(name="tiny", base_path=str(base_path))
    with ModelServer([spec], port=0, poll_seconds=poll, access_log=False) as server:
        client = ServingClient(server.url)
        assert client.predict_rows("tiny", [[1, 1]]) == [6.0]  # version 2
        record = rollback.rollback(str(base_path), reason="canary AUC dropped")
        deadline = time.monotonic() + 10 * poll
        while client.predict_rows("tiny", [[1, 1]]) != [4.0]:
            assert time.monotonic() < deadline, "version 1 did not take over"
            time.sleep(poll / 4)
    assert record["from_version"] == 2 and record["to_version"] == 1
    assert sorted(version_folders(str(base_path))) == [1]
    assert rollback.rolled_back_versions(str(base_path)) == [2]
    (logged,) = [
        json.loads(line) for line in (base_path / "rollbacks.jsonl").read_text().splitlines()
    ]
    assert logged["reason"] == "canary AUC dropped" and logged["moved_aside"] == [2]


def test_rollback_to_a_named_version_moves_every_later_one(base_path, model_root):
    shutil.copytree(model_root / "tiny" / "2", base_path / "3")
    record = rollback.rollback(str(base_path), reason="revert both", to_version=1)
    assert record["moved_aside"] == [2, 3]
    assert sorted(version_folders(str(base_path))) == [1]


@pytest.mark.parametrize(
    ("to_version", "reason", "message"),
    [(None, " ", "say why"), (7, "x", "version 7 is not present"), (2, "x", "already the highest")],
)
def test_rollback_refuses_with_a_reason(base_path, to_version, reason, message):
    with pytest.raises(rollback.RollbackError, match=message):
        rollback.rollback(str(base_path), reason=reason, to_version=to_version)
    assert sorted(version_folders(str(base_path))) == [1, 2]


def test_rollback_needs_an_earlier_version(tmp_path, model_root, capsys):
    shutil.copytree(model_root / "tiny" / "1", tmp_path / "only" / "1")
    assert rollback.main(["--model_base_path", str(tmp_path / "only"), "--reason", "x"]) == 2
    assert "no earlier version" in capsys.readouterr().err

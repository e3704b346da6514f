"""Atomic, duplicate-free pushes into a TF Serving base path."""

import os

import pytest

from tfx_pipeline.components.atomic_pusher import push


def make_model(path, weights: bytes):
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"graph")
    (path / "variables" / "variables.data-00000-of-00001").write_bytes(weights)
    return str(path)


def test_a_push_leaves_exactly_one_complete_version_and_no_staging(tmp_path):
    model = make_model(tmp_path / "model", b"w1")
    base = tmp_path / "serving" / "taxi"
    version, copied = push.push_atomically(model, str(base), now=1_800_000_000)
    assert (version, copied) == (1_800_000_000, True)
    assert os.listdir(base) == ["1800000000"]
    assert push.model_digest(str(base / "1800000000")) == push.model_digest(model)


def test_an_identical_model_is_not_pushed_again(tmp_path):
    model = make_model(tmp_path / "model", b"w1")
    base = tmp_path / "serving"
    first, _ = push.push_atomically(model, str(base), now=100)
    again, copied = push.push_atomically(model, str(base), now=200)
    assert (again, copied) == (first, False)
    assert os.listdir(base) == ["100"]


def test_versions_only_go_up_even_within_one_second_or_with_a_slow_clock(tmp_path):
    base = tmp_path / "serving"
    v1, _ = push.push_atomically(make_model(tmp_path / "a", b"a"), str(base), now=500)
    v2, _ = push.push_atomically(make_model(tmp_path / "b", b"b"), str(base), now=500)
    v3, _ = push.push_atomically(make_model(tmp_path / "c", b"c"), str(base), now=10)
    assert v1 < v2 < v3 == 502


def test_a_failed_copy_leaves_nothing_behind(tmp_path, monkeypatch):
    base = tmp_path / "serving"

    def broken_copy(source, target):
        os.makedirs(target)
        raise OSError("disk full")

    monkeypatch.setattr(push.shutil, "copytree", broken_copy)
    with pytest.raises(OSError, match="disk full"):
        push.push_atomically(make_model(tmp_path / "m", b"x"), str(base), now=7)
    assert os.listdir(base) == []


def test_staging_left_by_a_killed_push_is_cleared_and_never_a_version(tmp_path):
    base = tmp_path / "serving"
    leftover = base / ".push-99-deadbeef"
    leftover.mkdir(parents=True)
    (leftover / "saved_model.pb").write_bytes(b"half")
    assert push.existing_versions(str(base)) == []
    version, _ = push.push_atomically(make_model(tmp_path / "m", b"x"), str(base), now=5)
    assert sorted(os.listdir(base)) == [str(version)]


def test_a_rolled_back_model_is_never_pushed_again(tmp_path):
    base = tmp_path / "serving"
    model = make_model(tmp_path / "m", b"bad weights")
    version, _ = push.push_atomically(model, str(base), now=5)
    os.rename(base / str(version), base / f".rolled_back-{version}")
    with pytest.raises(push.RolledBackModelError, match="rolled back"):
        push.push_atomically(model, str(base), now=6)
    assert push.existing_versions(str(base)) == []


def test_remote_destinations_find_an_identical_version_through_tensorflow_filesystems(tmp_path):
    # ram:// is a TensorFlow filesystem like gs://: no os.* call can reach it.
    import tensorflow as tf

    model = make_model(tmp_path / "model", b"w1")
    base = f"ram://{tmp_path.name}/serving/taxi"
    for root, _, names in os.walk(model):
        for name in names:
            relative = os.path.relpath(os.path.join(root, name), model)
            tf.io.gfile.makedirs(os.path.dirname(f"{base}/7/{relative}"))
            tf.io.gfile.copy(os.path.join(root, name), f"{base}/7/{relative}")
    assert push.existing_versions(base) == [7]
    assert push.identical_version(push.model_digest(model), base) == 7
    other = make_model(tmp_path / "other", b"w2")
    assert push.identical_version(push.model_digest(other), base) is None

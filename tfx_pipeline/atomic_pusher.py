"""Pusher executor whose versions appear complete or not at all, and never twice.

TFX's filesystem Pusher copies files straight into `<base>/<version>/` (saved_model.pb last), so
a model server polling the base path can see a version folder before it is complete. This one
copies into a hidden sibling folder and renames it into place, which is atomic on a local
filesystem. It also refuses to push a model identical to a version already in the base path
(a re-evaluated, unchanged model), and it never reuses or goes below an existing version number.
"""

import hashlib
import os
import shutil
import time
import uuid
from typing import Any

from absl import logging
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

STAGING_PREFIX = ".push-"
# Directory contract with serving/rollback.py: versions taken out of service are renamed so.
ROLLED_BACK_PREFIX = ".rolled_back-"


class RolledBackModelError(RuntimeError):
    """The model is identical to a version someone rolled back: do not serve it again."""


def model_digest(path: str) -> str:
    """SHA-256 over every file of a SavedModel folder (names and bytes), local or on GCS."""
    digest = hashlib.sha256()
    files = []
    for root, _, names in fileio.walk(path):
        files += [os.path.join(root, name) for name in names]
    prefix = path.rstrip("/") + "/"
    for full in sorted(files):
        digest.update(full[len(prefix) :].encode())
        with fileio.open(full, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def existing_versions(base_directory: str) -> list[int]:
    if not fileio.isdir(base_directory):
        return []
    # GCS lists folders with a trailing slash.
    names = (name.rstrip("/") for name in fileio.listdir(base_directory))
    return sorted(int(name) for name in names if name.isdigit())


def identical_version(digest: str, base_directory: str) -> int | None:
    """The newest version in `base_directory` whose files have this `model_digest`, if any."""
    for version in reversed(existing_versions(base_directory)):
        if model_digest(os.path.join(base_directory, str(version))) == digest:
            return version
    return None


def next_version(base_directory: str, now: float) -> int:
    """Unix seconds, but always above every version present (two pushes in one second)."""
    versions = existing_versions(base_directory)
    return max(int(now), versions[-1] + 1 if versions else 0)


def push_atomically(model_path: str, base_directory: str, now: float) -> tuple[int, bool]:
    """Places `model_path` as a new version; returns (version, whether anything was copied).

    An identical model already present is not copied again: its version is returned.
    """
    os.makedirs(base_directory, exist_ok=True)
    digest = model_digest(model_path)
    for name in os.listdir(base_directory):
        if name.startswith(STAGING_PREFIX):
            # Left by a push killed mid-copy; servers ignore it, and here it is cleared.
            shutil.rmtree(os.path.join(base_directory, name), ignore_errors=True)
        elif name.startswith(ROLLED_BACK_PREFIX):
            if model_digest(os.path.join(base_directory, name)) == digest:
                raise RolledBackModelError(
                    f"this model is identical to {name} in {base_directory}, which was rolled "
                    "back (see rollbacks.jsonl there); it is not pushed again"
                )
    identical = identical_version(digest, base_directory)
    if identical is not None:
        return identical, False
    version = next_version(base_directory, now)
    staging = os.path.join(base_directory, f"{STAGING_PREFIX}{version}-{uuid.uuid4().hex[:8]}")
    try:
        shutil.copytree(model_path, staging)
        os.rename(staging, os.path.join(base_directory, str(version)))
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    return version, True


class Executor(pusher_executor.Executor):
    """TFX Pusher: atomic, duplicate-free pushes locally; duplicate-free on remote filesystems."""

    def Do(  # noqa: N802 - TFX executor API
        self,
        input_dict: dict[str, list[Any]],
        output_dict: dict[str, list[Any]],
        exec_properties: dict[str, Any],
    ) -> None:
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
        )
        base_directory = destination.filesystem.base_directory
        if "://" in base_directory:
            # Remote filesystems (GCS) have no atomic rename: TFX's own push, which writes
            # saved_model.pb last, unless the very same model is already there.
            version = identical_version(model_digest(model_path), base_directory)
            if version is None:
                super().Do(input_dict, output_dict, exec_properties)
                return
            logging.info("Model is identical to the served version %s; nothing copied.", version)
            self._MarkPushed(
                model_push,
                pushed_destination=os.path.join(base_directory, str(version)),
                pushed_version=str(version),
            )
            return
        try:
            version, copied = push_atomically(model_path, base_directory, time.time())
        except RolledBackModelError as error:
            logging.warning("%s", error)
            self._MarkNotPushed(model_push)
            return
        serving_path = os.path.join(base_directory, str(version))
        if copied:
            logging.info("Model pushed atomically to %s.", serving_path)
        else:
            logging.info(
                "Model is identical to the served version %s; nothing copied.", serving_path
            )
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=str(version))
        if not fileio.exists(serving_path):
            raise RuntimeError(f"push to {serving_path} did not leave a version folder")

"""Pushing a SavedModel into a TF Serving base path so versions appear complete or not at all, and never twice.

TFX-free: paths go through TensorFlow's filesystems (local, gs://, ram://), so the same code
serves the Pusher executor and tests. A local push copies into a hidden sibling folder, adds the
version's own files (its model card), and renames it into place, which is atomic on a local
filesystem; a polling server never sees half a model. A remote push (object stores have no
rename) copies saved_model.pb last, after everything else, the model card included.
"""

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Mapping

import tensorflow as tf

from tfx_pipeline.components.atomic_pusher.model_card import CARD_FILES

STAGING_PREFIX = ".push-"
# Directory contract with serving/rollback.py (held together by tests/test_contracts.py):
# versions taken out of service are renamed so, and never pushed again.
ROLLED_BACK_PREFIX = ".rolled_back-"


# TF Serving loads a version once this file is there: a remote push writes it last.
SAVED_MODEL_FILE = "saved_model.pb"
# Directory contract with serving/request_schema.py (held together by tests/test_contracts.py):
# the curated schema the push's run used, which the server checks each request's rows against.
SERVED_SCHEMA_FILE = "assets.extra/schema.pbtxt"
# Files a push adds to a version beside the model, and which describe the push (its time, run,
# evaluation, schema), not the model: the digest leaves them out, so a re-evaluated, unchanged
# model is still recognised as the version already served (and keeps the files of the push that
# made it), and a rolled-back one as rolled back.
PUSH_RECORD_FILES = (*CARD_FILES, SERVED_SCHEMA_FILE)

# What a push adds to the new version, given its number: relative path -> content.
ExtraFiles = Callable[[int], Mapping[str, bytes]]


class RolledBackModelError(RuntimeError):
    """The model is identical to a version someone rolled back: do not serve it again."""


def model_digest(path: str) -> str:
    """SHA-256 over every file of a SavedModel folder (names and bytes), local or remote.

    The files a push adds (`PUSH_RECORD_FILES`) are not part of the model and are left out.
    """
    digest = hashlib.sha256()
    files = []
    for root, _, names in tf.io.gfile.walk(path):
        files += [os.path.join(root, name) for name in names]
    prefix = path.rstrip("/") + "/"
    for full in sorted(files):
        if full[len(prefix) :] in PUSH_RECORD_FILES:
            continue
        digest.update(full[len(prefix) :].encode())
        with tf.io.gfile.GFile(full, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def existing_versions(base_directory: str) -> list[int]:
    """The integer version folders of a TF Serving base path, ascending."""
    if not tf.io.gfile.isdir(base_directory):
        return []
    # GCS lists folders with a trailing slash.
    names = (name.rstrip("/") for name in tf.io.gfile.listdir(base_directory))
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


def write_extra_files(version_path: str, files: Mapping[str, bytes]) -> None:
    """Writes `files` (relative path -> content) into a version folder, local or remote."""
    for relative, content in files.items():
        target = os.path.join(version_path, relative)
        tf.io.gfile.makedirs(os.path.dirname(target))
        with tf.io.gfile.GFile(target, "wb") as handle:
            handle.write(content)


def push_atomically(
    model_path: str, base_directory: str, now: float, extra_files: ExtraFiles | None = None
) -> tuple[int, bool]:
    """Places `model_path` as a new version of a local base path.

    Args:
      model_path: the SavedModel folder to push.
      base_directory: the TF Serving base path, `<serving-dir>/<model-name>`.
      now: Unix seconds, the new version's number unless a version at or above it exists.
      extra_files: called with the new version's number; what it returns is written into the
        staged copy before it is renamed into place (the model card). Not called when nothing
        is copied.

    Returns (version, whether anything was copied): an identical model already present is not
    copied again, and its version is returned. Raises RolledBackModelError for a model identical
    to a rolled-back version.
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
        if extra_files is not None:
            write_extra_files(staging, extra_files(version))
        os.rename(staging, os.path.join(base_directory, str(version)))
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    return version, True


def push_by_copy(
    model_path: str, base_directory: str, now: float, extra_files: ExtraFiles | None = None
) -> tuple[int, bool]:
    """Places `model_path` as a new version of a remote base path (gs://), saved_model.pb last.

    Object stores have no atomic rename. As TFX's own Pusher does, every other file is copied
    first and `saved_model.pb` last: TF Serving does not load a version before that file is
    there. The extra files (the model card) are written before it, so a loadable version always
    has its card. Versions only go up, as in `push_atomically`; rolled-back versions are a local
    rename (serving/rollback.py) and not looked for here.

    Returns (version, whether anything was copied); an identical model already present is not
    copied again.
    """
    identical = identical_version(model_digest(model_path), base_directory)
    if identical is not None:
        return identical, False
    version = next_version(base_directory, now)
    target = os.path.join(base_directory, str(version))
    prefix = model_path.rstrip("/") + "/"
    for root, _, names in tf.io.gfile.walk(model_path):
        for name in names:
            relative = os.path.join(root, name)[len(prefix) :]
            if relative == SAVED_MODEL_FILE:
                continue
            tf.io.gfile.makedirs(os.path.dirname(os.path.join(target, relative)))
            tf.io.gfile.copy(os.path.join(root, name), os.path.join(target, relative))
    if extra_files is not None:
        write_extra_files(target, extra_files(version))
    tf.io.gfile.makedirs(target)
    tf.io.gfile.copy(
        os.path.join(model_path, SAVED_MODEL_FILE), os.path.join(target, SAVED_MODEL_FILE)
    )
    return version, True

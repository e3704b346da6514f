"""Pushing a SavedModel into a TF Serving base path so versions appear complete or not at all, and never twice.

TFX-free: paths go through TensorFlow's filesystems (local, gs://, ram://), so the same code
serves the Pusher executor and tests. A local push copies into a hidden sibling folder and renames
it into place, which is atomic on a local filesystem; a polling server never sees half a model.
"""

import hashlib
import os
import shutil
import uuid

import tensorflow as tf

STAGING_PREFIX = ".push-"
# Directory contract with serving/rollback.py (held together by tests/test_contracts.py):
# versions taken out of service are renamed so, and never pushed again.
ROLLED_BACK_PREFIX = ".rolled_back-"


class RolledBackModelError(RuntimeError):
    """The model is identical to a version someone rolled back: do not serve it again."""


def model_digest(path: str) -> str:
    """SHA-256 over every file of a SavedModel folder (names and bytes), local or remote."""
    digest = hashlib.sha256()
    files = []
    for root, _, names in tf.io.gfile.walk(path):
        files += [os.path.join(root, name) for name in names]
    prefix = path.rstrip("/") + "/"
    for full in sorted(files):
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


def push_atomically(model_path: str, base_directory: str, now: float) -> tuple[int, bool]:
    """Places `model_path` as a new version of a local base path.

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
        os.rename(staging, os.path.join(base_directory, str(version)))
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    return version, True

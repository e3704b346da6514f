"""The model servers infra validation can start, `auto`'s choice, and their warmup limit; light."""

import shutil

TF_SERVING_BINARY = "tensorflow_model_server"
PYTHON = "python"  # this project's TF Serving-compatible server, `python -m serving`
AUTO = "auto"  # the real binary when it is on PATH, else ours
CHOICES = (AUTO, TF_SERVING_BINARY, PYTHON)
# TF Serving replays at most this many warmup records (saved_model_warmup_util.cc).
MAX_WARMUP_RECORDS = 1000


class ServerError(Exception):
    """The server did not start, exited, or a model did not become AVAILABLE."""


class ServerExited(ServerError):
    """The server process could not start or ended early: worth another try."""


def resolve(choice: str) -> str:
    """`auto` -> the TF Serving binary when it is on PATH, else our server; others as given."""
    if choice not in CHOICES:
        raise ValueError(f"unknown model server {choice!r}; expected one of {', '.join(CHOICES)}")
    if choice == AUTO:
        return TF_SERVING_BINARY if shutil.which(TF_SERVING_BINARY) else PYTHON
    if choice == TF_SERVING_BINARY and not shutil.which(TF_SERVING_BINARY):
        raise ServerError(f"{TF_SERVING_BINARY} is not on PATH")
    return choice

"""Request logging: sampled predict requests written as tf.Example TFRecord files that TFDV reads.

Each logged row is one tf.Example holding the request's raw features, plus metadata under the
reserved `__log_` prefix (model name, version, signature, time, every output), so a monitor can
compute statistics over the features alone. The request path only samples and puts the request
on a bounded queue; one background thread turns requests into records and does all file IO.
Files are written under a hidden name and renamed into place when complete (by size or age), so
a reader that lists `*.tfrecord` never sees a half-written file. Files hold raw features, so
they are created with --request_log_file_mode (0600 unless set), whatever the umask. A request
counts as logged only once its file is complete and renamed into place. A full disk, an
unwritable folder, a file that cannot be completed or a full queue drops the record, counts it
and reports it; it never fails a request.
"""

import dataclasses
import logging
import math
import os
import queue
import random
import re
import struct
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import BinaryIO

import google_crc32c
import numpy as np
from tensorflow.core.example import example_pb2

log = logging.getLogger(__name__)

METADATA_PREFIX = "__log_"
MODEL_KEY = "__log_model_name"
VERSION_KEY = "__log_model_version"
SIGNATURE_KEY = "__log_signature"
# Microseconds since the epoch: tf.Example floats are float32, too coarse for a timestamp.
TIME_KEY = "__log_time_micros"
OUTPUT_PREFIX = "__log_output_"
FILE_SUFFIX = ".tfrecord"
WRITING_SUFFIX = ".writing"
# The tf.Example convention (TFX, TF Serving's classify/regress): one input of serialized examples.
EXAMPLES_INPUT = "examples"
# How raw-feature signatures mark a missing value (NaN, "", -1); logged as a feature with no
# values, exactly as an empty CSV cell reaches training.
MISSING_INT = -1
# Outcomes of a request that was sampled (Prometheus label `outcome`).
LOGGED = "logged"
DROPPED_QUEUE_FULL = "dropped_queue_full"
DROPPED_WRITE_ERROR = "dropped_write_error"
# Written, but its file could not be closed or renamed into place, so no reader will see it.
DROPPED_COMPLETE_ERROR = "dropped_complete_error"
DROPPED_UNLOGGABLE = "dropped_unloggable"
ERROR_REPORT_SECONDS = 60.0
# Log files hold raw features: readable by the server's user only, unless the flag says otherwise.
DEFAULT_FILE_MODE = 0o600
FILE_MODE_TEXT = re.compile(r"(?:0o)?([0-7]{1,4})")


def parse_file_mode(text: str) -> int:
    """--request_log_file_mode's octal text (`0640`, `640` or `0o640`) as a number."""
    match = FILE_MODE_TEXT.fullmatch(text.strip())
    if not match:
        raise ValueError(
            f"--request_log_file_mode must be an octal permission mode such as 0600 or 0640, "
            f"got {text!r}"
        )
    return int(match.group(1), 8)


@dataclasses.dataclass(frozen=True)
class RequestLogSettings:
    """Where and how much to log; `directory` None logs only models with a logging_config."""

    directory: str | None = None
    sampling_rate: float = 1.0
    max_file_bytes: int = 64 * 1024 * 1024
    max_file_seconds: float = 300.0
    queue_size: int = 10000
    file_mode: int = DEFAULT_FILE_MODE

    def __post_init__(self) -> None:
        # Named as the flags that set them (python -m serving).
        problems = []
        if not 0.0 <= self.sampling_rate <= 1.0:
            problems.append(
                f"--request_log_sampling_rate must be within [0, 1], got {self.sampling_rate}"
            )
        if self.max_file_bytes < 1:
            problems.append(
                f"--request_log_max_file_bytes must be positive, got {self.max_file_bytes}"
            )
        if not self.max_file_seconds > 0:
            problems.append(
                f"--request_log_max_file_seconds must be positive, got {self.max_file_seconds}"
            )
        if self.queue_size < 1:
            problems.append(f"--request_log_queue_size must be positive, got {self.queue_size}")
        problems.extend(_file_mode_problems(self.file_mode))
        if problems:
            raise ValueError("; ".join(problems))


def _file_mode_problems(mode: int) -> list[str]:
    flag = f"--request_log_file_mode (got {mode:04o})"
    if not 0 <= mode <= 0o777:
        return [f"{flag} takes permission bits only (0000-0777, no setuid, setgid or sticky bit)"]
    problems = []
    if mode & 0o600 != 0o600:
        problems.append(
            f"{flag} must let the server's user read and write the files (0600 at least)"
        )
    if mode & 0o002:
        problems.append(f"{flag} must not let every user write the files (anyone could forge rows)")
    return problems


@dataclasses.dataclass(frozen=True)
class ModelLogging:
    """TF Serving's per-model logging_config: sampling_config.sampling_rate, filename_prefix."""

    sampling_rate: float
    filename_prefix: str = ""


@dataclasses.dataclass(frozen=True)
class LogTarget:
    """Files `<directory>/<file_prefix>-<time>-<pid>-<random>-<n>.tfrecord`, for one model."""

    directory: str
    file_prefix: str
    sampling_rate: float


def log_target(
    model_name: str, settings: RequestLogSettings, model_logging: ModelLogging | None
) -> LogTarget | None:
    """Where `model_name`'s requests go; None when they are not logged.

    A model's own logging_config wins over the flags: its filename_prefix may name a folder
    (`/var/log/taxi/requests` writes `requests-*.tfrecord` there) or only a file prefix, which
    then goes into --request_log_dir.
    """
    if model_logging is not None:
        folder, prefix = os.path.split(model_logging.filename_prefix)
        folder = folder or settings.directory
        if folder is None:
            raise ValueError(
                f"model {model_name!r}: logging_config filename_prefix "
                f"{model_logging.filename_prefix!r} names no folder and --request_log_dir is "
                "not set"
            )
        return LogTarget(folder, prefix or model_name, model_logging.sampling_rate)
    if settings.directory is None:
        return None
    return LogTarget(settings.directory, model_name, settings.sampling_rate)


def _feature(
    example: example_pb2.Example, key: str, values: np.ndarray, drop_missing: bool = True
) -> None:
    """Adds `values` (one row of one tensor) as feature `key`, leaving out missing markers."""
    flat = np.asarray(values).reshape(-1)
    feature = example.features.feature[key]
    if flat.dtype.kind == "f":
        feature.float_list.value.extend(
            float(v) for v in flat if not (drop_missing and math.isnan(v))
        )
    elif flat.dtype.kind in "iub":
        feature.int64_list.value.extend(
            int(v) for v in flat if not (drop_missing and int(v) == MISSING_INT)
        )
    elif flat.dtype.kind in "OSU":
        for value in flat:
            data = value.encode() if isinstance(value, str) else bytes(value)
            if data or not drop_missing:
                feature.bytes_list.value.append(data)
    else:
        raise TypeError(f"cannot log values of dtype {flat.dtype} (feature {key})")


def _batch_size(tensors: Mapping[str, np.ndarray]) -> int:
    sizes = {np.asarray(v).shape[0] if np.ndim(v) else 1 for v in tensors.values()}
    return sizes.pop() if len(sizes) == 1 else 0


def request_examples(
    model: str,
    version: int,
    signature: str,
    logged_at: float,
    inputs: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
) -> list[bytes]:
    """One serialized tf.Example per row of a predict request: its features plus `__log_` metadata.

    Raises ValueError for requests whose inputs are not rows (differing batch sizes).
    """
    if set(inputs) == {EXAMPLES_INPUT} and np.asarray(inputs[EXAMPLES_INPUT]).dtype.kind in "OS":
        serialized = np.asarray(inputs[EXAMPLES_INPUT]).reshape(-1)
        examples = [example_pb2.Example.FromString(bytes(s)) for s in serialized]
    else:
        rows = _batch_size(inputs)
        if rows == 0:
            raise ValueError("request inputs differ in their batch size")
        examples = []
        for row in range(rows):
            example = example_pb2.Example()
            for key, tensor in sorted(inputs.items()):
                array = np.asarray(tensor)
                _feature(example, key, array[row] if array.ndim else array)
            examples.append(example)
    records = []
    for row, example in enumerate(examples):
        features = example.features.feature
        features[MODEL_KEY].bytes_list.value.append(model.encode())
        features[VERSION_KEY].int64_list.value.append(version)
        features[SIGNATURE_KEY].bytes_list.value.append(signature.encode())
        features[TIME_KEY].int64_list.value.append(round(logged_at * 1e6))
        for name, output in sorted(outputs.items()):
            array = np.asarray(output)
            if array.ndim and array.shape[0] == len(examples):
                _feature(example, OUTPUT_PREFIX + name, array[row], drop_missing=False)
        records.append(example.SerializeToString())
    return records


def _masked_crc(data: bytes) -> bytes:
    """TFRecord's masked CRC-32C."""
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def tfrecord_frame(record: bytes) -> bytes:
    """One record in TFRecord framing: length, CRC of length, data, CRC of data."""
    length = struct.pack("<Q", len(record))
    return length + _masked_crc(length) + record + _masked_crc(record)


class _OpenFile:
    """The file being written for one target, under a hidden name until it is complete."""

    def __init__(self, target: LogTarget, sequence: int, file_mode: int) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        # The random part keeps two loggers (two servers, one restarted) from sharing a name.
        unique = f"{os.getpid()}-{uuid.uuid4().hex[:6]}-{sequence:05d}"
        name = f"{target.file_prefix}-{stamp}-{unique}{FILE_SUFFIX}"
        self.final_path = os.path.join(target.directory, name)
        self.writing_path = os.path.join(target.directory, f".{name}{WRITING_SUFFIX}")
        os.makedirs(target.directory, exist_ok=True)
        self.handle = _create_private(self.writing_path, file_mode)
        self.opened = time.monotonic()
        self.size = 0
        self.records = 0
        # Requests written to this file by model: counted as logged only once it is complete.
        self.requests: dict[str, int] = {}

    def write(self, frames: bytes) -> None:
        try:
            self.handle.write(frames)
            self.handle.flush()
        except OSError:
            # Keep the complete records written so far: cut the partial one off.
            self.handle.truncate(self.size)
            raise
        self.size += len(frames)

    def finish(self) -> str | None:
        """Closes the file and renames it into place; an empty file is removed instead."""
        self.handle.close()
        if self.records == 0:
            os.remove(self.writing_path)
            return None
        os.rename(self.writing_path, self.final_path)
        return self.final_path


def _create_private(path: str, file_mode: int) -> BinaryIO:
    """Creates `path` (never an existing file or symlink) with exactly `file_mode`, for writing.

    The mode is given at creation, so the file is never more open than asked; the umask can
    only narrow it, which fchmod then undoes. rename() keeps the mode for the final name.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode)
    try:
        os.fchmod(descriptor, file_mode)
        return os.fdopen(descriptor, "wb")
    except BaseException:
        os.close(descriptor)
        raise


@dataclasses.dataclass
class _Request:
    target: LogTarget
    model: str
    version: int
    signature: str
    logged_at: float
    inputs: Mapping[str, np.ndarray]
    outputs: Mapping[str, np.ndarray]


_STOP = object()


class RequestLogger:
    """Samples predict requests on the request path and writes them from one background thread.

    Args:
      settings: folder, sampling rate, rotation and queue size.
      model_logging: per-model logging_config from a TF Serving model config file.
      count: called with (model name, outcome) for every sampled request; outcome is one of
        LOGGED (once its file is complete), DROPPED_QUEUE_FULL, DROPPED_WRITE_ERROR,
        DROPPED_COMPLETE_ERROR, DROPPED_UNLOGGABLE.
    """

    def __init__(
        self,
        settings: RequestLogSettings,
        model_logging: Mapping[str, ModelLogging] | None = None,
        count: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self._model_logging = dict(model_logging or {})
        self._count_hook = count
        self._targets: dict[str, LogTarget | None] = {}
        self._queue: queue.Queue = queue.Queue(maxsize=settings.queue_size)
        self._files: dict[LogTarget, _OpenFile] = {}
        self._sequence = 0
        self._counts: dict[tuple[str, str], int] = {}
        self._counts_lock = threading.Lock()
        self._last_error_report = -math.inf
        self._errors_since_report = 0
        self._thread = threading.Thread(target=self._write_forever, name="request-log", daemon=True)
        self.completed_files: list[str] = []
        for model in self._model_logging:
            self.target(model)  # a logging_config without a usable folder is a config error

    def target(self, model: str) -> LogTarget | None:
        if model not in self._targets:
            self._targets[model] = log_target(model, self.settings, self._model_logging.get(model))
        return self._targets[model]

    def start(self, model_names: list[str]) -> "RequestLogger":
        """Checks every log folder can be written (reporting, not failing) and starts writing."""
        for model in model_names:
            target = self.target(model)
            if target is not None:
                problem = _writable_problem(target.directory)
                if problem:
                    log.error(
                        "request log folder %s for model %s %s: requests are served but not "
                        "logged until it can be written",
                        target.directory,
                        model,
                        problem,
                    )
        self._thread.start()
        return self

    def close(self) -> None:
        """Writes what is queued, completes the open files and stops the writer thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout=60)

    def counts(self) -> dict[tuple[str, str], int]:
        """Sampled requests by (model, outcome) so far."""
        with self._counts_lock:
            return dict(self._counts)

    def _count(self, model: str, outcome: str, requests: int = 1) -> None:
        with self._counts_lock:
            self._counts[(model, outcome)] = self._counts.get((model, outcome), 0) + requests
        if self._count_hook is not None:
            for _ in range(requests):
                self._count_hook(model, outcome)

    def submit(
        self,
        model: str,
        version: int,
        signature: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
    ) -> None:
        """Queues one answered predict request if it is sampled; never blocks, never raises."""
        try:
            target = self.target(model)
        except ValueError as error:
            self._report_error(str(error))
            return
        if target is None or target.sampling_rate <= 0.0:
            return
        if target.sampling_rate < 1.0 and random.random() >= target.sampling_rate:
            return
        request = _Request(target, model, version, signature, time.time(), inputs, outputs)
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            self._count(model, DROPPED_QUEUE_FULL)
            self._report_error(
                f"request log queue is full ({self.settings.queue_size} requests): the writer "
                "cannot keep up; requests are being dropped from the log"
            )

    def _write_forever(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._seconds_to_next_rotation())
            except queue.Empty:
                item = None
            if item is _STOP:
                break
            if item is not None:
                self._write(item)
            self._rotate_old_files()
        for target in list(self._files):
            self._finish(target)

    def _seconds_to_next_rotation(self) -> float:
        if not self._files:
            return 1.0
        oldest = min(f.opened for f in self._files.values())
        return max(0.01, oldest + self.settings.max_file_seconds - time.monotonic())

    def _write(self, request: _Request) -> None:
        try:
            records = request_examples(
                request.model,
                request.version,
                request.signature,
                request.logged_at,
                request.inputs,
                request.outputs,
            )
        except Exception as error:  # noqa: BLE001 - a request the log cannot express is skipped
            self._count(request.model, DROPPED_UNLOGGABLE)
            self._report_error(f"a {request.model} request cannot be logged: {error}")
            return
        frames = b"".join(tfrecord_frame(record) for record in records)
        try:
            current = self._files.get(request.target)
            if current is None:
                self._sequence += 1
                current = self._files[request.target] = _OpenFile(
                    request.target, self._sequence, self.settings.file_mode
                )
            current.write(frames)
        except OSError as error:
            self._count(request.model, DROPPED_WRITE_ERROR)
            self._report_error(
                f"cannot write the request log in {request.target.directory}: "
                f"{error.strerror or error}"
            )
            # Complete what was written; the next request opens a new file (the disk may recover).
            if request.target in self._files:
                self._finish(request.target)
            return
        current.records += len(records)
        current.requests[request.model] = current.requests.get(request.model, 0) + 1
        if current.size >= self.settings.max_file_bytes:
            self._finish(request.target)

    def _rotate_old_files(self) -> None:
        now = time.monotonic()
        for target, open_file in list(self._files.items()):
            if now - open_file.opened >= self.settings.max_file_seconds:
                self._finish(target)

    def _finish(self, target: LogTarget) -> None:
        """Completes a file; only then do its requests count as logged."""
        open_file = self._files.pop(target)
        try:
            path = open_file.finish()
        except OSError as error:
            for model, requests in sorted(open_file.requests.items()):
                self._count(model, DROPPED_COMPLETE_ERROR, requests)
            # Rare (once per file at most) and the only trace of the lost rows: always logged.
            log.error(
                "cannot complete request log file %s (%s): its %d requests are not logged; "
                "what was written stays under that hidden name, which readers skip",
                open_file.writing_path,
                error.strerror or error,
                sum(open_file.requests.values()),
            )
            return
        for model, requests in sorted(open_file.requests.items()):
            self._count(model, LOGGED, requests)
        if path is not None:
            self.completed_files.append(path)

    def _report_error(self, message: str) -> None:
        """Logs an error at most once a minute, with how many happened since the last report."""
        self._errors_since_report += 1
        now = time.monotonic()
        if now - self._last_error_report >= ERROR_REPORT_SECONDS:
            log.error(
                "%s (%d such problems since the last report)", message, self._errors_since_report
            )
            self._last_error_report = now
            self._errors_since_report = 0


def _writable_problem(directory: str) -> str | None:
    """Why `directory` cannot hold log files, or None."""
    try:
        os.makedirs(directory, exist_ok=True)
        probe = os.path.join(
            directory, f".probe-{os.getpid()}-{uuid.uuid4().hex[:6]}{WRITING_SUFFIX}"
        )
        with _create_private(probe, DEFAULT_FILE_MODE):
            pass
        os.remove(probe)
    except OSError as error:
        return f"cannot be written ({error.strerror or error})"
    return None

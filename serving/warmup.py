"""SavedModel warmup as TF Serving 2.16.1 runs it: replay a version's sample requests before it serves.

A version folder may hold `assets.extra/tf_serving_warmup_requests`, a TFRecord file of
`tensorflow.serving.PredictionLog` records. While the version is still LOADING, every record's
request is run `iterations` times through the same request code the gRPC API uses
(serving/grpc_api.py run_predict and friends, then serving/inference.py), so the signatures
and batch sizes clients will call are traced and initialized before the first real request.

What TF Serving does, and so this module (servables/tensorflow/saved_model_warmup_util.cc,
saved_model_warmup.cc, model_servers/main.cc):
- No file: nothing to do, the version loads.
- Predict, Classify, Regress and MultiInference logs are replayed; a record with no request
  is skipped; PredictStreamed and SessionRun logs fail the load (UNIMPLEMENTED).
- A record that is not a PredictionLog, a request that fails, or a 1001st record (after it
  ran) fails the load with that error; a file that is not TFRecord fails it with DATA_LOSS.
- The wall time lands in `:tensorflow:serving:model_warmup_latency{model_path,status}` when
  the file was read to its end (status "OK") or could not be read further (the read error);
  TF Serving returns before recording it on the other failures, and so does this module.
- With batching on, TF Serving's replay goes through the batching session; here a version
  that is still loading is called directly (see Inference.submit_predict), which traces the
  same signatures and shapes.
"""

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator

import tensorflow as tf
from google.protobuf import message
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import prediction_log_pb2

from serving import grpc_api
from serving.errors import ServingError
from serving.inference import Inference
from serving.versions import LoadedVersion

log = logging.getLogger(__name__)

# saved_model_warmup_util.h WarmupConsts, and tensorflow/cc/saved_model/constants.h.
ASSETS_EXTRA_DIRECTORY = "assets.extra"
REQUESTS_FILE_NAME = "tf_serving_warmup_requests"
MAX_RECORDS = 1000
# The kinds TF Serving refuses, by field name; it names them by field number (log_type_case).
UNSUPPORTED_KINDS = ("predict_streamed_log", "session_run_log")


@dataclasses.dataclass(frozen=True)
class WarmupSettings:
    """tensorflow_model_server's --enable_model_warmup and --num_request_iterations_for_warmup.

    Attributes:
      enabled: replay warmup files at all (TF Serving's default: true).
      request_iterations: runs of each record; 0 or less means once, as TF Serving uses the flag
        "only if > 0" and otherwise its default of 1.
    """

    enabled: bool = True
    request_iterations: int = 1

    @property
    def iterations(self) -> int:
        return self.request_iterations if self.request_iterations > 0 else 1


def requests_file(version_path: str) -> str:
    """Where a version keeps its warmup requests."""
    return os.path.join(version_path, ASSETS_EXTRA_DIRECTORY, REQUESTS_FILE_NAME)


class _ReadError(Exception):
    """The TFRecord file could not be read further (not one of the requests failing)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def status_text(self) -> str:
        """absl::Status::ToString(), TF Serving's status label for the warmup latency."""
        return f"{self.code}: {self.message}"


def read_records(path: str) -> Iterator[bytes]:
    """The records of the TFRecord file at `path`, read lazily as TF Serving reads them.

    TensorFlow's record iterator rather than tf.data: it raises the reader's own message
    ("corrupted record at 0 ..."), which tf.data wraps in op and function names.

    Raises _ReadError when the file cannot be opened or a record cannot be read.
    """
    try:
        records = tf.compat.v1.io.tf_record_iterator(path)
        while True:
            try:
                yield next(records)
            except StopIteration:
                return
    except tf.errors.OpError as error:
        raise _ReadError(error_codes_pb2.Code.Name(error.error_code), error.message) from None


def parse_record(record: bytes, path: str) -> prediction_log_pb2.PredictionLog:
    """One PredictionLog; TF Serving quotes the unparsable record's bytes in its error."""
    prediction_log = prediction_log_pb2.PredictionLog()
    try:
        prediction_log.ParseFromString(record)
    except message.DecodeError:
        quoted = record.decode("utf-8", errors="replace")
        raise ServingError.invalid_argument(
            f"Failed to parse warmup record: {quoted} from {path}"
        ) from None
    return prediction_log


class Warmup:
    """Replays a loading version's warmup file (ModelManager's `warmup` hook).

    Args:
      inference: the request code real requests run through.
      settings: whether to replay, and how often each record.
      max_elements: the gRPC side's limit on a request tensor's values.
      on_latency: told the version folder, status text and microseconds of each replay that
        reached the end of its file or a read error (Metrics.observe_warmup).
    """

    def __init__(
        self,
        inference: Inference,
        settings: WarmupSettings,
        max_elements: int,
        on_latency: Callable[[str, str, float], None],
    ) -> None:
        self._inference = inference
        self._settings = settings
        self._max_elements = max_elements
        self._on_latency = on_latency

    def __call__(self, loaded: LoadedVersion) -> None:
        """Replays `loaded`'s warmup file; raises ServingError (TF Serving's status) on failure."""
        if not self._settings.enabled:
            return
        started = time.perf_counter()
        path = requests_file(loaded.path)
        if not os.path.exists(path):
            log.info("No warmup data file found at %s", path)
            return
        log.info(
            "Starting to read warmup data for model at %s with model-warmup-options "
            "num_request_iterations { value: %d }",
            path,
            self._settings.iterations,
        )
        replayed = 0
        try:
            for record in read_records(path):
                prediction_log = parse_record(record, path)
                for _ in range(self._settings.iterations):
                    self._replay(loaded, prediction_log)
                replayed += 1
                # Counted after the record ran, as TF Serving counts: the 1001st runs, then fails.
                if replayed > MAX_RECORDS:
                    raise ServingError.invalid_argument(
                        f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}"
                    )
        except _ReadError as error:
            self._on_latency(loaded.path, error.status_text(), _micros_since(started))
            if error.code == "DATA_LOSS":
                raise ServingError(
                    "DATA_LOSS",
                    f"{error.message}. Please verify your warmup data is in TFRecord format.",
                ) from None
            raise ServingError(error.code, error.message) from None
        latency_us = _micros_since(started)
        self._on_latency(loaded.path, "OK", latency_us)
        log.info(
            "Finished reading warmup data for model at %s. Number of warmup records read: %d. "
            "Elapsed time (microseconds): %d.",
            path,
            replayed,
            latency_us,
        )

    def _replay(
        self, loaded: LoadedVersion, prediction_log: prediction_log_pb2.PredictionLog
    ) -> None:
        """saved_model_warmup.cc RunWarmupRequest: one record's request, its response dropped."""
        kind = prediction_log.WhichOneof("log_type")
        try:
            if kind == "predict_log":
                grpc_api.run_predict(
                    self._inference,
                    loaded,
                    prediction_log.predict_log.request,
                    self._max_elements,
                    logged=False,
                )
            elif kind == "classify_log":
                grpc_api.run_classify(self._inference, loaded, prediction_log.classify_log.request)
            elif kind == "regress_log":
                grpc_api.run_regress(self._inference, loaded, prediction_log.regress_log.request)
            elif kind == "multi_inference_log":
                grpc_api.run_multi_inference(
                    self._inference, loaded, prediction_log.multi_inference_log.request
                )
            elif kind in UNSUPPORTED_KINDS:
                number = prediction_log.DESCRIPTOR.fields_by_name[kind].number
                raise ServingError.unimplemented(f"Unsupported log_type for warmup: {number}")
        except tf.errors.OpError as error:  # TF Serving fails the load with the session's status
            raise ServingError(error_codes_pb2.Code.Name(error.error_code), error.message) from None


def _micros_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1e6)

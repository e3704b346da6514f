"""The model calls behind both APIs: predict (batched or not, then logged), classify and regress.

REST and gRPC parse their own wire formats into numpy arrays and serialized tf.Examples, then
call this module, so both sides share one version lookup, one set of batchers, one request log
and TF Serving's classify/regress rules (servables/tensorflow/classifier.cc, regressor.cc):
which signatures qualify, which outputs are read, and the messages when they do not.
"""

import concurrent.futures
import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping

import numpy as np
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from serving.batching import Batcher, BatchingParameters
from serving.errors import ServingError
from serving.request_log import RequestLogger
from serving.request_schema import RequestSchemaCheck
from serving.servable import DEFAULT_SIGNATURE
from serving.versions import LoadedVersion, ModelManager

log = logging.getLogger(__name__)

CLASSIFY_INPUTS = "inputs"
CLASSIFY_CLASSES = "classes"
CLASSIFY_SCORES = "scores"
REGRESS_INPUTS = "inputs"
REGRESS_OUTPUTS = "outputs"

Arrays = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Classifications:
    """Per-example classes and scores, either of which a signature may lack (then None)."""

    classes: np.ndarray | None  # [examples, classes] of bytes
    scores: np.ndarray | None  # [examples, classes] float32

    @property
    def width(self) -> int:
        present = self.classes if self.classes is not None else self.scores
        return 0 if present is None else present.shape[1]


def _signature_text(signature: meta_graph_pb2.SignatureDef) -> str:
    """SignatureDef::DebugString(), which TF Serving quotes in classify/regress errors."""
    return str(signature)


def _shape_text(array: np.ndarray) -> str:
    """TensorShape::DebugString(): [2,3]."""
    return "[" + ",".join(str(size) for size in array.shape) + "]"


def _named_signature(loaded: LoadedVersion, name: str) -> meta_graph_pb2.SignatureDef:
    signatures = loaded.servable.signature_defs
    if name not in signatures or name == "__saved_model_init_op":
        raise ServingError.invalid_argument(f"No signature was found with the name: {name}")
    return signatures[name]


def check_classification_signature(signature: meta_graph_pb2.SignatureDef) -> None:
    """TF Serving's PreProcessClassification (the method-name check is off by default)."""
    if len(signature.inputs) != 1:
        raise ServingError.invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) not in (1, 2):
        raise ServingError.invalid_argument(
            f"Expected one or two output Tensors, found {len(signature.outputs)}"
        )
    if CLASSIFY_INPUTS not in signature.inputs:
        raise ServingError.invalid_argument(
            f"No classification inputs found in SignatureDef: {_signature_text(signature)}"
        )
    if CLASSIFY_CLASSES not in signature.outputs and CLASSIFY_SCORES not in signature.outputs:
        raise ServingError.invalid_argument(
            "Expected classification signature outputs to contain at least one of "
            f'"{CLASSIFY_CLASSES}" or "{CLASSIFY_SCORES}". Signature was: '
            f"{_signature_text(signature)}"
        )


def check_regression_signature(signature: meta_graph_pb2.SignatureDef) -> None:
    """TF Serving's PreProcessRegression."""
    if len(signature.inputs) != 1:
        raise ServingError.invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) != 1:
        raise ServingError.invalid_argument("Expected one output Tensor.")
    if REGRESS_INPUTS not in signature.inputs:
        raise ServingError.invalid_argument(
            f"No regression inputs found in SignatureDef: {_signature_text(signature)}"
        )
    if REGRESS_OUTPUTS not in signature.outputs:
        raise ServingError.invalid_argument(
            f"No regression outputs found in SignatureDef: {_signature_text(signature)}"
        )


def classifications(outputs: Mapping[str, np.ndarray], examples: int) -> Classifications:
    """TF Serving's PostProcessClassificationResult checks on the signature's outputs."""
    classes = outputs.get(CLASSIFY_CLASSES)
    scores = outputs.get(CLASSIFY_SCORES)
    if classes is not None:
        if classes.ndim != 2:
            raise ServingError.invalid_argument(
                f"Expected Tensor shape: [batch_size num_classes] but got {_shape_text(classes)}"
            )
        if classes.dtype != object:
            raise ServingError.invalid_argument(
                f"Expected classes Tensor of DT_STRING. Got: {_dtype_enum_name(classes)}"
            )
        if classes.shape[0] != examples:
            raise ServingError.invalid_argument(
                f"Expected classes output batch size of {examples}. Got: {classes.shape[0]}"
            )
    if scores is not None:
        if scores.ndim != 2:
            raise ServingError.invalid_argument(
                f"Expected Tensor shape: [batch_size num_classes] but got {_shape_text(scores)}"
            )
        if scores.dtype != np.float32:
            raise ServingError.invalid_argument(
                f"Expected scores Tensor of DT_FLOAT. Got: {_dtype_enum_name(scores)}"
            )
        if scores.shape[0] != examples:
            raise ServingError.invalid_argument(
                f"Expected scores output batch size of {examples}. Got: {scores.shape[0]}"
            )
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise ServingError.invalid_argument(
            "Tensors class and score should match in dim_size(1). Got "
            f"{classes.shape[1]} vs. {scores.shape[1]}"
        )
    return Classifications(classes, scores)


def regressions(outputs: Mapping[str, np.ndarray], examples: int) -> np.ndarray:
    """TF Serving's PostProcessRegressionResult: one float per example."""
    values = outputs[REGRESS_OUTPUTS]
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise ServingError.invalid_argument(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            + _shape_text(values)
        )
    if values.shape[0] != examples:
        raise ServingError.invalid_argument(
            f"Input batch size did not match output batch size: {examples} vs. {values.shape[0]}"
        )
    if values.dtype != np.float32:
        raise ServingError.invalid_argument(
            f"Expected output Tensor of DT_FLOAT.  Got: {_dtype_enum_name(values)}"
        )
    return values.reshape(examples)


def _dtype_enum_name(array: np.ndarray) -> str:
    import tensorflow as tf

    dtype = tf.string if array.dtype == object else tf.dtypes.as_dtype(array.dtype)
    return types_pb2.DataType.Name(dtype.as_datatype_enum)


class Inference:
    """One version lookup, one set of batchers and one request log for every API.

    Args:
      manager: the loaded model versions.
      batching: batch concurrent predict calls with these parameters; None calls at once.
      request_log: where answered predict calls are sampled for monitoring, or None.
      on_batch: told the rows and calls of every model call a batcher makes (for metrics).
      schema_check: checks each request's rows against its version's schema before the model
        runs (counted; refused in strict mode); None checks nothing.
    """

    def __init__(
        self,
        manager: ModelManager,
        batching: BatchingParameters | None = None,
        request_log: RequestLogger | None = None,
        on_batch: Callable[[int, int], None] | None = None,
        schema_check: RequestSchemaCheck | None = None,
    ) -> None:
        self.manager = manager
        self.batching = batching
        self.request_log = request_log
        self.schema_check = schema_check
        self._on_batch = on_batch
        self._lock = threading.Lock()
        self._batchers: dict[tuple[str, int, str], tuple[LoadedVersion, Batcher]] = {}

    def resolve(self, model: str, version: int | None, label: str | None) -> LoadedVersion:
        return self.manager.resolve(model, version, label)

    # --- predict ----------------------------------------------------------------------------

    def submit_predict(
        self, loaded: LoadedVersion, signature: str, inputs: Arrays, logged: bool = True
    ) -> concurrent.futures.Future:
        """Starts a predict call; the future holds the outputs (and the call is logged unless
        `logged` is False, as for warmup requests, which TF Serving does not log either).

        Unbatched, the call runs in the caller's thread and the future is already done. Batched,
        the inputs join the version's queue; a version retired between lookup and submit, or
        one still loading (warmup), answers with a direct call on the servable.
        """
        if self.schema_check is not None:
            self.schema_check.check_inputs(loaded, inputs)
        future = None
        if self.batching is not None:
            future = self._submit_batched(loaded, signature, inputs)
        if future is None:
            future = concurrent.futures.Future()
            try:
                future.set_result(loaded.servable.run(signature, inputs))
            except Exception as error:  # noqa: BLE001 - handed to the caller through the future
                future.set_exception(error)
        if self.request_log is not None and logged:
            future.add_done_callback(lambda done: self._log(done, loaded, signature, inputs))
        return future

    def predict(
        self,
        loaded: LoadedVersion,
        signature: str,
        inputs: Arrays,
        timeout: float | None = None,
        logged: bool = True,
    ) -> Arrays:
        """A blocking predict call (for callers that own a thread, like the gRPC handlers)."""
        try:
            return self.submit_predict(loaded, signature, inputs, logged).result(timeout)
        except concurrent.futures.TimeoutError:
            raise ServingError("DEADLINE_EXCEEDED", "Deadline Exceeded") from None

    def _log(
        self,
        done: concurrent.futures.Future,
        loaded: LoadedVersion,
        signature: str,
        inputs: Arrays,
    ) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        self.request_log.submit(loaded.model_name, loaded.version, signature, inputs, done.result())

    def _submit_batched(
        self, loaded: LoadedVersion, signature: str, inputs: Arrays
    ) -> concurrent.futures.Future | None:
        """Queues the call on the version's batcher; None when the version was just retired.

        Submitting under the table lock orders every submit before the retirement that removes
        the batcher, and a retired batcher drains its queue before it stops: no call is dropped.
        """
        key = (loaded.model_name, loaded.version, signature)
        replaced = None
        try:
            with self._lock:
                entry = self._batchers.get(key)
                if entry is None or entry[0] is not loaded:
                    if not self._is_current(loaded):
                        return None
                    replaced = entry[1] if entry is not None else None  # a reloaded version
                    entry = (loaded, self._new_batcher(loaded, signature))
                    self._batchers[key] = entry
                return entry[1].submit(inputs)
        finally:
            if replaced is not None:
                replaced.close()

    def _new_batcher(self, loaded: LoadedVersion, signature: str) -> Batcher:
        servable = loaded.servable
        return Batcher(
            lambda batch: servable.run(signature, batch), self.batching, on_batch=self._on_batch
        )

    # --- classify and regress ----------------------------------------------------------------

    def classify(
        self,
        loaded: LoadedVersion,
        signature: str,
        examples: np.ndarray,
        check_schema: bool = True,
    ) -> Classifications:
        """Runs a classification signature on serialized tf.Examples (`check_schema` False: the
        caller checked them already, as a multi-inference call does once for all its tasks)."""
        name = signature or DEFAULT_SIGNATURE
        signature_def = _named_signature(loaded, name)
        check_classification_signature(signature_def)
        outputs = self._run_examples(loaded, name, signature_def, examples, check_schema)
        return classifications(outputs, len(examples))

    def regress(
        self,
        loaded: LoadedVersion,
        signature: str,
        examples: np.ndarray,
        check_schema: bool = True,
    ) -> np.ndarray:
        """Runs a regression signature on serialized tf.Examples: one float per example."""
        name = signature or DEFAULT_SIGNATURE
        signature_def = _named_signature(loaded, name)
        check_regression_signature(signature_def)
        outputs = self._run_examples(loaded, name, signature_def, examples, check_schema)
        return regressions(outputs, len(examples))

    def check_examples(self, loaded: LoadedVersion, examples: np.ndarray) -> None:
        """Checks tf.Examples against the version's schema (raises only in strict mode)."""
        if self.schema_check is not None:
            self.schema_check.check_examples(loaded, examples)

    def _run_examples(
        self,
        loaded: LoadedVersion,
        name: str,
        signature: meta_graph_pb2.SignatureDef,
        examples: np.ndarray,
        check_schema: bool,
    ) -> Arrays:
        if len(examples) == 0:
            raise ServingError.invalid_argument("Input is empty.")
        if check_schema:
            self.check_examples(loaded, examples)
        (input_name,) = signature.inputs
        return loaded.servable.run(name, {input_name: examples})

    # --- lifecycle ---------------------------------------------------------------------------

    def prune_batchers(self) -> None:
        """Closes the batchers of versions no longer served (the ModelManager's on_change hook)."""
        stale = []
        with self._lock:
            for key, (loaded, batcher) in list(self._batchers.items()):
                if not self._is_current(loaded):
                    del self._batchers[key]
                    stale.append(batcher)
        for batcher in stale:
            batcher.close()  # drains what was queued before it left the table

    def close(self) -> None:
        with self._lock:
            batchers = [batcher for _, batcher in self._batchers.values()]
            self._batchers.clear()
        for batcher in batchers:
            batcher.close()

    def _is_current(self, loaded: LoadedVersion) -> bool:
        try:
            return self.manager.resolve(loaded.model_name, loaded.version) is loaded
        except ServingError:
            return False

"""One loaded SavedModel version: its signatures, their metadata, and calls into them."""

import os
from collections.abc import Mapping

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from serving.errors import ServingError

SERVE_TAG = "serve"
DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


def read_meta_graph(path: str) -> meta_graph_pb2.MetaGraphDef:
    """The 'serve' MetaGraphDef of the SavedModel at `path` (what TF Serving's metadata reports)."""
    pb_path = os.path.join(path, "saved_model.pb")
    if not os.path.exists(pb_path):
        raise FileNotFoundError(f"SavedModel file does not exist at: {pb_path}")
    saved_model = saved_model_pb2.SavedModel()
    with open(pb_path, "rb") as handle:
        saved_model.ParseFromString(handle.read())
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return meta_graph
    raise ValueError(f"SavedModel at {path} has no MetaGraphDef tagged '{SERVE_TAG}'")


class Servable:
    """A SavedModel version loaded with `tf.saved_model.load`, callable by signature name."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.meta_graph = read_meta_graph(path)
        self._model = tf.saved_model.load(path, tags=[SERVE_TAG])
        self._functions = dict(self._model.signatures)
        self.signature_defs = dict(self.meta_graph.signature_def)
        missing = sorted(
            set(self.signature_defs) - set(self._functions) - {"__saved_model_init_op"}
        )
        if missing:
            raise ValueError(f"signatures {missing} are declared but cannot be loaded")

    def signature_def(self, name: str | None) -> meta_graph_pb2.SignatureDef:
        name = name or DEFAULT_SIGNATURE
        if name not in self.signature_defs or name == "__saved_model_init_op":
            raise ServingError.invalid_argument(
                f'Serving signature name: "{name}" not found in signature def'
            )
        return self.signature_defs[name]

    def run(self, name: str | None, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Calls signature `name` with numpy inputs keyed by signature input name."""
        name = name or DEFAULT_SIGNATURE
        signature = self.signature_def(name)
        function = self._functions[name]
        expected = set(signature.inputs)
        if set(inputs) != expected:
            missing = sorted(expected - set(inputs))
            extra = sorted(set(inputs) - expected)
            problems = []
            if missing:
                problems.append(f"missing inputs {missing}")
            if extra:
                problems.append(f"unknown inputs {extra}")
            raise ServingError.invalid_argument(
                f"Request inputs do not match signature {name}: {'; '.join(problems)}"
            )
        try:
            outputs = function(**_input_tensors(signature, inputs))
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            raise ServingError.invalid_argument(_first_line(error)) from None
        return {key: value.numpy() for key, value in outputs.items()}


def _input_tensors(
    signature: meta_graph_pb2.SignatureDef, inputs: Mapping[str, np.ndarray]
) -> dict[str, tf.Tensor]:
    """The inputs as tensors of the signature's dtypes, made without leaking memory.

    On CPython 3.11 and 3.12, TF 2.16's `EagerTensor.__init__` overwrites the empty `__dict__`
    that `object.__new__` gives every new EagerTensor, so each tf.convert_to_tensor or
    tf.constant leaks about 340 bytes (tensorflow/tensorflow#62551): 4.7 KB per predict on the
    taxi model's 14 inputs, for the life of the server. Tensors that an op makes from numpy
    inputs never pass through `__init__`, so all inputs go through one IdentityN op (which is
    also faster than one conversion per input).
    """
    arrays = {}
    for name, value in inputs.items():
        dtype = tf.dtypes.as_dtype(signature.inputs[name].dtype)
        try:
            # The casts tf.convert_to_tensor would make; strings stay bytes/str objects.
            arrays[name] = np.asarray(
                value, dtype=object if dtype == tf.string else dtype.as_numpy_dtype
            )
        except (TypeError, ValueError) as error:
            raise _conversion_error(name, dtype, error) from None
    if not arrays:
        return {}
    try:
        tensors = tf.raw_ops.IdentityN(input=list(arrays.values()))
    except (TypeError, ValueError):
        # Only a string input holding something else (a number, None) gets here: name it.
        for name, array in arrays.items():
            try:
                tf.raw_ops.IdentityN(input=[array])
            except (TypeError, ValueError) as error:
                raise _conversion_error(name, tf.string, error) from None
        raise
    return dict(zip(arrays, tensors, strict=True))


def _conversion_error(name: str, dtype: tf.DType, error: Exception) -> ServingError:
    return ServingError.invalid_argument(
        f"Input {name} cannot be converted to {dtype.name}: {error}"
    )


def _first_line(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__

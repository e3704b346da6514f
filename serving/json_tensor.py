"""TF Serving 2.16.1's JSON <-> tensor rules (util/json_tensor.cc) for predict, classify, regress.

Requests are parsed the way rapidjson 1.1.0 parses them for TF Serving (same accepted
literals, numbers, error texts and byte offsets), validated in TF Serving's order and rejected
with its messages, so a client sees the same 400 whichever server it talks to. Responses are
laid out by `json_writer`.

Unlike TF Serving, the work one request can cause is bounded: a request may hold at most
`MAX_JSON_VALUES` JSON values, and nothing here recurses on the request's nesting depth.
"""

import base64
import binascii
import functools
import math
from collections.abc import Mapping
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from serving.errors import ServingError
from serving.json_writer import (
    PrettyWriter,
    debug_string,
    format_decimal,
    member_count,
    members,
    to_bytes,
)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
BYTES_SUFFIX = "_bytes"

# TensorShape::MaxDimensions() (tensorflow/core/framework/tensor_shape.h): deeper tensors fail
# Tensor::FromProto, which TF Serving reports as "tensor parsing error: <input>".
MAX_TENSOR_RANK = 254
# numpy arrays have at most this many dimensions (32 before numpy 2, 64 since).
NUMPY_MAX_RANK = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32

# TF's DataTypeString names, used in error messages.
_DTYPE_NAMES = {
    tf.float32: "float", tf.float64: "double", tf.int32: "int32", tf.uint8: "uint8",
    tf.int16: "int16", tf.int8: "int8", tf.string: "string", tf.int64: "int64", tf.bool: "bool",
    tf.uint32: "uint32", tf.uint64: "uint64", tf.float16: "half", tf.bfloat16: "bfloat16",
}  # fmt: skip
# rapidjson's IsInt/IsInt64/IsUint/IsUint64 ranges per dtype (AddValueToTensor, json_tensor.cc
# :236-288); 8- and 16-bit types only need IsInt() and are truncated by the tensor cast.
_INT_RANGES = {
    tf.int8: (-(2**31), 2**31 - 1),
    tf.int16: (-(2**31), 2**31 - 1),
    tf.int32: (-(2**31), 2**31 - 1),
    tf.uint8: (-(2**31), 2**31 - 1),
    tf.int64: (INT64_MIN, INT64_MAX),
    tf.uint32: (0, 2**32 - 1),
    tf.uint64: (0, 2**64 - 1),
}


def dtype_name(dtype: tf.DType) -> str:
    return _DTYPE_NAMES.get(dtype, dtype.name)


def json_type_name(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _invalid(message: str) -> ServingError:
    return ServingError.invalid_argument(message)


def _c_string(key: str) -> str:
    """A member name as `kv.name.GetString()` hands it to std::string: cut at the first NUL."""
    return key.split("\x00", 1)[0] if "\x00" in key else key


def signature_name(request: dict) -> str:
    name = request.get("signature_name", "")
    if not isinstance(name, str):
        raise _invalid(
            f"JSON Value: {debug_string(request)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


# --- JSON values to tensors (FillTensorProto and friends, json_tensor.cc:236-595) -----------


def _is_b64(value: Any) -> bool:
    """IsValBase64Object: an object whose only member is a string "b64"."""
    return (
        isinstance(value, dict) and member_count(value) == 1 and isinstance(value.get("b64"), str)
    )


def _is_element_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(to_bytes(text), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("Unable to base64 decode") from None


def _type_error(value: Any, dtype: tf.DType) -> ServingError:
    return _invalid(
        f"JSON Value: {debug_string(value)} Type: {json_type_name(value)} "
        f"is not of expected type: {dtype_name(dtype)}"
    )


def _leaf(value: Any, dtype: tf.DType) -> Any:
    """One JSON leaf as a Python value of `dtype` (AddValueToTensor; objects as in
    FillTensorProto: base64 for strings, a type error otherwise)."""
    if isinstance(value, dict):
        if dtype != tf.string:
            raise _type_error(value, dtype)
        if not _is_b64(value):
            raise _invalid(
                f"JSON Value: {debug_string(value)} not formatted correctly for base64 data"
            )
        return _b64decode(value["b64"])
    if dtype == tf.string:
        if isinstance(value, str):
            return to_bytes(value)
        raise _type_error(value, dtype)
    if dtype == tf.bool:
        if isinstance(value, bool):
            return value
        raise _type_error(value, dtype)
    is_number = type(value) is int or type(value) is float
    if dtype in (tf.float32, tf.float64):
        if is_number:
            return float(value)
        raise _type_error(value, dtype)
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if type(value) is int and low <= value <= high:
            return value
        raise _type_error(value, dtype)
    raise ServingError.unimplemented(
        f"Conversion of JSON Value: {debug_string(value)} to type: {dtype_name(dtype)}"
    )


def _dense_shape(value: Any) -> list[int]:
    """GetDenseTensorShape: sizes along the first element of every nesting level."""
    shape = []
    while type(value) is list:
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _flatten(value: Any, dtype: tf.DType) -> tuple[list[int], list]:
    """(shape, leaves in order) of one JSON tensor, or FillTensorProto's first error.

    Depth-first like FillTensorProto, so the same element fails first, but with an explicit
    stack: a document nested thousands deep costs no Python recursion.
    """
    shape = _dense_shape(value)
    rank = len(shape)
    leaves: list = []

    def check_list(node: list, level: int) -> None:
        if level >= rank:
            raise _invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
        if len(node) != shape[level]:
            raise _invalid(
                f"Encountered list at unexpected size: {len(node)} at level: {level} "
                f"expected size: {shape[level]}"
            )

    def add_leaf(node: Any, level: int) -> None:
        if level != rank:
            raise _invalid(
                f"JSON Value: {debug_string(node)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {rank}"
            )
        leaves.append(_leaf(node, dtype))

    if type(value) is not list:
        add_leaf(value, 0)
        return shape, leaves
    check_list(value, 0)
    stack = [iter(value)]
    while stack:
        for child in stack[-1]:
            if type(child) is list:
                check_list(child, len(stack))
                stack.append(iter(child))
                break
            add_leaf(child, len(stack))
        else:
            stack.pop()
    return shape, leaves


class _LeafRule(NamedTuple):
    """How the leaves of one dtype become an array."""

    numpy_dtype: np.dtype
    wraps: bool  # 8/16-bit ints: read as int64, then cast, wrapping like the C++ tensor cast
    plain_types: frozenset  # the JSON leaf types the fast path takes
    int_range: tuple[int, int] | None


@functools.cache
def _leaf_rule(dtype: tf.DType) -> _LeafRule | None:
    """The rule for `dtype`, None for dtypes JSON cannot fill. Cached: a tf.DType comparison is
    a Python call of about 1 us, and this runs for every input of every request."""
    if dtype == tf.string:
        return _LeafRule(np.dtype(object), False, frozenset({str}), None)
    if dtype in (tf.float32, tf.float64):
        plain_types = frozenset({float, int})
    elif dtype == tf.bool:
        plain_types = frozenset({bool})
    elif dtype in _INT_RANGES:
        plain_types = frozenset({int})
    else:
        return None
    wraps = dtype in (tf.int8, tf.int16, tf.uint8)
    return _LeafRule(np.dtype(dtype.as_numpy_dtype), wraps, plain_types, _INT_RANGES.get(dtype))


def _leaves_to_array(leaves: list, dtype: tf.DType) -> np.ndarray:
    """Converted leaves as a flat array; 8/16-bit ints wrap like the C++ tensor cast."""
    rule = _leaf_rule(dtype)
    if rule is None:  # no leaf of such a dtype is accepted: only empty tensors get here
        return np.array(leaves, dtype=np.dtype(dtype.as_numpy_dtype))
    if rule.numpy_dtype.kind == "O":
        array = np.empty(len(leaves), dtype=object)
        array[:] = leaves
        return array
    if rule.wraps:
        return np.array(leaves, dtype=np.int64).astype(rule.numpy_dtype)
    return np.array(leaves, dtype=rule.numpy_dtype)


def _plain_leaves(leaves: list, dtype: tf.DType) -> np.ndarray | None:
    """The common case, fast: leaves all of the right JSON type. None means "convert the slow
    way", which also produces TF Serving's exact message for whatever is wrong."""
    rule = _leaf_rule(dtype)
    if rule is None or not set(map(type, leaves)) <= rule.plain_types:
        return None
    if rule.numpy_dtype.kind == "O":
        return _leaves_to_array([to_bytes(leaf) for leaf in leaves], dtype)
    if rule.int_range is not None and leaves:
        low, high = rule.int_range
        if not (low <= min(leaves) and max(leaves) <= high):
            return None
    return _leaves_to_array(leaves, dtype)


def _batch_fast(nodes: list, dtype: tf.DType) -> np.ndarray | None:
    """`nodes` as one array of shape [len(nodes)] + the dense shape of nodes[0], if every node
    has exactly that shape and only leaves of the right type; None otherwise. Level by level,
    so the work is a few C-level passes per nesting level, whatever the batch size."""
    shape = _dense_shape(nodes[0])
    if len(shape) + 1 > NUMPY_MAX_RANK:
        return None
    level = nodes
    for size in shape:
        if set(map(type, level)) != {list} or set(map(len, level)) != {size}:
            return None
        level = list(chain.from_iterable(level))
    array = _plain_leaves(level, dtype)
    return None if array is None else array.reshape([len(nodes), *shape])


class _Tensor:
    """One request tensor before it becomes a numpy array: TF Serving's TensorProto."""

    def __init__(self, shape: list[int], leaves: list | None = None, array=None) -> None:
        self.shape = shape
        self.leaves = leaves
        self.array = array


def _tensor_from_proto(name: str, tensor: _Tensor, dtype: tf.DType) -> np.ndarray:
    """Tensor::FromProto: at most 254 dimensions; the first prod(shape) values are used."""
    if tensor.array is not None:
        return tensor.array
    if len(tensor.shape) > MAX_TENSOR_RANK:
        raise _invalid(f"tensor parsing error: {name}")
    if len(tensor.shape) > NUMPY_MAX_RANK:
        raise _invalid(
            f"Input {name} has {len(tensor.shape)} dimensions; this server handles at most "
            f"{NUMPY_MAX_RANK} (TensorFlow allows {MAX_TENSOR_RANK}): reshape the input"
        )
    count = math.prod(tensor.shape)
    return _leaves_to_array(tensor.leaves[:count], dtype).reshape(tensor.shape)


def _wrap(error: ServingError, prefix: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", f"{prefix} Error: {error.code}: {error.message}")


def _dtypes(signature: meta_graph_pb2.SignatureDef) -> dict[str, tf.DType]:
    return {name: tf.dtypes.as_dtype(info.dtype) for name, info in sorted(signature.inputs.items())}


def _rows_fast(instances: list, inputs: dict[str, tf.DType]) -> dict[str, _Tensor] | None:
    names = list(inputs)
    if type(instances[0]) is dict and "b64" not in inputs:
        if not all(type(i) is dict and i.keys() == inputs.keys() for i in instances):
            return None
        arrays = {n: _batch_fast([i[n] for i in instances], inputs[n]) for n in names}
    elif len(names) == 1 and not isinstance(instances[0], dict):
        arrays = {names[0]: _batch_fast(instances, inputs[names[0]])}
    else:
        return None
    if any(array is None for array in arrays.values()):
        return None
    return {name: _Tensor(list(array.shape), array=array) for name, array in arrays.items()}


def _rows_exact(instances: list, inputs: dict[str, tf.DType]) -> dict[str, _Tensor]:
    """FillTensorMapFromInstancesList (json_tensor.cc:465-553), element by element."""
    names = list(inputs)
    if not isinstance(instances[0], dict) and len(names) > 1:
        raise _invalid(
            "instances is a plain list, but expecting list of objects as multiple input tensors "
            "required as per tensorinfo_map"
        )
    objects = _is_element_object(instances[0])
    leaves: dict[str, list] = {}
    shapes: dict[str, list[int]] = {}
    sizes: dict[str, int] = {}

    def add_instance_item(value: Any, name: str) -> None:
        if name not in inputs:
            raise _invalid(f"JSON object: does not have named input: {name}")
        shape, values = _flatten(value, inputs[name])
        if name not in sizes:
            sizes[name], shapes[name] = len(values), shape
        elif sizes[name] != len(values):
            raise _invalid(f"Expecting tensor size: {sizes[name]} but got: {len(values)}")
        elif shapes[name] != shape:
            raise _invalid(
                f"Expecting shape [{','.join(map(str, shapes[name]))}] but got: "
                f"[{','.join(map(str, shape))}]"
            )
        leaves.setdefault(name, []).extend(values)

    for index, element in enumerate(instances):
        if objects:
            if not _is_element_object(element):
                raise _invalid(f"Expecting object but got list at item {index} of input list")
            keys = set()
            for key, value in members(element):
                name = _c_string(key)
                keys.add(name)
                try:
                    add_instance_item(value, name)
                except ServingError as error:
                    prefix = f"Failed to process element: {index} key: {name} of 'instances' list."
                    raise _wrap(error, prefix) from None
            if keys != set(names):
                raise _invalid(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{debug_string(element)} keys must be equal to: {','.join(names)}"
                )
        else:
            if _is_element_object(element):
                raise _invalid(f"Expecting value/list but got object at item {index} of input list")
            try:
                add_instance_item(element, names[0])
            except ServingError as error:
                prefix = f"Failed to process element: {index} of 'instances' list."
                raise _wrap(error, prefix) from None
    return {
        name: _Tensor([len(instances), *shapes[name]], leaves=values)
        for name, values in leaves.items()
    }


def _one_tensor(value: Any, dtype: tf.DType) -> _Tensor:
    fast = _batch_fast([value], dtype)
    if fast is not None:
        return _Tensor(list(fast.shape[1:]), array=fast.reshape(fast.shape[1:]))
    shape, leaves = _flatten(value, dtype)
    return _Tensor(shape, leaves=leaves)


def _columns(value: Any, inputs: dict[str, tf.DType]) -> dict[str, _Tensor]:
    """FillTensorMapFromInputsMap (json_tensor.cc:555-595)."""
    names = list(inputs)
    if not isinstance(value, dict) or _is_b64(value):
        if len(names) > 1:
            raise _invalid(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        return {names[0]: _one_tensor(value, inputs[names[0]])}
    tensors = {}
    for name in names:
        if name not in value:
            raise _invalid(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = _one_tensor(value[name], inputs[name])
    return tensors


def _check_input_count(signature: meta_graph_pb2.SignatureDef, given: list[str]) -> None:
    """VerifyRequestInputsSize (servables/tensorflow/predict_util.cc:51-72)."""
    expected = sorted(signature.inputs)
    defaults = getattr(signature, "defaults", {})
    if len(given) > len(expected) or (len(given) < len(expected) and not defaults):
        extra = sorted(set(given) - set(expected))
        missing = sorted(set(expected) - set(given))
        raise _invalid(
            f"input size does not match signature: {len(given)}!={len(expected)} "
            f"len({{{','.join(sorted(given))}}}) != len({{{','.join(expected)}}}). "
            f"Sent extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}."
        )


def predict_inputs(
    request: dict, signature: meta_graph_pb2.SignatureDef, name: str
) -> tuple[dict[str, np.ndarray], bool]:
    """Numpy inputs for a predict call and whether the request used the row format."""
    inputs = _dtypes(signature)
    if not inputs:
        raise _invalid(f"Failed to get input map for signature: {name or 'DEFAULT'}")
    has_instances, has_inputs = "instances" in request, "inputs" in request
    if has_instances and has_inputs:
        raise _invalid(
            f"JSON Value: {debug_string(request)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if has_instances:
        instances = request["instances"]
        if not isinstance(instances, list):
            raise _invalid(
                f"JSON Value: {debug_string(request)} Expecting 'instances' to be an list/array"
            )
        if not instances:
            raise _invalid(f"JSON Value: {debug_string(request)} No values in 'instances' array")
        tensors = _rows_fast(instances, inputs) or _rows_exact(instances, inputs)
        rows = True
    elif has_inputs:
        tensors = _columns(request["inputs"], inputs)
        rows = False
    else:
        raise _invalid("Missing 'inputs' or 'instances' key")
    _check_input_count(signature, list(tensors))
    arrays = {
        alias: _tensor_from_proto(alias, tensors[alias], inputs[alias])
        for alias in inputs
        if alias in tensors
    }
    return arrays, rows


# --- tensors to JSON ------------------------------------------------------------------------


def _write_leaf(writer: PrettyWriter, value: Any, dtype: np.dtype, as_b64: bool) -> None:
    if dtype.kind == "f" and dtype.itemsize in (4, 8):
        writer.raw(format_decimal(float(value), is_float32=dtype.itemsize == 4))
    elif dtype.kind in "iu":
        writer.raw(str(int(value)))
    elif dtype.kind == "b":
        writer.raw("true" if value else "false")
    elif dtype.kind in "OSU":
        data = value if isinstance(value, bytes) else str(value).encode("utf-8")
        if as_b64:
            writer.start_object()
            writer.key("b64")
            writer.string(base64.b64encode(data))
            writer.end_object()
        else:
            writer.string(data)
    else:
        raise _invalid(f"Failed to write JSON value for tensor type: {dtype.name}")


def _write_values(writer: PrettyWriter, array: np.ndarray, as_b64: bool) -> None:
    if array.ndim == 0:
        _write_leaf(
            writer, array.item() if array.dtype.kind != "O" else array[()], array.dtype, as_b64
        )
        return
    writer.start_array()
    for item in array:
        _write_values(writer, np.asarray(item, dtype=array.dtype), as_b64)
    writer.end_array()


def _check_dtypes(outputs: Mapping[str, np.ndarray]) -> None:
    for array in outputs.values():
        if array.dtype.kind == "f" and array.dtype.itemsize not in (4, 8):
            raise _invalid(f"Failed to write JSON value for tensor type: {array.dtype.name}")


def row_response(outputs: Mapping[str, np.ndarray]) -> bytes:
    """`{"predictions": [...]}`: one entry per batch row (objects when several outputs)."""
    _check_dtypes(outputs)
    names = sorted(outputs)
    batch = None
    for name in names:
        array = outputs[name]
        if array.ndim == 0:
            raise _invalid(f"Tensor name: {name} has no shape information ")
        if batch is None:
            batch = array.shape[0]
        elif array.shape[0] != batch:
            raise _invalid(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                f"expecting: {batch}"
            )
    writer = PrettyWriter()
    writer.start_object()
    writer.key("predictions")
    writer.start_array()
    as_objects = len(names) > 1
    for row in range(batch or 0):
        if as_objects:
            writer.start_object()
        writer.single_line_arrays = True
        for name in names:
            if as_objects:
                writer.key(name)
            array = outputs[name]
            item = np.asarray(array[row], dtype=array.dtype)
            _write_values(writer, item, array.dtype.kind == "O" and name.endswith(BYTES_SUFFIX))
        writer.single_line_arrays = False
        if as_objects:
            writer.end_object()
    writer.end_array()
    writer.end_object()
    return writer.getvalue()


def columnar_response(outputs: Mapping[str, np.ndarray]) -> bytes:
    """`{"outputs": ...}`: the whole tensor, or an object of tensors when several outputs."""
    _check_dtypes(outputs)
    names = sorted(outputs)
    writer = PrettyWriter()
    writer.start_object()
    writer.key("outputs")
    if len(names) > 1:
        writer.start_object()
    for name in names:
        if len(names) > 1:
            writer.key(name)
        array = outputs[name]
        _write_values(writer, array, array.dtype.kind == "O" and name.endswith(BYTES_SUFFIX))
    if len(names) > 1:
        writer.end_object()
    writer.end_object()
    return writer.getvalue()


# --- classify and regress (FillClassifyRegressRequestFromJson, json_tensor.cc:653-806) ------

_FEATURE_KINDS = {float: "float", int: "int64", bool: "int64", str: "bytes"}


def _feature_values(name: str, values: list, feature: tf.train.Feature) -> None:
    """AddValueToFeature for each value in order, with TF Serving's first error."""
    kind = None
    for item in values:
        if isinstance(item, bool) or type(item) is int:
            if type(item) is int and item > INT64_MAX:
                if kind not in (None, "int64"):
                    raise _kind_error(name, kind)
                raise _invalid(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
            item_kind, item_value = "int64", int(item)
        elif type(item) is float:
            item_kind, item_value = "float", item
        elif isinstance(item, str):
            item_kind, item_value = "bytes", to_bytes(item)
        elif _is_b64(item):
            item_kind = "bytes"
            if kind not in (None, item_kind):
                raise _kind_error(name, kind)
            item_value = _b64decode(item["b64"])
        else:
            raise _invalid(
                f"Feature: {name} has element with unexpected JSON type: {json_type_name(item)}"
            )
        if kind not in (None, item_kind):
            raise _kind_error(name, kind)
        kind = item_kind
        getattr(feature, f"{item_kind}_list").value.append(item_value)


def _kind_error(name: str, kind: str) -> ServingError:
    return _invalid(f"Unexpected element type in feature: {name} expecting type: {kind}")


def _feature(name: str, value: Any) -> tf.train.Feature:
    values = value if isinstance(value, list) else [value]
    feature = tf.train.Feature()
    types = set(map(type, values))
    if len(types) == 1:  # homogeneous lists, the common case, in one call
        (kind_type,) = types
        kind = _FEATURE_KINDS.get(kind_type)
        if kind == "float":
            feature.float_list.value.extend(values)
            return feature
        if kind == "bytes":
            feature.bytes_list.value.extend(map(to_bytes, values))
            return feature
        if kind == "int64" and (kind_type is bool or max(values) <= INT64_MAX):
            feature.int64_list.value.extend(map(int, values))
            return feature
    _feature_values(name, values, feature)
    return feature


def _example(value: Any) -> tf.train.Example:
    """MakeExampleFromJsonObject: every member in order; a repeated name keeps the last."""
    if not isinstance(value, dict):
        raise _invalid(f"Example must be JSON object but got JSON {json_type_name(value)}")
    example = tf.train.Example()
    for key, content in members(value):
        name = _c_string(key)
        example.features.feature[name].CopyFrom(_feature(name, content))
    return example


def serialized_examples(request: dict) -> np.ndarray:
    """The `examples` (plus optional `context`) of a classify/regress request, serialized."""
    context = b""
    if "context" in request:
        context = _example(request["context"]).SerializeToString()
    if "examples" not in request:
        raise _invalid(
            f"JSON Value: {debug_string(request)} When method is classify, key 'examples' "
            "is expected and was not found"
        )
    examples = request["examples"]
    if not isinstance(examples, list):
        raise _invalid(
            f"JSON Value: {debug_string(request)} Expecting 'examples' value to be an list/array"
        )
    if not examples:
        raise _invalid(f"JSON Value: {debug_string(request)} 'examples' value is an empty array")
    serialized = np.empty(len(examples), dtype=object)
    for index, item in enumerate(examples):
        # Serialized protos concatenate as a merge: context features, then the example's own.
        serialized[index] = context + _example(item).SerializeToString()
    return serialized


def classify_response(outputs: Mapping[str, np.ndarray], batch: int) -> bytes:
    classes = outputs.get("classes")
    scores = outputs.get("scores")
    if classes is None and scores is None:
        raise _invalid("Cannot convert empty ClassificationResults to JSON")
    width = (classes if classes is not None else scores).reshape(batch, -1).shape[1]
    writer = PrettyWriter()
    writer.start_object()
    writer.key("results")
    writer.start_array()
    for row in range(batch):
        writer.single_line_arrays = True
        writer.start_array()
        for column in range(width):
            label = classes.reshape(batch, -1)[row, column] if classes is not None else b""
            score = float(scores.reshape(batch, -1)[row, column]) if scores is not None else 0.0
            writer.start_array()
            writer.string(label if isinstance(label, bytes) else str(label).encode())
            writer.raw(format_decimal(score, is_float32=True))
            writer.end_array()
        writer.end_array()
        writer.single_line_arrays = False
    writer.end_array()
    writer.end_object()
    return writer.getvalue()


def regress_response(outputs: Mapping[str, np.ndarray], batch: int) -> bytes:
    values = outputs.get("outputs")
    if values is None or values.size == 0:
        raise _invalid("Cannot convert empty RegressionResults to JSON")
    writer = PrettyWriter(single_line_arrays=True)
    writer.start_object()
    writer.key("results")
    writer.start_array()
    for value in values.reshape(batch, -1)[:, 0]:
        writer.raw(format_decimal(float(value), is_float32=True))
    writer.end_array()
    writer.end_object()
    return writer.getvalue()

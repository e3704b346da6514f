"""TF Serving's JSON <-> tensor rules (util/json_tensor.cc) for predict, classify and regress.

Requests are validated in TF Serving's order and rejected with its messages, so a client sees
the same 400 whichever server it talks to. Responses are laid out by `json_writer`.
"""

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from serving.errors import ServingError
from serving.json_writer import PrettyWriter, debug_string, format_decimal

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
BYTES_SUFFIX = "_bytes"

# TF's DataTypeString names, used in error messages.
_DTYPE_NAMES = {
    tf.float32: "float", tf.float64: "double", tf.int32: "int32", tf.uint8: "uint8",
    tf.int16: "int16", tf.int8: "int8", tf.string: "string", tf.int64: "int64", tf.bool: "bool",
    tf.uint32: "uint32", tf.uint64: "uint64", tf.float16: "half", tf.bfloat16: "bfloat16",
}  # fmt: skip
_INT_RANGES = {
    tf.int8: (-(2**31), 2**31 - 1),  # TF Serving checks only IsInt() for 8/16/32-bit types
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


# --- parsing the request body -------------------------------------------------------------

_PARSE_MESSAGES = (
    ("Expecting property name enclosed in double quotes", "Missing a name for object member."),
    ("Expecting ':' delimiter", "Missing a colon after a name of object member."),
    ("Unterminated string", "Missing a closing quotation mark in string."),
    ("Invalid \\escape", "Invalid escape character in string."),
    ("Invalid control character", "Invalid encoding in string."),
)


def _open_bracket_at(text: str, position: int) -> str | None:
    """The innermost unclosed bracket before `position`, ignoring brackets inside strings."""
    stack, in_string, escaped = [], False, False
    for char in text[:position]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else None


def parse_body(body: bytes) -> Any:
    """Parses like rapidjson with kParseStopWhenDoneFlag: NaN/Infinity allowed, trailing data ignored."""
    if not body:
        raise _invalid("JSON Parse error: The document is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _invalid(
            f"JSON Parse error: Invalid encoding in string. at offset: {error.start}"
        ) from None
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise _invalid(f"JSON Parse error: The document is empty. at offset: {len(body)}")
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as error:
        message = "Invalid value."
        for python_text, rapidjson_text in _PARSE_MESSAGES:
            if error.msg.startswith(python_text):
                message = rapidjson_text
        if error.msg.startswith("Expecting ',' delimiter"):
            inside = _open_bracket_at(text, error.pos)
            message = (
                "Missing a comma or ']' after an array element."
                if inside == "["
                else "Missing a comma or '}' after an object member."
            )
        offset = len(text[: error.pos].encode("utf-8"))
        raise _invalid(f"JSON Parse error: {message} at offset: {offset}") from None
    except RecursionError:
        raise _invalid("JSON Parse error: the document nests too deeply") from None
    return value


def request_object(body: bytes) -> dict:
    """The parsed body, which must be a JSON object."""
    value = parse_body(body)
    if not isinstance(value, dict):
        raise _invalid(f"JSON Value: {debug_string(value)} Is not object")
    return value


def signature_name(request: dict) -> str:
    name = request.get("signature_name", "")
    if not isinstance(name, str):
        raise _invalid(
            f"JSON Value: {debug_string(request)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


# --- JSON values to tensors -----------------------------------------------------------------


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _scalar(value: Any, dtype: tf.DType) -> Any:
    """One JSON leaf as a Python value of `dtype`; raises with TF Serving's type message."""

    def wrong_type() -> ServingError:
        return _invalid(
            f"JSON Value: {debug_string(value)} Type: {json_type_name(value)} "
            f"is not of expected type: {dtype_name(dtype)}"
        )

    if dtype == tf.string:
        if isinstance(value, str):
            return value.encode("utf-8")
        if _is_b64(value):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise _invalid("Unable to base64 decode") from None
        raise wrong_type()
    if isinstance(value, bool | dict | list) or value is None or isinstance(value, str):
        if dtype == tf.bool and isinstance(value, bool):
            return value
        raise wrong_type()
    if dtype in (tf.float32, tf.float64):
        return float(value)
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if not isinstance(value, int) or not low <= value <= high:
            raise wrong_type()
        return value
    if dtype == tf.bool:
        raise wrong_type()
    raise ServingError.unimplemented(
        f"Conversion of JSON Value: {debug_string(value)} to type: {dtype_name(dtype)}"
    )


def _shape_of(value: Any) -> list[int]:
    """Dense shape from the first element at every nesting level (GetDenseTensorShape)."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _flatten(value: Any, shape: list[int], dtype: tf.DType, level: int, out: list) -> None:
    if isinstance(value, list):
        if level >= len(shape):
            raise _invalid(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
        if len(value) != shape[level]:
            raise _invalid(
                f"Encountered list at unexpected size: {len(value)} at level: {level} "
                f"expected size: {shape[level]}"
            )
        for item in value:
            _flatten(item, shape, dtype, level + 1, out)
        return
    if level != len(shape):
        raise _invalid(
            f"JSON Value: {debug_string(value)} found at incorrect level: {level + 1} "
            f"in the JSON DOM. Expected at level: {len(shape)}"
        )
    out.append(_scalar(value, dtype))


def to_array(value: Any, dtype: tf.DType) -> np.ndarray:
    """A JSON value (scalar or nested lists) as a dense numpy array of `dtype`."""
    shape = _shape_of(value)
    flat: list = []
    _flatten(value, shape, dtype, 0, flat)
    if dtype == tf.string:
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return array.reshape(shape)
    return np.array(flat, dtype=dtype.as_numpy_dtype).reshape(shape)


def _wrap(error: ServingError, prefix: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", f"{prefix} Error: {error.code}: {error.message}")


def _dtypes(signature: meta_graph_pb2.SignatureDef) -> dict[str, tf.DType]:
    return {name: tf.dtypes.as_dtype(info.dtype) for name, info in sorted(signature.inputs.items())}


def _plain_column(values: list, dtype: tf.DType) -> np.ndarray | None:
    """The common case, fast: one scalar of the right JSON type per row. None means "validate
    the slow way", which also produces TF Serving's exact message for whatever is wrong."""
    if dtype in (tf.float32, tf.float64):
        if all(type(v) is float or type(v) is int for v in values):
            return np.array(values, dtype=dtype.as_numpy_dtype)
    elif dtype == tf.string:
        if all(type(v) is str for v in values):
            column = np.empty(len(values), dtype=object)
            column[:] = [v.encode("utf-8") for v in values]
            return column
    elif dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if all(type(v) is int and low <= v <= high for v in values):
            return np.array(values, dtype=dtype.as_numpy_dtype)
    return None


def _rows_to_arrays(instances: list, inputs: dict[str, tf.DType]) -> dict[str, np.ndarray]:
    names = list(inputs)
    if all(type(i) is dict and i.keys() == inputs.keys() for i in instances):
        fast = {name: _plain_column([i[name] for i in instances], inputs[name]) for name in names}
        if all(column is not None for column in fast.values()):
            return fast
    first_named = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if not first_named and len(names) > 1:
        raise _invalid(
            "instances is a plain list, but expecting list of objects as multiple input tensors "
            "required as per tensorinfo_map"
        )
    columns: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for index, instance in enumerate(instances):
        is_named = isinstance(instance, dict) and not _is_b64(instance)
        if first_named and not is_named:
            raise _invalid(f"Expecting object but got list at item {index} of input list")
        if not first_named and is_named:
            raise _invalid(f"Expecting value/list but got object at item {index} of input list")
        if is_named:
            for key in instance:
                if key not in inputs:
                    raise _invalid(
                        f"Failed to process element: {index} key: {key} of 'instances' list. "
                        f"Error: INVALID_ARGUMENT: JSON object: does not have named input: {key}"
                    )
            if len(instance) != len(names):
                raise _invalid(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{debug_string(instance)} keys must be equal to: {','.join(sorted(names))}"
                )
            items = [(name, instance[name], f"{index} key: {name}") for name in names]
        else:
            items = [(names[0], instance, str(index))]
        for name, value, where in items:
            prefix = f"Failed to process element: {where} of 'instances' list."
            try:
                array = to_array(value, inputs[name])
            except ServingError as error:
                raise _wrap(error, prefix) from None
            if columns[name]:
                expected = columns[name][0]
                if array.size != expected.size:
                    raise _invalid(
                        f"{prefix} Error: INVALID_ARGUMENT: Expecting tensor size: "
                        f"{expected.size} but got: {array.size}"
                    )
                if array.shape != expected.shape:
                    raise _invalid(
                        f"{prefix} Error: INVALID_ARGUMENT: Expecting shape "
                        f"[{','.join(map(str, expected.shape))}] but got: "
                        f"[{','.join(map(str, array.shape))}]"
                    )
            columns[name].append(array)
    return {name: np.stack(arrays) for name, arrays in columns.items()}


def _columns_to_arrays(value: Any, inputs: dict[str, tf.DType]) -> dict[str, np.ndarray]:
    names = list(inputs)
    if not isinstance(value, dict) or _is_b64(value):
        if len(names) > 1:
            raise _invalid(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        return {names[0]: to_array(value, inputs[names[0]])}
    arrays = {}
    for name in names:
        if name not in value:
            raise _invalid(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = to_array(value[name], inputs[name])
    return arrays


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
        return _rows_to_arrays(instances, inputs), True
    if has_inputs:
        return _columns_to_arrays(request["inputs"], inputs), False
    raise _invalid("Missing 'inputs' or 'instances' key")


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


# --- classify and regress -------------------------------------------------------------------


def _feature(name: str, value: Any) -> tf.train.Feature:
    values = value if isinstance(value, list) else [value]
    feature = tf.train.Feature()
    kind = None
    for item in values:
        if isinstance(item, bool) or (isinstance(item, int) and not isinstance(item, bool)):
            if isinstance(item, int) and item > INT64_MAX:
                raise _invalid(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
            item_kind, item_value = "int64", int(item)
        elif isinstance(item, float):
            item_kind, item_value = "float", item
        elif isinstance(item, str):
            item_kind, item_value = "bytes", item.encode("utf-8")
        elif _is_b64(item):
            try:
                item_kind, item_value = "bytes", base64.b64decode(item["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise _invalid("Unable to base64 decode") from None
        else:
            raise _invalid(
                f"Feature: {name} has element with unexpected JSON type: {json_type_name(item)}"
            )
        if kind is None:
            kind = item_kind
        elif kind != item_kind:
            raise _invalid(f"Unexpected element type in feature: {name} expecting type: {kind}")
        getattr(feature, f"{item_kind}_list").value.append(item_value)
    return feature


def _example(features: dict) -> tf.train.Example:
    example = tf.train.Example()
    for name, value in features.items():
        example.features.feature[name].CopyFrom(_feature(name, value))
    return example


def serialized_examples(request: dict) -> np.ndarray:
    """The `examples` (plus optional `context`) of a classify/regress request, serialized."""
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
    context = b""
    if isinstance(request.get("context"), dict):
        context = _example(request["context"]).SerializeToString()
    serialized = np.empty(len(examples), dtype=object)
    for index, item in enumerate(examples):
        if not isinstance(item, dict):
            raise _invalid(f"Example must be JSON object but got JSON {json_type_name(item)}")
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

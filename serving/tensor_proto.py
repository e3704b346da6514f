"""TensorProto <-> numpy as TF Serving's gRPC API converts them, with a bound on request size.

Requests are read the way Tensor::FromProto reads them: `tensor_content` must hold exactly the
shape's bytes; typed `*_val` fields may hold fewer values than the shape (the last one repeats,
none means zeros) but never more. A request that declares a huge shape with no values would make
TF Serving allocate it; here it is refused past `max_elements`. Responses are written as
Tensor::AsProtoField writes them (TF Serving's default): typed `*_val` fields, no tensor_content.
"""

import math

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from serving.errors import ServingError

# 4 Mi values: what a 16 MiB message holds as float32. A request may declare a shape and send
# one value (the rest repeat it), so this, not the message size, bounds what one call allocates.
DEFAULT_MAX_ELEMENTS = 1 << 22

# The TensorProto field each dtype's values travel in (tensor.proto).
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_BFLOAT16: "half_val",
}


# What each dtype's values become; half and bfloat16 go through tf.make_ndarray.
_NUMPY_DTYPES = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_UINT16: np.uint16,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_UINT32: np.uint32,
    types_pb2.DT_UINT64: np.uint64,
    types_pb2.DT_BOOL: np.bool_,
    types_pb2.DT_STRING: object,
}
_ENUM_BY_NUMPY = {np.dtype(numpy_dtype): enum for enum, numpy_dtype in _NUMPY_DTYPES.items()}


def _parsing_error(alias: str) -> ServingError:
    """What TF Serving answers when Tensor::FromProto rejects a request tensor."""
    return ServingError.invalid_argument(f"tensor parsing error: {alias}")


def to_array(
    proto: tensor_pb2.TensorProto, alias: str, max_elements: int = DEFAULT_MAX_ELEMENTS
) -> np.ndarray:
    """The request tensor `alias` as a numpy array; INVALID_ARGUMENT when it is malformed."""
    field = _VALUE_FIELDS.get(proto.dtype)
    shape = [dim.size for dim in proto.tensor_shape.dim]
    if field is None or proto.tensor_shape.unknown_rank or any(size < 0 for size in shape):
        raise _parsing_error(alias)
    elements = math.prod(shape)
    if elements > max_elements:
        # TF Serving would allocate whatever the shape says; this server refuses first.
        raise ServingError.invalid_argument(
            f"tensor parsing error: {alias} (shape {shape} holds {elements} values, "
            f"more than this server's limit of {max_elements})"
        )
    if proto.tensor_content:
        itemsize = tf.dtypes.as_dtype(proto.dtype).size
        if proto.dtype == types_pb2.DT_STRING or len(proto.tensor_content) != elements * itemsize:
            raise _parsing_error(alias)
    elif len(getattr(proto, field)) > elements:
        raise _parsing_error(alias)
    numpy_dtype = _NUMPY_DTYPES.get(proto.dtype)
    if numpy_dtype is None:  # half and bfloat16: rare enough for TensorFlow's own converter
        try:
            return tf.make_ndarray(proto)
        except (TypeError, ValueError):
            raise _parsing_error(alias) from None
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype=numpy_dtype).reshape(shape)
    values = getattr(proto, field)
    if proto.dtype == types_pb2.DT_STRING:
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
    else:
        array = np.fromiter(values, dtype=numpy_dtype, count=len(values))
    if len(array) < elements:  # Tensor::FromProto: the last value repeats; none means zeros
        fill = array[-1] if len(array) else (b"" if numpy_dtype is object else 0)
        array = np.concatenate([array, np.full(elements - len(array), fill, dtype=numpy_dtype)])
    return array.reshape(shape)


def to_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A response tensor in typed value fields, as Tensor::AsProtoField writes it."""
    if array.dtype == object or array.dtype.kind in "SU":
        dtype = types_pb2.DT_STRING
    else:
        dtype = _ENUM_BY_NUMPY.get(array.dtype) or tf.dtypes.as_dtype(array.dtype).as_datatype_enum
    proto = tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in array.shape]
        ),
    )
    field = _VALUE_FIELDS.get(dtype)
    if field is None:
        raise ServingError(
            "INTERNAL", f"cannot serialize a {types_pb2.DataType.Name(dtype)} output"
        )
    flat = array.reshape(-1)
    if dtype == types_pb2.DT_STRING:
        values = [value if isinstance(value, bytes) else str(value).encode() for value in flat]
    elif field == "half_val":
        values = flat.view(np.uint16).tolist()
    else:
        values = flat.tolist()
    getattr(proto, field).extend(values)
    return proto

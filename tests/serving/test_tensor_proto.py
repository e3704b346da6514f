"""Request tensors read as Tensor::FromProto reads them; responses written as AsProtoField."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from serving.errors import ServingError
from serving.tensor_proto import to_array, to_proto


def proto(dtype, shape, **values) -> tensor_pb2.TensorProto:
    message = tensor_pb2.TensorProto(dtype=dtype)
    for size in shape:
        message.tensor_shape.dim.add(size=size)
    for field, items in values.items():
        if field == "tensor_content":
            message.tensor_content = items
        else:
            getattr(message, field).extend(items)
    return message


@pytest.mark.parametrize(
    "value",
    [
        np.array([[1.5, -2.0], [3.0, 4.0]], dtype=np.float32),
        np.array([1, 2, 3], dtype=np.int64),
        np.array([[True], [False]]),
        np.array([b"a", b"", b"\xff"], dtype=object),
        np.array([7], dtype=np.int32),
        np.array([1.25], dtype=np.float16),
    ],
)
def test_what_tensorflow_writes_reads_back_exactly(value):
    array = to_array(tf.make_tensor_proto(value), "x")
    assert array.dtype == value.dtype and array.shape == value.shape
    assert array.tolist() == value.tolist()
    # And our responses read back with TensorFlow's own converter.
    assert tf.make_ndarray(to_proto(value)).tolist() == value.tolist()


def test_short_value_lists_repeat_the_last_value_and_none_means_zeros():
    assert to_array(proto(types_pb2.DT_FLOAT, [2, 2], float_val=[1, 2]), "x").tolist() == [
        [1, 2],
        [2, 2],
    ]
    assert to_array(proto(types_pb2.DT_INT64, [3]), "x").tolist() == [0, 0, 0]
    assert to_array(proto(types_pb2.DT_STRING, [2], string_val=[b"s"]), "x").tolist() == [
        b"s",
        b"s",
    ]


@pytest.mark.parametrize(
    "bad",
    [
        proto(types_pb2.DT_FLOAT, [2], float_val=[1, 2, 3]),  # more values than the shape
        proto(types_pb2.DT_FLOAT, [2], tensor_content=b"\x00" * 7),  # wrong byte count
        proto(types_pb2.DT_FLOAT, [-1]),  # negative dimension
        proto(types_pb2.DT_RESOURCE, [1]),  # not a dtype a request can carry
    ],
)
def test_malformed_tensors_are_tf_servings_parsing_error(bad):
    with pytest.raises(ServingError) as raised:
        to_array(bad, "fare")
    assert (raised.value.code, raised.value.message) == (
        "INVALID_ARGUMENT",
        "tensor parsing error: fare",
    )


def test_a_huge_declared_shape_is_refused_before_allocation():
    with pytest.raises(ServingError, match="more than this server's limit of 1000"):
        to_array(proto(types_pb2.DT_FLOAT, [1001]), "x", max_elements=1000)

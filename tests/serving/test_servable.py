"""Servable.run: inputs become tensors of the signature's dtypes, and a call keeps no memory."""

import gc
import tracemalloc

import numpy as np
import pytest

from serving.errors import ServingError
from serving.servable import Servable


@pytest.fixture(scope="module")
def tiny(model_root):
    return Servable(str(model_root / "tiny" / "1"))


def multi_inputs() -> dict[str, np.ndarray]:
    """The 'multi' signature's inputs (float32 a, string b, int64 c) in other numpy dtypes."""
    strings = np.empty(2, dtype=object)
    strings[:] = [b"ab", "\u00e9"]
    return {
        "a": np.array([1.5, 2.0], dtype=np.float64),
        "b": strings,
        "c": np.array([1, 2], dtype=np.int32),
    }


def test_inputs_are_cast_to_the_signature_dtypes(tiny):
    outputs = tiny.run("multi", multi_inputs())

    assert outputs["doubled"].dtype == np.float32
    assert outputs["doubled"].tolist() == [3.0, 4.0]
    assert outputs["echo"].tolist() == [b"ab", "\u00e9".encode()]
    assert outputs["length"].tolist() == [2, 2]
    assert outputs["plus_one"].dtype == np.int64
    assert outputs["plus_one"].tolist() == [2, 3]


@pytest.mark.parametrize(
    ("name", "value", "dtype"),
    [("b", np.array([1.0, 2.0]), "string"), ("a", np.array(["x", "y"]), "float32")],
)
def test_an_input_of_the_wrong_kind_is_named_in_a_400(tiny, name, value, dtype):
    inputs = {**multi_inputs(), name: value}

    with pytest.raises(
        ServingError, match=f"^Input {name} cannot be converted to {dtype}: "
    ) as error:
        tiny.run("multi", inputs)

    assert error.value.code == "INVALID_ARGUMENT"


def test_a_call_keeps_no_memory(tiny):
    # TF 2.16 on CPython 3.11 leaks ~340 bytes per tf.convert_to_tensor (servable._input_tensors):
    # about 1,000 bytes a call here, 4.7 KB a predict on the taxi model.
    inputs = multi_inputs()
    calls = 2000
    for _ in range(100):
        tiny.run("multi", inputs)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(calls):
            tiny.run("multi", inputs)
        gc.collect()  # garbage awaiting the cycle collector is not kept memory
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (after - before) / calls < 50, f"{(after - before) / calls:.0f} bytes kept per call"

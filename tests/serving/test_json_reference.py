"""JSON parsing, error quoting and limits checked against TF Serving 2.16.1 and rapidjson 1.1.0.

Expected values come from the reference, not from this server: TF Serving 2.16.1's
util/json_tensor.cc (ParseJson at :419-448 passes only kParseNanAndInfFlag; JsonValueToString
at :169-183 writes with a default PrettyWriter) and rapidjson 1.1.0 (the version 2.16.1 pins in
tensorflow_serving/workspace.bzl), whose reader.h/dtoa.h behaviour below was confirmed by
running rapidjson 1.1.0 itself on each input. File:line references are to those releases.
"""

import gzip
import json
import math
import struct

import pytest
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from serving import json_parse, json_tensor
from serving.errors import ServingError
from serving.json_writer import debug_string, rapidjson_double

PREDICT = "/v1/models/tiny:predict"


def _bits(value: float) -> str:
    return f"{struct.unpack('<Q', struct.pack('<d', value))[0]:016x}"


def _parse_error(body: bytes) -> str:
    with pytest.raises(ServingError) as caught:
        json_parse.parse_body(body)
    assert caught.value.code == "INVALID_ARGUMENT"
    return caught.value.message


# --- 1. number literals: reader.h ParseNumber (1.1.0) ----------------------------------------


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        # kParseNanAndInfFlag accepts NaN, Inf, Infinity with an optional minus (reader.h:1187-1200).
        (b"NaN", "7ff8000000000000"),
        (b"-NaN", "7ff8000000000000"),
        (b"Inf", "7ff0000000000000"),
        (b"-Inf", "fff0000000000000"),
        (b"Infinity", "7ff0000000000000"),
        (b"-Infinity", "fff0000000000000"),
        # The Consume() chains keep what they matched: "N" then "Inf" is infinity, and a fraction
        # after NaN replaces it (reader.h:1189-1192, 1243-1271).
        (b"NInf", "7ff0000000000000"),
        (b"NaN.5", "3fe0000000000000"),
        # Not a parse error: 10 * 1e308 overflows to infinity in StrtodNormalPrecision.
        (b"10e308", "7ff0000000000000"),
        # Integers past uint64/int64 become doubles (reader.h:1206-1238).
        (b"18446744073709551616", "43f0000000000000"),
        (b"-9223372036854775809", "c3e0000000000000"),
        # No kParseFullPrecisionFlag: rapidjson's fast conversion, one ulp below float().
        (b"0.3982597919074833788", "3fd97d16a3637b65"),
        (b"4.04925899139441177e-6", "3ed0fbdbd6131500"),
    ],
)
def test_number_literals_parse_to_rapidjsons_double(literal, expected):
    (value,) = json_parse.parse_body(b"[" + literal + b"]")
    assert type(value) is float and _bits(value) == expected


def test_integer_literals_keep_rapidjsons_integer_ranges():
    body = b"[18446744073709551615, -9223372036854775808, 4294967295, -2147483648]"
    assert json_parse.parse_body(body) == [2**64 - 1, -(2**63), 2**32 - 1, -(2**31)]
    assert all(type(value) is int for value in json_parse.parse_body(body))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[nan]", "Invalid value. at offset: 2"),  # 'n' starts null (reader.h:705-715)
        (b"[inf]", "Invalid value. at offset: 1"),
        (b"[-nan]", "Invalid value. at offset: 2"),
        (b"[NaX]", "Invalid value. at offset: 3"),
        (b"[Infin]", "Invalid value. at offset: 6"),
        (b"[Infinity1]", "Missing a comma or ']' after an array element. at offset: 9"),
        # Too big for a double: reported at the start of the number (reader.h:1235, 1318).
        (b'{"instances": [1e400]}', "Number too big to be stored in double. at offset: 15"),
        (b'{"instances": [1e309]}', "Number too big to be stored in double. at offset: 15"),
        (
            b'{"instances": [1, ' + b"9" * 5000 + b"]}",
            "Number too big to be stored in double. at offset: 18",
        ),
        # Control characters in strings are an invalid escape, not an encoding error
        # (reader.h:891-895); invalid UTF-8 is copied unchecked (encodings.h:689-696).
        (b'{"a":"x\x01"}', "Invalid escape character in string. at offset: 7"),
        # The UTF-8 BOM is skipped but counted in offsets (encodedstream.h EncodedInputStream
        # <UTF8<>, MemoryStream> specialization).
        (b'\xef\xbb\xbf{"a" 1}', "Missing a colon after a name of object member. at offset: 8"),
    ],
)
def test_rejected_literals_get_rapidjsons_message_and_offset(body, message):
    assert _parse_error(body) == f"JSON Parse error: {message}"


def test_huge_integer_is_a_400_over_http_not_a_500(http):
    status, payload = http.json("POST", PREDICT, '{"instances": [[1, ' + "7" * 5000 + "]]}")
    assert status == 400
    assert payload == {
        "error": "JSON Parse error: Number too big to be stored in double. at offset: 19"
    }


# --- 2. trailing data and quoting request JSON back ------------------------------------------


def test_data_after_the_document_is_an_error_without_stop_when_done(http):
    # No kParseStopWhenDoneFlag in 2.16.1 (it came with the iterative parser in 2.18).
    status, payload = http.json("POST", PREDICT, '{"instances": [[1, 1]]} x')
    assert (status, payload["error"]) == (
        400,
        "JSON Parse error: The document root must not be followed by other values. at offset: 24",
    )
    assert _parse_error(b'{"a":1}{"b":2}') == (
        "JSON Parse error: The document root must not be followed by other values. at offset: 7"
    )


def test_a_nul_byte_ends_the_document(http):
    # MemoryStream::Peek() reads NUL as the end of the stream (memorystream.h, reader.h:508).
    status, payload = http.json("POST", PREDICT, b'{"instances": [[1, 1]]}\x00junk')
    assert (status, payload) == (200, {"predictions": [6.0]})


def test_leaf_values_are_quoted_with_writedecimal_as_float():
    # JsonValueToString: IsFloat() -> WriteDecimal(GetFloat()) (json_tensor.cc:175-176);
    # 1.2345678 as float is 1.23456776, which "%.6g" does not round-trip.
    assert debug_string(1.2345678) == "1.23456776"
    assert debug_string(1e300) == "1e+300"  # outside float range: WriteDecimal<double>
    assert debug_string(float("nan")) == "NaN"


def test_type_error_quotes_the_float_value(http):
    body = '{"signature_name": "multi", "instances": [{"a": 1, "b": "x", "c": 1.2345678}]}'
    status, payload = http.json("POST", PREDICT, body)
    assert status == 400
    assert payload["error"] == (
        "Failed to process element: 0 key: c of 'instances' list. Error: INVALID_ARGUMENT: "
        "JSON Value: 1.23456776 Type: Number is not of expected type: int64"
    )


def test_objects_are_quoted_multi_line_with_repeated_keys_and_grisu_numbers(http):
    # A repeated key is processed twice and printed twice (rapidjson keeps both members);
    # doubles inside go through Writer::Double (dtoa.h Prettify: 1e20 -> 100000000000000000000.0).
    body = '{"signature_name": "multi", "instances": [{"a": 1e20, "a": 0.00001, "b": "x"}]}'
    status, payload = http.json("POST", PREDICT, body)
    assert status == 400
    assert payload["error"] == (
        "Failed to process element: 0 of 'instances' list. JSON object: {\n"
        '    "a": 100000000000000000000.0,\n    "a": 0.00001,\n    "b": "x"\n'
        "} keys must be equal to: a,b,c"
    )


def test_nan_inside_a_quoted_object_stops_the_writer():
    # PrettyWriter::Double writes the separator, then WriteDouble refuses NaN (writer.h:317-320)
    # and Accept() stops.
    value = json_parse.parse_body(b'{"a": NaN, "b": "x"}')
    assert debug_string(value) == '{\n    "a": '


def test_quoted_strings_keep_their_utf8_bytes(http):
    status, _, data = http.call("POST", PREDICT, '[1, "é"]'.encode())
    assert status == 400
    assert json.loads(data) == {"error": 'JSON Value: [\n    1,\n    "é"\n] Is not object'}


def test_invalid_utf8_in_strings_passes_through_to_the_tensor(http):
    body = b'{"signature_name": "multi", "instances": [{"a": 1, "b": "\xff\xfe", "c": 1}]}'
    status, _, data = http.call("POST", PREDICT, body)
    assert status == 200
    assert b'"echo": "\xff\xfe"' in data and b'"length": 2' in data


def test_objects_given_for_strings_must_be_base64(http):
    # FillTensorProto -> JsonDecodeBase64Object -> Base64FormatError (json_tensor.cc:215-218).
    status, payload = http.json(
        "POST", PREDICT, '{"signature_name": "binary", "inputs": [{"b64": 1}]}'
    )
    assert (status, payload["error"]) == (
        400,
        'JSON Value: {\n    "b64": 1\n} not formatted correctly for base64 data',
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e20, "100000000000000000000.0"),
        (1e21, "1e21"),
        (1e-7, "1e-7"),
        (0.00001, "0.00001"),
        (-0.0, "-0.0"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e308"),
        (12345678901234567890.0, "12345678901234568000.0"),
    ],
)
def test_rapidjson_double_matches_writer_double(value, text):
    assert rapidjson_double(value) == text


# --- 3. nesting ------------------------------------------------------------------------------


def test_deep_nesting_in_an_ignored_key_is_accepted(http):
    # 2.16.1 parses recursively and takes thousands of levels; the test server's body limit
    # (64 KiB) caps the depth that fits here.
    body = '{"instances": [[1, 1]], "nested": ' + "[" * 20_000 + "]" * 20_000 + "}"
    assert http.json("POST", PREDICT, body) == (200, {"predictions": [6.0]})
    body = '{"instances": [[1, 1]], "nested": ' + '{"a":' * 10_000 + "1" + "}" * 10_000 + "}"
    assert http.json("POST", PREDICT, body) == (200, {"predictions": [6.0]})


def test_over_deep_instances_fail_like_tensor_from_proto(http):
    # More than TensorShape::MaxDimensions() (254) fails Tensor::FromProto, reported by
    # tensorflow/cc/saved_model/util.cc GetInputValues as "tensor parsing error: <alias>".
    body = '{"instances": [' + "[" * 300 + "1.0" + "]" * 300 + "]}"
    assert http.json("POST", PREDICT, body) == (400, {"error": "tensor parsing error: x"})
    body = '{"inputs": ' + "[" * 255 + "1.0" + "]" * 255 + "}"
    assert http.json("POST", PREDICT, body) == (400, {"error": "tensor parsing error: x"})


def test_ranks_numpy_cannot_hold_get_a_400_naming_the_input(http):
    body = '{"instances": [' + "[" * 40 + "1.0" + "]" * 40 + "]}"
    status, payload = http.json("POST", PREDICT, body)
    assert status == 400 and payload["error"].startswith("Input x has 41 dimensions")


def test_nesting_past_the_depth_limit_is_resource_exhausted():
    body = b'{"nested": ' + b"[" * 3000 + b"1" + b"]" * 3000 + b"}"
    assert json_parse.parse_body(body, max_depth=5000)["nested"] is not None
    with pytest.raises(ServingError) as caught:
        json_parse.parse_body(body, max_depth=2000)
    assert caught.value.code == "RESOURCE_EXHAUSTED" and caught.value.http_status == 429


# --- 4. bounded work -------------------------------------------------------------------------


def _signature() -> meta_graph_pb2.SignatureDef:
    signature = meta_graph_pb2.SignatureDef()
    signature.inputs["x"].dtype = types_pb2.DT_FLOAT
    return signature


def test_too_many_values_is_rejected_before_parsing():
    body = b'{"instances": [' + b",".join([b"[]"] * 1000) + b"]}"
    with pytest.raises(ServingError) as caught:
        json_parse.request_object(body, max_values=500)
    assert caught.value.code == "RESOURCE_EXHAUSTED" and caught.value.http_status == 429
    # Commas and brackets inside strings do not count.
    strings = b'{"instances": ["' + b"[,{" * 1000 + b'"]}'
    assert json_parse.request_object(strings, max_values=10)["instances"][0].startswith("[,{")


def test_the_inflated_empty_arrays_request_fails_fast():
    # The report: a small gzip body inflating to 16 MiB of `[[],[],...]` instances.
    body = b'{"instances": [' + b",".join([b"[]"] * 5_592_000) + b"]}"
    assert len(gzip.compress(body)) < 20_000
    with pytest.raises(ServingError) as caught:
        json_parse.request_object(body)
    assert caught.value.code == "RESOURCE_EXHAUSTED"


def test_many_empty_instances_under_the_limit_convert_in_one_array():
    body = b'{"instances": [' + b",".join([b"[]"] * 50_000) + b"]}"
    request = json_parse.request_object(body)
    inputs, rows = json_tensor.predict_inputs(request, _signature(), "")
    assert rows and inputs["x"].shape == (50_000, 0)


def test_fast_and_exact_row_paths_agree_on_values():
    rows = [[0.5, 1.25], [math.pi, -2.0]]
    fast = json_tensor.predict_inputs({"instances": rows}, _signature(), "")[0]["x"]
    exact = json_tensor._rows_exact(rows, {"x": json_tensor.tf.float32})["x"]
    assert (
        fast.tolist() == json_tensor._tensor_from_proto("x", exact, json_tensor.tf.float32).tolist()
    )


# --- classify / regress ----------------------------------------------------------------------


def test_context_must_be_an_object_and_is_read_before_examples():
    # FillClassifyRegressRequestFromJson reads "context" first (json_tensor.cc:774-780).
    with pytest.raises(ServingError) as caught:
        json_tensor.serialized_examples({"context": 5})
    assert caught.value.message == "Example must be JSON object but got JSON Number"

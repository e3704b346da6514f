"""TF Serving's REST API against tiny SavedModels: every request format and every error case."""

import base64
import json

import pytest

PREDICT = "/v1/models/tiny:predict"


def test_status_lists_every_version_newest_first_in_protobuf_layout(http):
    status, headers, body = http.call("GET", "/v1/models/tiny")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body.decode() == (
        '{\n "model_version_status": [\n  {\n   "version": "2",\n   "state": "AVAILABLE",\n'
        '   "status": {\n    "error_code": "OK",\n    "error_message": ""\n   }\n  },\n  {\n'
        '   "version": "1",\n   "state": "AVAILABLE",\n   "status": {\n    "error_code": "OK",\n'
        '    "error_message": ""\n   }\n  }\n ]\n}\n'
    )


def test_status_of_one_version_and_unknown_ones(http):
    assert (
        http.json("GET", "/v1/models/tiny/versions/1")[1]["model_version_status"][0]["version"]
        == "1"
    )
    assert http.json("GET", "/v1/models/tiny/versions/7") == (
        404,
        {"error": "Could not find version 7 of model tiny"},
    )
    assert http.json("GET", "/v1/models/nope") == (
        404,
        {"error": "Could not find any versions of model nope"},
    )


def test_row_format_predict_bytes(http):
    status, _, body = http.call("POST", PREDICT, '{"instances": [[1, 2], [3, 4.5]]}')
    assert status == 200
    assert body == b'{\n    "predictions": [9.0, 22.5\n    ]\n}'  # latest version: scale 3


def test_columnar_format_predict_bytes(http):
    status, _, body = http.call("POST", PREDICT, '{"inputs": [[1, 2], [3, 4.5]]}')
    assert status == 200
    assert body == b'{\n    "outputs": [\n        9.0,\n        22.5\n    ]\n}'


def test_versions_and_labels_route_to_the_right_model(http):
    body = {"instances": [[1, 1]]}
    assert http.json("POST", "/v1/models/tiny/versions/1:predict", body) == (
        200,
        {"predictions": [4.0]},
    )
    assert http.json("POST", "/v1/models/tiny/labels/stable:predict", body) == (
        200,
        {"predictions": [4.0]},
    )
    assert http.json("POST", "/v1/models/tiny/labels/canary:predict", body) == (
        200,
        {"predictions": [6.0]},
    )
    assert http.json("POST", "/v1/models/tiny/labels/beta:predict", body) == (
        400,
        {"error": "Unrecognized servable version label: beta"},
    )
    assert http.json("POST", "/v1/models/tiny/versions/5:predict", body) == (
        404,
        {"error": "Servable not found for request: Specific(tiny, 5)"},
    )
    assert http.json("POST", "/v1/models/other:predict", body) == (
        404,
        {"error": "Servable not found for request: Latest(other)"},
    )


def test_multiple_inputs_and_outputs_in_rows_with_b64(http):
    request = {
        "signature_name": "multi",
        "instances": [{"a": 1, "b": "xy", "c": 3}, {"a": 2.5, "b": {"b64": "aGk="}, "c": -4}],
    }
    status, _, body = http.call("POST", PREDICT, json.dumps(request))
    assert status == 200
    assert body.decode() == (
        '{\n    "predictions": [\n        {\n            "doubled": 2.0,\n            "echo": "xy",\n'
        '            "length": 2,\n            "plus_one": 4\n        },\n        {\n'
        '            "doubled": 5.0,\n            "echo": "hi",\n            "length": 2,\n'
        '            "plus_one": -3\n        }\n    ]\n}'
    )


def test_columnar_multiple_inputs_ignore_extra_keys(http):
    request = {"signature_name": "multi", "inputs": {"a": [1.0], "b": ["q"], "c": [1], "zz": 5}}
    status, payload = http.json("POST", PREDICT, request)
    assert status == 200
    assert payload == {"outputs": {"doubled": [2.0], "echo": ["q"], "length": [1], "plus_one": [2]}}


def test_bytes_outputs_come_back_as_b64(http):
    image = bytes([0, 1, 2, 250])
    request = {"signature_name": "binary", "instances": [{"b64": base64.b64encode(image).decode()}]}
    status, payload = http.json("POST", PREDICT, request)
    assert status == 200
    (row,) = payload["predictions"]
    assert row["size"] == 4
    assert base64.b64decode(row["reversed_bytes"]["b64"]) == image[::-1]


def test_classify_and_regress_on_example_signatures(http):
    request = {"examples": [{"x": 0.0}, {"x": 2.0}]}
    status, _, body = http.call("POST", "/v1/models/classifier:classify", json.dumps(request))
    assert status == 200
    assert body.decode() == (
        '{\n    "results": [[["negative", 0.5], ["positive", 0.5]], '
        '[["negative", 0.119202912], ["positive", 0.880797088]]\n    ]\n}'
    )
    request = {"signature_name": "regress_x", "context": {"x": 1.5}, "examples": [{}, {"x": 4.0}]}
    status, _, body = http.call("POST", "/v1/models/classifier:regress", json.dumps(request))
    assert status == 200
    assert body == b'{\n    "results": [3.0, 8.0]\n}'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "JSON Parse error: The document is empty"),
        ("  ", "JSON Parse error: The document is empty. at offset: 2"),
        ("instances = [1, 2]", "JSON Parse error: Invalid value. at offset: 0"),
        (
            '{"instances": [1.0, 2.0]',
            "JSON Parse error: Missing a comma or '}' after an object member. at offset: 24",
        ),
        ("{'a':1}", "JSON Parse error: Missing a name for object member. at offset: 1"),
        (
            '{"a" 1}',
            "JSON Parse error: Missing a colon after a name of object member. at offset: 5",
        ),
        (
            '{"a":[1,2}',
            "JSON Parse error: Missing a comma or ']' after an array element. at offset: 9",
        ),
        # 2.16.1's JsonValueToString uses PrettyWriter's default layout (json_tensor.cc:169-183):
        # arrays one element per line. Single-line arrays came with 2.18.
        ("[1, 2]", "JSON Value: [\n    1,\n    2\n] Is not object"),
        (
            '{"signature_name": 100, "instances": [1.0]}',
            'JSON Value: {\n    "signature_name": 100,\n    "instances": [\n        1.0\n    ]\n} '
            "not formatted correctly. "
            "'signature_name' key must be a string value.",
        ),
        (
            '{"instances": [1.0], "inputs": [1.0]}',
            'JSON Value: {\n    "instances": [\n        1.0\n    ],\n    "inputs": [\n        1.0\n    ]\n} '
            "Not formatted correctly "
            "expecting only one of 'inputs' or 'instances' keys to exist ",
        ),
        (
            '{"instances": 5}',
            "JSON Value: {\n    \"instances\": 5\n} Expecting 'instances' to be an list/array",
        ),
        (
            '{"instances": []}',
            "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array",
        ),
        ('{"foo": 1}', "Missing 'inputs' or 'instances' key"),
        (
            '{"instances": [["x", 1]]}',
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: "
            '"x" Type: String is not of expected type: float',
        ),
        (
            '{"instances": [[1, 2], [3]]}',
            "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting "
            "tensor size: 2 but got: 1",
        ),
        (
            '{"instances": [[null, 1]]}',
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: "
            "null Type: Null is not of expected type: float",
        ),
        (
            '{"inputs": [[1, 2], [3]]}',
            "Encountered list at unexpected size: 1 at level: 1 expected size: 2",
        ),
        (
            '{"inputs": [[1, 2], 3]}',
            "JSON Value: 3 found at incorrect level: 2 in the JSON DOM. Expected at level: 2",
        ),
        (
            '{"signature_name": "multi", "instances": [1, 2]}',
            "instances is a plain list, but expecting list of objects as multiple input tensors "
            "required as per tensorinfo_map",
        ),
        (
            '{"signature_name": "multi", "instances": [{"a": 1.0}]}',
            "Failed to process element: 0 of 'instances' list. JSON object: {\n    \"a\": 1.0\n} keys "
            "must be equal to: a,b,c",
        ),
        (
            '{"signature_name": "multi", "instances": [{"a": 1, "b": "x", "d": 1}]}',
            "Failed to process element: 0 key: d of 'instances' list. Error: INVALID_ARGUMENT: JSON "
            "object: does not have named input: d",
        ),
        (
            '{"signature_name": "multi", "inputs": {"a": [1], "b": ["x"]}}',
            "Missing named input: c in 'inputs' object.",
        ),
        (
            '{"signature_name": "multi", "inputs": [1]}',
            "inputs is a plain value/list, but expecting an object as multiple input tensors required "
            "as per tensorinfo_map",
        ),
        (
            '{"signature_name": "multi", "instances": [{"a": 1, "b": "x", "c": 1.5}]}',
            "Failed to process element: 0 key: c of 'instances' list. Error: INVALID_ARGUMENT: JSON "
            "Value: 1.5 Type: Number is not of expected type: int64",
        ),
        (
            '{"signature_name": "binary", "instances": [{"b64": "!!notbase64"}]}',
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: Unable to "
            "base64 decode",
        ),
        (
            '{"signature_name": "nope", "instances": [1]}',
            'Serving signature name: "nope" not found in signature def',
        ),
    ],
)
def test_bad_predict_requests_get_tf_servings_400(http, body, message):
    status, headers, data = http.call("POST", PREDICT, body)
    assert status == 400, data
    assert headers["Content-Type"] == "application/json"
    assert json.loads(data) == {"error": message}
    assert data.startswith(b'{\n    "error": "') and data.endswith(b'"\n}')


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models/tiny:predict"),
        ("POST", "/v1/models/tiny"),
        ("POST", "/v1/models/tiny/metadata"),
        ("GET", "/v1/models/tiny/"),
        ("DELETE", "/v1/models/tiny"),
        ("POST", "/v1/models/tiny:PREDICT"),
    ],
)
def test_malformed_routes(http, method, path):
    assert http.json(method, path, "{}" if method == "POST" else None) == (
        400,
        {"error": f"Malformed request: {method} {path}"},
    )


def test_paths_outside_v1_get_the_plain_404_page(http):
    status, headers, body = http.call("GET", "/models/tiny")
    assert status == 404 and headers["Content-Type"] == "text/html"
    assert b"<TITLE>404 Not Found</TITLE>" in body


def test_missing_model_name_and_oversized_version(http):
    assert http.json("GET", "/v1/models") == (400, {"error": "Missing model name in request."})
    status, _, body = http.call("GET", "/v1/models/tiny/versions/99999999999999999999")
    assert (status, body) == (400, b"")


def test_metadata_lists_signatures_with_the_resolved_version(http):
    status, payload = http.json("GET", "/v1/models/tiny/labels/stable/metadata")
    assert status == 200
    assert payload["model_spec"] == {"name": "tiny", "signature_name": "", "version": "1"}
    signature = payload["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert signature["inputs"]["x"]["tensor_shape"]["dim"] == [
        {"size": "-1", "name": ""},
        {"size": "2", "name": ""},
    ]
    _, _, raw = http.call("GET", "/v1/models/tiny/metadata")
    assert raw.startswith(b'{\n"model_spec":{\n "name": "tiny",') and raw.endswith(b"}\n}\n}\n")


def test_payload_limits_answer_4xx_and_the_server_keeps_serving(http):
    huge = '{"instances": [' + ",".join(["[1.0, 2.0]"] * 20000) + "]}"
    status, payload = http.json("POST", PREDICT, huge)
    assert status == 429 and "exceeds the limit" in payload["error"]
    deep = '{"instances": ' + "[" * 5000 + "1" + "]" * 5000 + "}"
    status, payload = http.json("POST", PREDICT, deep)
    assert status == 400
    garbage = bytes(range(256)) * 10
    status, _, _ = http.call("POST", PREDICT, garbage)
    assert status == 400
    assert http.json("POST", PREDICT, {"instances": [[1, 1]]}) == (200, {"predictions": [6.0]})


def test_nan_and_infinity_round_trip_like_tf_serving(http):
    status, _, body = http.call("POST", PREDICT, '{"instances": [[NaN, 1], [Infinity, 1]]}')
    assert status == 200
    assert body == b'{\n    "predictions": [NaN, Infinity\n    ]\n}'


def test_prometheus_metrics_count_requests_by_model_version_and_api(http):
    http.json("POST", "/v1/models/tiny/versions/1:predict", {"instances": [[1, 1]]})
    status, headers, body = http.call("GET", "/monitoring/prometheus/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert ':tensorflow:serving:request_count{model_name="tiny",status="OK"}' in text
    assert ':tensorflow:serving:request_count{model_name="tiny",status="INVALID_ARGUMENT"}' in text
    assert (
        ':tensorflow:serving:rest:version_request_count{model_name="tiny",version="1",API="Predict",'
        'entrypoint="REST",status="OK"}' in text
    )
    assert (
        ':tensorflow:serving:request_latency_bucket{model_name="tiny",API="Predict",entrypoint="REST",le="+Inf"}'
        in text
    )
    status, _, body = http.call("GET", "/monitoring/prometheus/metrics?x=1")
    assert status == 400 and body.startswith(b"Unexpected path: /monitoring/prometheus/metrics?x=1")


def test_classify_and_regress_errors_are_the_classifier_and_regressor_texts(http):
    # classifier.cc / regressor.cc (2.16.1): not predict's 'Serving signature name' message.
    examples = {"examples": [{"x": 1.0}]}
    for verb in ("classify", "regress"):
        status, payload = http.json(
            "POST", f"/v1/models/classifier:{verb}", {**examples, "signature_name": "nope"}
        )
        assert (status, payload) == (400, {"error": "No signature was found with the name: nope"})
    status, payload = http.json("POST", "/v1/models/classifier:regress", examples)
    assert (status, payload) == (400, {"error": "Expected one output Tensor."})
    status, payload = http.json(
        "POST", "/v1/models/classifier:classify", {**examples, "signature_name": "regress_x"}
    )
    assert status == 400
    assert payload["error"].startswith(
        'Expected classification signature outputs to contain at least one of "classes" or '
        '"scores". Signature was: inputs {'
    )

"""TF Serving's gRPC API with a plain PredictionServiceStub: answers, version choice, errors.

Expected messages and codes are TF Serving 2.16.1's (file names in each test's comments, under
tensorflow_serving/), never our own output.
"""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    input_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving.grpc_client import GrpcServingClient, GrpcServingClientError, model_spec
from serving.grpc_client import example_input as make_input


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as opened:
        yield opened


@pytest.fixture(scope="module")
def stub(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def models(channel):
    return model_service_pb2_grpc.ModelServiceStub(channel)


@pytest.fixture(scope="module")
def client(server):
    with GrpcServingClient(f"127.0.0.1:{server.grpc_port}") as opened:
        yield opened


def tensor(value, dtype=None):
    return tf.make_tensor_proto(value, dtype=dtype)


def x_request(spec: model_pb2.ModelSpec, rows=((1.0, 1.0),)) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=spec)
    request.inputs["x"].CopyFrom(tensor(np.array(rows, dtype=np.float32)))
    return request


def error_of(call, request):
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=30)
    return raised.value.code(), raised.value.details()


def example(**features) -> tf.train.Example:
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                key: tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
                for key, value in features.items()
            }
        )
    )


def test_predict_answers_as_rest_does_in_tf_servings_response_layout(stub, http):
    response = stub.Predict(x_request(model_spec("tiny"), rows=((1.0, 1.0), (2.0, 0.5))))
    # predict_util.cc MakeModelSpec: the name asked for, the signature it ran, the version.
    assert response.model_spec.name == "tiny"
    assert response.model_spec.signature_name == "serving_default"
    assert response.model_spec.version.value == 2
    output = response.outputs["y"]
    # Tensor::AsProtoField (TF Serving's default serialization): typed values, no content.
    assert output.float_val == [6.0, 7.5] and not output.tensor_content
    assert [dim.size for dim in output.tensor_shape.dim] == [2]
    rest = http.json("POST", "/v1/models/tiny:predict", {"instances": [[1, 1], [2, 0.5]]})
    assert rest == (200, {"predictions": list(output.float_val)})


def test_versions_and_labels_choose_the_version(stub):
    by_version = stub.Predict(x_request(model_spec("tiny", version=1)))
    assert by_version.outputs["y"].float_val == [4.0]
    assert by_version.model_spec.version.value == 1
    stable = stub.Predict(x_request(model_spec("tiny", label="stable")))
    canary = stub.Predict(x_request(model_spec("tiny", label="canary")))
    assert (stable.model_spec.version.value, canary.model_spec.version.value) == (1, 2)
    assert canary.outputs["y"].float_val == [6.0]


def test_several_inputs_output_filter_and_tensor_content_requests(stub):
    request = predict_pb2.PredictRequest(model_spec=model_spec("tiny", "multi"))
    # tensor_content (what tf.make_tensor_proto writes for numbers) and typed fields both work.
    request.inputs["a"].CopyFrom(tensor(np.array([1.5, 2.0], dtype=np.float32)))
    request.inputs["b"].CopyFrom(tensor([b"ab", b"xyz"]))
    request.inputs["c"].CopyFrom(tensor(np.array([7, 8], dtype=np.int64)))
    assert request.inputs["a"].tensor_content
    request.output_filter.extend(["length", "echo"])
    response = stub.Predict(request)
    assert sorted(response.outputs) == ["echo", "length"]
    assert response.outputs["echo"].string_val == [b"ab", b"xyz"]
    assert list(response.outputs["length"].int_val) == [2, 3]
    # Fewer typed values than the shape holds: the last one repeats (Tensor::FromProto).
    short = predict_pb2.PredictRequest(model_spec=model_spec("tiny"))
    short.inputs["x"].dtype = tf.float32.as_datatype_enum
    short.inputs["x"].tensor_shape.dim.add(size=2)
    short.inputs["x"].tensor_shape.dim.add(size=2)
    short.inputs["x"].float_val.extend([1.0, 2.0])
    assert stub.Predict(short).outputs["y"].float_val == [9.0, 12.0]


def test_classify_regress_and_multi_inference_match_rest(stub, http):
    examples = [example(x=0.0), example(x=2.0)]
    response = stub.Classify(
        classification_pb2.ClassificationRequest(
            model_spec=model_spec("classifier"), input=make_input(examples)
        )
    )
    assert response.model_spec.signature_name == "serving_default"
    grpc_results = [
        [[entry.label, entry.score] for entry in row.classes]
        for row in response.result.classifications
    ]
    status, rest = http.json(
        "POST", "/v1/models/classifier:classify", {"examples": [{"x": 0.0}, {"x": 2.0}]}
    )
    assert status == 200
    assert len(grpc_results) == 2
    for grpc_row, rest_row in zip(grpc_results, rest["results"], strict=True):
        assert [label for label, _ in grpc_row] == [label for label, _ in rest_row]
        np.testing.assert_allclose([s for _, s in grpc_row], [s for _, s in rest_row], rtol=1e-6)
    regress = stub.Regress(
        regression_pb2.RegressionRequest(
            model_spec=model_spec("classifier", "regress_x"),
            input=make_input([tf.train.Example(), example(x=4.0)], context=example(x=1.5)),
        )
    )
    # The context's features reach every example; an example's own value wins.
    assert [r.value for r in regress.result.regressions] == [3.0, 8.0]
    multi = stub.MultiInference(
        inference_pb2.MultiInferenceRequest(
            tasks=[
                inference_pb2.InferenceTask(
                    model_spec=model_spec("classifier"),
                    method_name="tensorflow/serving/classify",
                ),
                inference_pb2.InferenceTask(
                    model_spec=model_spec("classifier", "regress_x"),
                    method_name="tensorflow/serving/regress",
                ),
            ],
            input=make_input([example(x=2.0)]),
        )
    )
    assert len(multi.results) == 2
    scores = [c.score for c in multi.results[0].classification_result.classifications[0].classes]
    np.testing.assert_allclose(scores, [0.119202912, 0.880797088], rtol=1e-6)
    assert multi.results[1].regression_result.regressions[0].value == 4.0
    assert multi.results[1].model_spec.signature_name == "regress_x"


def test_metadata_and_status(stub, models, server):
    request = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_spec("tiny", version=1), metadata_field=["signature_def"]
    )
    response = stub.GetModelMetadata(request)
    assert (response.model_spec.name, response.model_spec.version.value) == ("tiny", 1)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    loaded = server.manager.resolve("tiny", 1).servable
    assert dict(signatures.signature_def) == loaded.signature_defs
    status = models.GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec=model_spec("tiny"))
    )
    states = [(s.version, s.state, s.status.error_code) for s in status.model_version_status]
    available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert states == [(2, available, 0), (1, available, 0)]
    one = models.GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec=model_spec("tiny", version=1))
    )
    assert [s.version for s in one.model_version_status] == [1]


def test_client_twin_gives_what_the_rest_client_gives(client, http):
    assert client.predict_rows("tiny", [{"x": [1.0, 1.0]}]) == [6.0]
    rows = client.predict_rows(
        "tiny", [{"a": 1.0, "b": "hi", "c": 3}], signature_name="multi", version=1
    )
    assert rows == [{"doubled": 2.0, "echo": "hi", "length": 2, "plus_one": 4}]
    assert client.regress("classifier", [example(x=4.0)], signature_name="regress_x") == [8.0]
    labels = client.classify("classifier", [example(x=0.0)])
    assert [(label, round(score, 6)) for label, score in labels[0]] == [
        ("negative", 0.5),
        ("positive", 0.5),
    ]
    assert client.model_status("tiny", version=2) == [(2, "AVAILABLE", "")]
    version, signatures = client.model_metadata("tiny", label="stable")
    assert version == 1 and "multi" in signatures
    with pytest.raises(GrpcServingClientError) as raised:
        client.predict_rows("nope", [{"x": [1.0, 1.0]}])
    assert raised.value.code == "NOT_FOUND"
    assert raised.value.message == "Servable not found for request: Latest(nope)"


# --- errors: TF Serving's code and message for each fault ------------------------------------


def _bad_inputs(**inputs) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=model_spec("tiny", "multi"))
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(value)
    return request


A = tensor(np.array([1.0], dtype=np.float32))
B = tensor([b"s"])
C = tensor(np.array([1], dtype=np.int64))


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        # predict_impl.cc
        (predict_pb2.PredictRequest(), "INVALID_ARGUMENT", "Missing ModelSpec"),
        # server_core.cc ServableRequestFromModelSpec
        (
            predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec()),
            "INVALID_ARGUMENT",
            "ModelSpec has no name specified.",
        ),
        # ServableRequest::DebugString in the manager's not-found message
        (
            x_request(model_spec("nope")),
            "NOT_FOUND",
            "Servable not found for request: Latest(nope)",
        ),
        (
            x_request(model_spec("tiny", version=9)),
            "NOT_FOUND",
            "Servable not found for request: Specific(tiny, 9)",
        ),
        # server_core.cc GetModelVersionForLabel
        (
            x_request(model_spec("tiny", label="beta")),
            "INVALID_ARGUMENT",
            "Unrecognized servable version label: beta",
        ),
        (
            x_request(model_spec("nope", label="stable")),
            "INVALID_ARGUMENT",
            "Unrecognized servable version label: stable",
        ),
        # predict_util.cc RunPredict
        (
            x_request(model_spec("tiny", "nope")),
            "FAILED_PRECONDITION",
            'Serving signature key "nope" not found.',
        ),
        # predict_util.cc VerifyRequestInputsSize
        (
            _bad_inputs(a=A, b=B),
            "INVALID_ARGUMENT",
            "input size does not match signature: 2!=3 len({a,b}) != len({a,b,c}). "
            "Sent extra: {}. Missing but required: {c}.",
        ),
        (
            _bad_inputs(a=A, b=B, c=C, d=C),
            "INVALID_ARGUMENT",
            "input size does not match signature: 4!=3 len({a,b,c,d}) != len({a,b,c}). "
            "Sent extra: {d}. Missing but required: {}.",
        ),
        # tensorflow/cc/saved_model/util.cc GetInputValues
        (
            _bad_inputs(a=A, b=B, z=C),
            "INVALID_ARGUMENT",
            "Signature input alias: c(feed name: multi_c:0) not found in request and no default "
            "value provided. Inputs expected to be in the request {a,b,z}, or default input "
            "alias set: ",
        ),
        # the session's feed check
        (
            _bad_inputs(a=A, b=B, c=tensor(np.array([1.0], dtype=np.float32))),
            "INVALID_ARGUMENT",
            "Expects arg[2] to be int64 but float is provided",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 20 else None,
)
def test_predict_errors(stub, request_, code, message):
    assert error_of(stub.Predict, request_) == (grpc.StatusCode[code], message)


def test_output_filter_and_tensor_parsing_errors(stub):
    request = x_request(model_spec("tiny"))
    request.output_filter.append("z")
    # predict_util.cc PreProcessPrediction
    assert error_of(stub.Predict, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "output tensor alias not found in signature: z Outputs expected to be in the set {y}.",
    )
    request = x_request(model_spec("tiny"))
    request.output_filter.extend(["y", "y"])
    assert error_of(stub.Predict, request)[1] == "duplicate output tensor alias: y"
    # More values than the shape holds: Tensor::FromProto fails.
    request = x_request(model_spec("tiny"))
    request.inputs["x"].ClearField("tensor_content")
    request.inputs["x"].float_val.extend([1.0, 2.0, 3.0])
    assert error_of(stub.Predict, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "tensor parsing error: x",
    )
    # A shape that would need terabytes is refused before anything is allocated.
    request = x_request(model_spec("tiny"))
    request.inputs["x"].ClearField("tensor_content")
    request.inputs["x"].tensor_shape.dim[0].size = 1 << 40
    code, message = error_of(stub.Predict, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith("tensor parsing error: x (shape [1099511627776, 2] holds")


def test_classify_regress_and_metadata_errors(stub, models):
    examples = make_input([example(x=1.0)])

    def classify(signature):
        return classification_pb2.ClassificationRequest(
            model_spec=model_spec("classifier", signature), input=examples
        )

    # classifier.cc GetClassificationSignatureDef and PreProcessClassification
    assert error_of(stub.Classify, classify("nope")) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "No signature was found with the name: nope",
    )
    code, message = error_of(stub.Classify, classify("regress_x"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith(
        'Expected classification signature outputs to contain at least one of "classes" or '
        '"scores". Signature was: inputs {'
    )
    # util.cc InputToSerializedExampleTensor
    empty = classification_pb2.ClassificationRequest(model_spec=model_spec("classifier"))
    assert error_of(stub.Classify, empty) == (grpc.StatusCode.INVALID_ARGUMENT, "Input is empty.")
    # regressor.cc
    regress = regression_pb2.RegressionRequest(model_spec=model_spec("classifier"), input=examples)
    assert error_of(stub.Regress, regress) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Expected one output Tensor.",
    )
    # get_model_metadata_impl.cc
    metadata = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=model_spec("tiny"))
    assert error_of(stub.GetModelMetadata, metadata) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "GetModelMetadataRequest must specify at least one metadata_field",
    )
    metadata.metadata_field.append("weights")
    assert error_of(stub.GetModelMetadata, metadata)[1] == "Metadata field weights is not supported"
    # get_model_status_impl.cc
    status = get_model_status_pb2.GetModelStatusRequest(model_spec=model_spec("tiny", version=7))
    assert error_of(models.GetModelStatus, status) == (
        grpc.StatusCode.NOT_FOUND,
        "Could not find version 7 of model tiny",
    )
    assert error_of(models.GetModelStatus, get_model_status_pb2.GetModelStatusRequest()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Missing ModelSpec",
    )


def test_multi_inference_errors(stub):
    def task(name, signature="", method="tensorflow/serving/classify"):
        return inference_pb2.InferenceTask(
            model_spec=model_spec(name, signature), method_name=method
        )

    examples = make_input([example(x=1.0)])

    def multi(*tasks, input_=examples):
        return inference_pb2.MultiInferenceRequest(tasks=list(tasks), input=input_)

    # multi_inference.cc
    cases = [
        (multi(task("classifier"), task("tiny")), "INVALID_ARGUMENT",
         "All ModelSpecs in a MultiInferenceRequest must access the same model name."),
        (multi(task("classifier"), task("classifier")), "INVALID_ARGUMENT",
         "Duplicate evaluation of signature: serving_default"),
        (multi(task("classifier", "nope")), "INVALID_ARGUMENT",
         "Requested signature not found in model graph: nope"),
        (multi(task("classifier", method="tensorflow/serving/predict")), "UNIMPLEMENTED",
         "Unsupported signature method_name: tensorflow/serving/predict"),
        (multi(task("classifier"), input_=input_pb2.Input()), "INVALID_ARGUMENT",
         "Input is empty."),
        (multi(), "INVALID_ARGUMENT", "ModelSpec has no name specified."),
    ]  # fmt: skip
    for request, code, message in cases:
        assert error_of(stub.MultiInference, request) == (grpc.StatusCode[code], message)


def test_long_messages_are_cut_like_tf_serving_and_big_messages_refused(stub, server):
    # grpc_status_util.cc: at most 1024 characters, then "...TRUNCATED".
    name = "m" * 3000
    code, message = error_of(stub.Predict, x_request(model_spec(name)))
    assert code == grpc.StatusCode.NOT_FOUND
    assert message == ("Servable not found for request: Latest(" + name)[:1024] + "...TRUNCATED"
    # A message over the server's limit is refused by gRPC itself; the server keeps serving.
    limit = server.grpc.settings.max_message_bytes
    big = x_request(model_spec("tiny"), rows=np.ones((limit // 8 + 1, 2), dtype=np.float32))
    assert error_of(stub.Predict, big)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stub.Predict(x_request(model_spec("tiny"))).outputs["y"].float_val == [6.0]


def test_grpc_calls_are_counted_under_the_grpc_entrypoint(stub, http):
    stub.Predict(x_request(model_spec("tiny", version=2)))
    _, _, body = http.call("GET", "/monitoring/prometheus/metrics")
    text = body.decode()
    assert (
        ':tensorflow:serving:request_latency_count{model_name="tiny",API="Predict",'
        'entrypoint="GRPC"}' in text
    )
    # Unknown models never become label values (one fixed label instead).
    error_of(stub.Predict, x_request(model_spec("unknown-model-123")))
    _, _, body = http.call("GET", "/monitoring/prometheus/metrics")
    assert "unknown-model-123" not in body.decode()
    assert 'model_name=":unknown",status="NOT_FOUND"' in body.decode()


def test_reload_config_adds_and_removes_models_while_serving(tmp_path, model_root):
    from tensorflow_serving.apis import model_management_pb2
    from tensorflow_serving.config import model_server_config_pb2

    from serving.server import ModelServer
    from serving.versions import ModelSpec

    spec = ModelSpec(name="tiny", base_path=str(model_root / "tiny"))
    with ModelServer([spec], port=None, grpc_port=0, poll_seconds=0, access_log=False) as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            models = model_service_pb2_grpc.ModelServiceStub(channel)
            config = model_server_config_pb2.ModelServerConfig()
            entry = config.model_config_list.config.add()
            entry.name, entry.base_path = "renamed", str(model_root / "tiny")
            entry.model_platform = "tensorflow"
            models.HandleReloadConfigRequest(
                model_management_pb2.ReloadConfigRequest(config=config)
            )
            # The new model answers as soon as the call returns; the old one is gone.
            assert stub.Predict(x_request(model_spec("renamed"))).outputs["y"].float_val == [6.0]
            assert error_of(stub.Predict, x_request(model_spec("tiny"))) == (
                grpc.StatusCode.NOT_FOUND,
                "Servable not found for request: Latest(tiny)",
            )
            # model_service_impl.cc: only a ModelConfigList is accepted.
            code, message = error_of(
                models.HandleReloadConfigRequest, model_management_pb2.ReloadConfigRequest()
            )
            assert code == grpc.StatusCode.INVALID_ARGUMENT
            assert message == (
                "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                "Only ModelConfigList is currently supported"
            )
            bad = model_server_config_pb2.ModelServerConfig()
            bad.model_config_list.config.add(name="a/b", base_path="x")
            code, message = error_of(
                models.HandleReloadConfigRequest,
                model_management_pb2.ReloadConfigRequest(config=bad),
            )
            assert code == grpc.StatusCode.INVALID_ARGUMENT and "a/b" in message
            assert stub.Predict(x_request(model_spec("renamed"))).outputs["y"].float_val == [6.0]

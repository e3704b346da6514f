"""TF Serving's gRPC API (PredictionService, ModelService) on the shared Inference calls.

Stubs and messages come from the pinned `tensorflow-serving-api`, so a client written for
`tensorflow_model_server --port=8500` works unchanged. Requests are checked in TF Serving
2.16.1's order with its messages (servables/tensorflow/predict_util.cc, classifier.cc,
regressor.cc, multi_inference.cc, get_model_metadata_impl.cc,
model_servers/get_model_status_impl.cc, server_core.cc) and fail with its status codes; error
texts are cut at 1024 characters as grpc_status_util.cc cuts them.
"""

import concurrent.futures
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import error_codes_pb2, meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    input_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving import config, tensor_proto
from serving.errors import ServingError, cut
from serving.inference import (
    Inference,
    check_classification_signature,
    check_regression_signature,
)
from serving.json_tensor import dtype_name
from serving.metrics import Metrics
from serving.servable import CLASSIFY_METHOD, DEFAULT_SIGNATURE, REGRESS_METHOD
from serving.versions import LoadedVersion

log = logging.getLogger(__name__)

ERROR_MESSAGE_LIMIT = 1024  # grpc_status_util.cc kErrorMessageLimit
SIGNATURE_DEF_FIELD = "signature_def"


@dataclasses.dataclass(frozen=True)
class GrpcSettings:
    """Limits of the gRPC side.

    TF Serving accepts messages up to 2 GiB; this server holds them to `max_message_bytes` so
    one client cannot make it buffer gigabytes. Calls beyond `max_concurrent_rpcs` are refused
    with RESOURCE_EXHAUSTED instead of queueing without bound.
    """

    max_message_bytes: int = 16 * 1024 * 1024
    max_threads: int = 32
    max_concurrent_rpcs: int = 256
    max_elements: int = tensor_proto.DEFAULT_MAX_ELEMENTS


def status_message(message: str) -> str:
    """TF Serving's ToGRPCStatus: messages longer than 1024 characters are cut."""
    return cut(message, ERROR_MESSAGE_LIMIT)


def _require_model_spec(request: Any) -> None:
    if not request.HasField("model_spec"):
        raise ServingError.invalid_argument("Missing ModelSpec")


def _response_spec(
    target: model_pb2.ModelSpec, name: str, signature: str | None, version: int
) -> None:
    """TF Serving's MakeModelSpec: an empty signature name is reported as serving_default."""
    target.name = name
    if signature is not None:
        target.signature_name = signature or DEFAULT_SIGNATURE
    target.version.value = version


def serialized_examples(request_input: input_pb2.Input) -> np.ndarray:
    """InputToSerializedExampleTensor: each example serialized, the context's bytes first.

    Concatenated serialized protos parse as a merge, so the context's features reach every
    example and an example's own feature of the same name wins.
    """
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples = [example.SerializeToString() for example in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        listed = request_input.example_list_with_context
        context = listed.context.SerializeToString()
        examples = [context + example.SerializeToString() for example in listed.examples]
    else:
        examples = []
    array = np.empty(len(examples), dtype=object)
    array[:] = examples
    return array


class _Calls:
    """Runs one RPC: times it, counts it, and turns a ServingError into a gRPC status."""

    def __init__(self, inference: Inference, metrics: Metrics, settings: GrpcSettings) -> None:
        self.inference = inference
        self.metrics = metrics
        self.settings = settings

    def run(
        self,
        api: str,
        model: str,
        context: grpc.ServicerContext,
        work: Callable[[], tuple[Any, int | None]],
        counted: bool = True,
    ) -> Any:
        started = time.perf_counter()
        error: ServingError | None = None
        response, version = None, None
        try:
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                raise ServingError("DEADLINE_EXCEEDED", "Deadline Exceeded")
            response, version = work()
        except ServingError as raised:
            error = raised
        except Exception:  # noqa: BLE001 - one call must never take the server down
            log.exception("unexpected error in gRPC %s", api)
            error = ServingError("INTERNAL", f"Internal error in {api}")
        if counted and context.is_active():  # a caller that went away is not counted
            self.metrics.record(
                model,
                version,
                api,
                "OK" if error is None else error.code,
                (time.perf_counter() - started) * 1e6,
                entrypoint="GRPC",
            )
        if error is not None:
            context.abort(grpc.StatusCode[error.code], status_message(error.message))
        return response

    def resolve(self, spec: model_pb2.ModelSpec) -> LoadedVersion:
        """ServerCore::ServableRequestFromModelSpec, then the version lookup."""
        if not spec.name:
            raise ServingError.invalid_argument("ModelSpec has no name specified.")
        choice = spec.WhichOneof("version_choice")
        if choice == "version":
            return self.inference.resolve(spec.name, spec.version.value, None)
        if choice == "version_label":
            return self.inference.resolve(spec.name, None, spec.version_label)
        return self.inference.resolve(spec.name, None, None)


def _predict_inputs(
    signature: meta_graph_pb2.SignatureDef,
    request: predict_pb2.PredictRequest,
    max_elements: int,
) -> dict[str, np.ndarray]:
    """PreProcessPrediction's input half: the count check, then TF's GetInputValues."""
    requested, expected = set(request.inputs), set(signature.inputs)
    if len(requested) > len(expected) or (
        len(requested) < len(expected) and not signature.defaults
    ):
        raise ServingError.invalid_argument(
            f"input size does not match signature: {len(requested)}!={len(expected)} "
            f"len({{{','.join(sorted(requested))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(sorted(requested - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - requested))}}}."
        )
    arrays = {}
    for alias in sorted(expected):
        info = signature.inputs[alias]
        if alias in request.inputs:
            proto = request.inputs[alias]
        elif alias in signature.defaults:
            proto = signature.defaults[alias]
        else:
            raise ServingError.invalid_argument(
                f"Signature input alias: {alias}(feed name: {info.name}) not found in request "
                "and no default value provided. Inputs expected to be in the request "
                f"{{{','.join(sorted(requested))}}}, or default input alias set: "
                f"{','.join(sorted(signature.defaults))}"
            )
        arrays[alias] = tensor_proto.to_array(proto, alias, max_elements)
    unused = requested - set(arrays)
    if unused:
        raise ServingError.invalid_argument(
            "Inputs contains invalid name. Used request inputs: "
            f"{','.join(sorted(requested & set(arrays)))}, request input: "
            f"{','.join(sorted(requested))}"
        )
    return arrays


def _check_feed_dtypes(signature: meta_graph_pb2.SignatureDef, inputs: dict) -> None:
    """What the session answers when a feed's dtype differs from its placeholder's."""
    for index, alias in enumerate(sorted(inputs)):
        expected = _as_dtype(signature.inputs[alias].dtype)
        array = inputs[alias]
        given = _as_dtype(types_pb2.DT_STRING) if array.dtype == object else _as_dtype(array.dtype)
        if given != expected:
            raise ServingError.invalid_argument(
                f"Expects arg[{index}] to be {dtype_name(expected)} but {dtype_name(given)} "
                "is provided"
            )


def _as_dtype(enum: Any) -> tf.DType:
    return tf.dtypes.as_dtype(enum)


def _output_aliases(signature: meta_graph_pb2.SignatureDef, output_filter: Any) -> list[str]:
    """PreProcessPrediction's output half: the filter's aliases, or every output."""
    seen: list[str] = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise ServingError.invalid_argument(
                f"output tensor alias not found in signature: {alias} Outputs expected to be "
                f"in the set {{{','.join(sorted(signature.outputs))}}}."
            )
        if alias in seen:
            raise ServingError.invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return seen or sorted(signature.outputs)


# The request work on a version already chosen, as TF Serving's RunPredict, RunClassify,
# RunRegress and RunMultiInference take a bundle: the RPCs below resolve the version first;
# warmup (serving/warmup.py) replays requests on a version that is still loading.


def run_predict(
    inference: Inference,
    loaded: LoadedVersion,
    request: predict_pb2.PredictRequest,
    max_elements: int,
    timeout: float | None = None,
    logged: bool = True,
) -> predict_pb2.PredictResponse:
    """predict_util.cc RunPredict; `logged` False keeps the call out of the request log."""
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signatures = loaded.servable.signature_defs
    if name not in signatures or name == "__saved_model_init_op":
        raise ServingError.failed_precondition(f'Serving signature key "{name}" not found.')
    signature = signatures[name]
    inputs = _predict_inputs(signature, request, max_elements)
    aliases = _output_aliases(signature, request.output_filter)
    _check_feed_dtypes(signature, inputs)
    outputs = inference.predict(loaded, name, inputs, timeout=timeout, logged=logged)
    response = predict_pb2.PredictResponse()
    _response_spec(response.model_spec, request.model_spec.name, name, loaded.version)
    for alias in aliases:
        response.outputs[alias].CopyFrom(tensor_proto.to_proto(outputs[alias]))
    return response


def run_classify(
    inference: Inference, loaded: LoadedVersion, request: classification_pb2.ClassificationRequest
) -> classification_pb2.ClassificationResponse:
    """classifier.cc RunClassify."""
    response = classification_pb2.ClassificationResponse()
    examples = serialized_examples(request.input)
    classes = inference.classify(loaded, request.model_spec.signature_name, examples)
    _fill_classifications(response.result, classes, len(examples))
    _response_spec(
        response.model_spec,
        request.model_spec.name,
        request.model_spec.signature_name,
        loaded.version,
    )
    return response


def run_regress(
    inference: Inference, loaded: LoadedVersion, request: regression_pb2.RegressionRequest
) -> regression_pb2.RegressionResponse:
    """regressor.cc RunRegress."""
    response = regression_pb2.RegressionResponse()
    examples = serialized_examples(request.input)
    _fill_regressions(
        response.result,
        inference.regress(loaded, request.model_spec.signature_name, examples),
    )
    _response_spec(
        response.model_spec,
        request.model_spec.name,
        request.model_spec.signature_name,
        loaded.version,
    )
    return response


def run_multi_inference(
    inference: Inference, loaded: LoadedVersion, request: inference_pb2.MultiInferenceRequest
) -> inference_pb2.MultiInferenceResponse:
    """multi_inference.cc TensorFlowMultiInferenceRunner::Infer."""
    signatures = loaded.servable.signature_defs
    names: list[str] = []
    for task in request.tasks:
        if not task.model_spec.name:
            raise ServingError.invalid_argument("Found ModelSpec with an empty model name.")
        if task.model_spec.name != request.tasks[0].model_spec.name:
            raise ServingError.invalid_argument(
                "All ModelSpecs in a MultiInferenceRequest must access the same model name."
            )
        name = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if name in names:
            raise ServingError.invalid_argument(f"Duplicate evaluation of signature: {name}")
        names.append(name)
        if name not in signatures:
            raise ServingError.invalid_argument(
                f"Requested signature not found in model graph: {name}"
            )
        if task.method_name == CLASSIFY_METHOD:
            check_classification_signature(signatures[name])
        elif task.method_name == REGRESS_METHOD:
            check_regression_signature(signatures[name])
        else:
            raise ServingError.unimplemented(
                f"Unsupported signature method_name: {task.method_name}"
            )
    examples = serialized_examples(request.input)
    if len(examples) == 0:
        raise ServingError.invalid_argument("Input is empty.")
    inference.check_examples(loaded, examples)  # once, not once per task
    response = inference_pb2.MultiInferenceResponse()
    for task, name in zip(request.tasks, names, strict=True):
        result = response.results.add()
        if task.method_name == CLASSIFY_METHOD:
            classes = inference.classify(loaded, name, examples, check_schema=False)
            _fill_classifications(result.classification_result, classes, len(examples))
        else:
            values = inference.regress(loaded, name, examples, check_schema=False)
            _fill_regressions(result.regression_result, values)
        _response_spec(
            result.model_spec,
            task.model_spec.name,
            task.model_spec.signature_name,
            loaded.version,
        )
    return response


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """tensorflow.serving.PredictionService."""

    def __init__(self, calls: _Calls) -> None:
        self._calls = calls

    def Predict(self, request, context):  # noqa: N802 - gRPC method names
        return self._calls.run(
            "Predict", request.model_spec.name, context, lambda: self._predict(request, context)
        )

    def _predict(self, request: predict_pb2.PredictRequest, context) -> tuple:
        _require_model_spec(request)
        loaded = self._calls.resolve(request.model_spec)
        response = run_predict(
            self._calls.inference,
            loaded,
            request,
            self._calls.settings.max_elements,
            timeout=context.time_remaining(),
        )
        return response, loaded.version

    def Classify(self, request, context):  # noqa: N802
        return self._calls.run(
            "Classify", request.model_spec.name, context, lambda: self._classify(request)
        )

    def _classify(self, request: classification_pb2.ClassificationRequest) -> tuple:
        _require_model_spec(request)
        loaded = self._calls.resolve(request.model_spec)
        return run_classify(self._calls.inference, loaded, request), loaded.version

    def Regress(self, request, context):  # noqa: N802
        return self._calls.run(
            "Regress", request.model_spec.name, context, lambda: self._regress(request)
        )

    def _regress(self, request: regression_pb2.RegressionRequest) -> tuple:
        _require_model_spec(request)
        loaded = self._calls.resolve(request.model_spec)
        return run_regress(self._calls.inference, loaded, request), loaded.version

    def MultiInference(self, request, context):  # noqa: N802
        model = request.tasks[0].model_spec.name if request.tasks else ""
        return self._calls.run(
            "MultiInference", model, context, lambda: self._multi_inference(request)
        )

    def _multi_inference(self, request: inference_pb2.MultiInferenceRequest) -> tuple:
        spec = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
        loaded = self._calls.resolve(spec)
        return run_multi_inference(self._calls.inference, loaded, request), loaded.version

    def GetModelMetadata(self, request, context):  # noqa: N802
        return self._calls.run(
            "GetModelMetadata", request.model_spec.name, context, lambda: self._metadata(request)
        )

    def _metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest) -> tuple:
        _require_model_spec(request)
        if not request.metadata_field:
            raise ServingError.invalid_argument(
                "GetModelMetadataRequest must specify at least one metadata_field"
            )
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise ServingError.invalid_argument(f"Metadata field {field} is not supported")
        loaded = self._calls.resolve(request.model_spec)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in loaded.servable.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = loaded.model_name
        response.model_spec.version.value = loaded.version
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response, loaded.version


def _fill_regressions(target: Any, values: np.ndarray) -> None:
    target.regressions.extend(regression_pb2.Regression(value=value) for value in values.tolist())


def _fill_classifications(target: Any, result: Any, examples: int) -> None:
    for row in range(examples):
        classifications = target.classifications.add()
        for column in range(result.width):
            entry = classifications.classes.add()
            if result.classes is not None:
                label = result.classes[row, column]
                entry.label = label if isinstance(label, bytes) else str(label).encode()
            if result.scores is not None:
                entry.score = float(result.scores[row, column])


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """tensorflow.serving.ModelService: version states, and a new model config while running."""

    def __init__(self, calls: _Calls) -> None:
        self._calls = calls

    def GetModelStatus(self, request, context):  # noqa: N802
        return self._calls.run(
            "GetModelStatus", request.model_spec.name, context, lambda: self._status(request)
        )

    def _status(self, request: get_model_status_pb2.GetModelStatusRequest) -> tuple:
        _require_model_spec(request)
        spec = request.model_spec
        version = spec.version.value if spec.HasField("version") else None
        statuses = self._calls.inference.manager.statuses(spec.name, version)
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in statuses:
            entry = response.model_version_status.add()
            entry.version = status.version
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(status.state.value)
            entry.status.error_code = error_codes_pb2.Code.Value(status.error_code)
            entry.status.error_message = status.error_message
        return response, None

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        return self._calls.run(
            "HandleReloadConfigRequest", "", context, lambda: self._reload(request), counted=False
        )

    def _reload(self, request: model_management_pb2.ReloadConfigRequest) -> tuple:
        if request.config.WhichOneof("config") != "model_config_list":
            raise ServingError.invalid_argument(
                "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                "Only ModelConfigList is currently supported"
            )
        try:
            specs = config.validate(
                [config.spec_from_proto(entry) for entry in request.config.model_config_list.config]
            )
        except ValueError as error:
            raise ServingError.invalid_argument(str(error)) from None
        log.info("reloading the model config: %s", ", ".join(spec.name for spec in specs))
        self._calls.inference.manager.reload(specs)
        return model_management_pb2.ReloadConfigResponse(), None


class GrpcServer:
    """The gRPC listener on `addresses` (host:port or unix:path); port 0 picks a free port."""

    def __init__(
        self,
        inference: Inference,
        metrics: Metrics,
        addresses: list[str],
        settings: GrpcSettings | None = None,
    ) -> None:
        self.settings = settings or GrpcSettings()
        self.addresses = addresses
        self.port: int | None = None
        calls = _Calls(inference, metrics, self.settings)
        self._server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(
                max_workers=self.settings.max_threads, thread_name_prefix="grpc"
            ),
            maximum_concurrent_rpcs=self.settings.max_concurrent_rpcs,
            options=[
                ("grpc.max_receive_message_length", self.settings.max_message_bytes),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 0),
            ],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(calls), self._server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelServicer(calls), self._server
        )
        self._started = False

    def start(self) -> "GrpcServer":
        for address in self.addresses:
            try:
                port = self._server.add_insecure_port(address)
            except RuntimeError as error:
                raise OSError(f"cannot listen for gRPC on {address}: {error}") from None
            if port == 0 and not address.startswith("unix:"):
                raise OSError(f"cannot listen for gRPC on {address}")
            if not address.startswith("unix:"):
                self.port = port
        self._server.start()
        self._started = True
        for address in self.addresses:
            log.info("Running gRPC ModelServer at %s ...", address)
        return self

    def stop(self, grace_seconds: float = 2.0) -> None:
        if self._started:
            self._server.stop(grace_seconds).wait()

"""A small client for TF Serving's gRPC API (port 8500): this server and tensorflow_model_server.

    from serving.grpc_client import GrpcServingClient

    client = GrpcServingClient("127.0.0.1:8500")
    client.model_status("taxi")                          # [(version, state, error message)]
    client.predict("taxi", {"fare": [12.5, 7.0], ...}, signature_name="serving_raw")
    client.predict_rows("taxi", [{"fare": 12.5, ...}], signature_name="serving_raw")

The gRPC twin of `serving.client.ServingClient`: the same calls and return values for rows,
classify and regress, so switching transport is one line. Needs `grpcio`,
`tensorflow-serving-api` and TensorFlow (for TensorProto), as every TF Serving gRPC client does.
"""

from collections.abc import Iterable, Mapping
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    input_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving.client import ServingClientError

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class GrpcServingClientError(ServingClientError):
    """A call the server refused: `code` is the gRPC status name (NOT_FOUND, INVALID_ARGUMENT...)."""

    def __init__(self, code: str, message: str, target: str) -> None:
        super().__init__(None, message, target)
        self.args = (f"{target}: {code}: {message}",)
        self.code = code


class GrpcServingClient:
    """Calls one TF Serving gRPC endpoint, e.g. `127.0.0.1:8500`; use as a context manager."""

    def __init__(
        self,
        target: str = "127.0.0.1:8500",
        timeout: float = 30.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
            ],
        )
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._dtypes: dict[tuple[str, str], dict[str, tf.DType]] = {}

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "GrpcServingClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- status and metadata ------------------------------------------------------------------

    def model_status(self, model: str, version: int | None = None) -> list[tuple[int, str, str]]:
        """ModelService.GetModelStatus: (version, state, error message), newest first."""
        request = get_model_status_pb2.GetModelStatusRequest(
            model_spec=model_spec(model, version=version)
        )
        response = self._call(self.models.GetModelStatus, request)
        return [
            (
                status.version,
                get_model_status_pb2.ModelVersionStatus.State.Name(status.state),
                status.status.error_message,
            )
            for status in response.model_version_status
        ]

    def model_metadata(
        self, model: str, version: int | None = None, label: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """GetModelMetadata: the served version and its SignatureDefs by name."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=model_spec(model, version=version, label=label),
            metadata_field=["signature_def"],
        )
        response = self._call(self.prediction.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return response.model_spec.version.value, dict(signatures.signature_def)

    # --- predict ------------------------------------------------------------------------------

    def predict(
        self,
        model: str,
        inputs: Mapping[str, Any],
        signature_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
        output_filter: Iterable[str] = (),
        dtypes: Mapping[str, tf.DType] | None = None,
    ) -> dict[str, np.ndarray]:
        """Predict on named input batches; returns every (or each filtered) output as numpy.

        `dtypes` names an input's dtype where numpy's guess would differ from the signature's
        (Python floats become float32 unless told otherwise).
        """
        request = predict_pb2.PredictRequest(
            model_spec=model_spec(model, signature_name, version, label),
            output_filter=list(output_filter),
        )
        for name, value in inputs.items():
            dtype = (dtypes or {}).get(name) or _default_dtype(value)
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
        response = self._call(self.prediction.Predict, request)
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def predict_rows(
        self,
        model: str,
        instances: list[Mapping[str, Any]],
        signature_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
        dtypes: Mapping[str, tf.DType] | None = None,
    ) -> list[Any]:
        """Rows in, one prediction per row out, as `ServingClient.predict_rows` returns them.

        Input dtypes come from the signature (one GetModelMetadata call per model and
        signature, then cached) unless `dtypes` gives them.
        """
        if not instances:
            raise ValueError("instances must hold at least one row")
        names = list(instances[0])
        inputs = {name: [row[name] for row in instances] for name in names}
        if dtypes is None:
            dtypes = self._input_dtypes(model, signature_name or "serving_default", version, label)
        outputs = self.predict(model, inputs, signature_name, version, label, dtypes=dtypes)
        if len(outputs) == 1:
            (values,) = outputs.values()
            return [_plain(value) for value in values]
        return [
            {name: _plain(value[index]) for name, value in sorted(outputs.items())}
            for index in range(len(instances))
        ]

    # --- classify and regress -----------------------------------------------------------------

    def classify(
        self,
        model: str,
        examples: list[tf.train.Example],
        signature_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
        context: tf.train.Example | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Classify tf.Examples: per example, (label, score) pairs as the REST API lists them."""
        request = classification_pb2.ClassificationRequest(
            model_spec=model_spec(model, signature_name, version, label),
            input=example_input(examples, context),
        )
        response = self._call(self.prediction.Classify, request)
        return [
            [(entry.label, entry.score) for entry in classifications.classes]
            for classifications in response.result.classifications
        ]

    def regress(
        self,
        model: str,
        examples: list[tf.train.Example],
        signature_name: str | None = None,
        version: int | None = None,
        label: str | None = None,
        context: tf.train.Example | None = None,
    ) -> list[float]:
        """Regress tf.Examples: one value per example."""
        request = regression_pb2.RegressionRequest(
            model_spec=model_spec(model, signature_name, version, label),
            input=example_input(examples, context),
        )
        response = self._call(self.prediction.Regress, request)
        return [regression.value for regression in response.result.regressions]

    def _input_dtypes(
        self, model: str, signature_name: str, version: int | None, label: str | None
    ) -> dict[str, tf.DType]:
        key = (model, signature_name)
        if key not in self._dtypes:
            _, signatures = self.model_metadata(model, version, label)
            if signature_name not in signatures:
                raise GrpcServingClientError(
                    "NOT_FOUND", f"model {model} has no signature {signature_name!r}", self.target
                )
            self._dtypes[key] = {
                name: tf.dtypes.as_dtype(info.dtype)
                for name, info in signatures[signature_name].inputs.items()
            }
        return self._dtypes[key]

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise GrpcServingClientError(
                error.code().name, error.details() or "", self.target
            ) from None


def model_spec(
    model: str,
    signature_name: str | None = None,
    version: int | None = None,
    label: str | None = None,
) -> model_pb2.ModelSpec:
    """A ModelSpec naming a version, a label, or neither (the latest)."""
    if version is not None and label is not None:
        raise ValueError("pass either version or label, not both")
    spec = model_pb2.ModelSpec(name=model, signature_name=signature_name or "")
    if version is not None:
        spec.version.value = int(version)
    elif label is not None:
        spec.version_label = label
    return spec


def example_input(
    examples: list[tf.train.Example], context: tf.train.Example | None = None
) -> input_pb2.Input:
    """The Input of a classify/regress call (ExampleListWithContext when a context is given)."""
    if context is None:
        return input_pb2.Input(example_list=input_pb2.ExampleList(examples=examples))
    return input_pb2.Input(
        example_list_with_context=input_pb2.ExampleListWithContext(
            examples=examples, context=context
        )
    )


def _default_dtype(value: Any) -> tf.DType | None:
    """float32 for Python floats (TF Serving models rarely take float64), else numpy's guess."""
    array = np.asarray(value)
    if array.dtype == np.float64 and not isinstance(value, np.ndarray):
        return tf.float32
    return None


def _plain(value: Any) -> Any:
    """A numpy value as the REST client would return it: numbers, lists, text for UTF-8 bytes."""
    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value.item() if isinstance(value, np.generic) else value

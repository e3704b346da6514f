"""Requests built from rows of the eval split: TF Serving predict calls for each signature.

A signature that takes serialized tf.Examples gets each example as it is stored (TFX's own
request builder does the same); a signature with one input per raw column gets the example's
values, a missing value written as the feature contract says (`models.features`). Each request
is one row, in both of TF Serving's forms: a gRPC PredictRequest and a REST :predict body. The
gRPC ones, as PredictLogs, are the warmup file TF Serving replays before serving a version.
"""

import base64
import dataclasses
import glob
import json
import math
import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from models import features
from tfx_pipeline.components.infra_validator import servers

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


@dataclasses.dataclass(frozen=True)
class Probe:
    """One row sent to one signature."""

    signature: str
    inputs: dict[str, np.ndarray]  # input name -> [1] array, as the in-process call takes it
    serialized_input: str | None  # the input holding a serialized tf.Example, if that is the form

    def predict_request(self, model_name: str) -> predict_pb2.PredictRequest:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = self.signature
        for name, value in self.inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        return request

    def rest_body(self) -> bytes:
        """The :predict body in TF Serving's row format; bytes go as {"b64": ...}."""
        instance = {name: _json_value(value[0]) for name, value in self.inputs.items()}
        if self.serialized_input is not None:
            instance = instance[self.serialized_input]
        # NaN marks a missing float; TF Serving's JSON parser accepts it.
        return json.dumps({"signature_name": self.signature, "instances": [instance]}).encode()


def _json_value(value: object) -> object:
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_examples(split_dir: str, limit: int) -> list[bytes]:
    """Up to `limit` serialized tf.Examples from an Examples artifact's split folder."""
    files = sorted(glob.glob(os.path.join(split_dir, "*")))
    if not files:
        raise ValueError(f"no example files in {split_dir}")
    compression = "GZIP" if files[0].endswith(".gz") else ""
    dataset = tf.data.TFRecordDataset(files, compression_type=compression).take(limit)
    return [record.numpy() for record in dataset]


def signature_inputs(signature: tf.types.experimental.ConcreteFunction) -> dict[str, tf.TensorSpec]:
    """A signature's inputs by name."""
    _, specs = signature.structured_input_signature
    return dict(specs)


def serialized_input_name(inputs: dict[str, tf.TensorSpec]) -> str | None:
    """The input's name when the signature takes one [batch] vector of serialized examples."""
    if len(inputs) == 1:
        ((name, spec),) = inputs.items()
        if spec.dtype == tf.string and spec.shape.rank == 1:
            return name
    return None


def build_probes(
    signatures: dict[str, tf.types.experimental.ConcreteFunction], records: list[bytes]
) -> list[Probe]:
    """One probe per record and signature, signature by signature."""
    probes = []
    for name, signature in signatures.items():
        inputs = signature_inputs(signature)
        serialized = serialized_input_name(inputs)
        for record in records:
            if serialized is not None:
                values = {serialized: np.array([record], dtype=object)}
            else:
                values = _column_values(inputs, tf.train.Example.FromString(record), name)
            probes.append(Probe(name, values, serialized))
    return probes


def _column_values(
    inputs: dict[str, tf.TensorSpec], example: tf.train.Example, signature: str
) -> dict[str, np.ndarray]:
    values = {}
    for name, spec in inputs.items():
        if spec.shape.rank != 1:
            raise ValueError(
                f"signature {signature} input {name} has shape {spec.shape}; only [batch] "
                "inputs can be filled from example rows"
            )
        feature = example.features.feature.get(name)
        kind = feature.WhichOneof("kind") if feature is not None else None
        stored = list(getattr(feature, kind).value) if kind else []
        if spec.dtype == tf.string:
            value = stored[0] if stored else b""
            values[name] = np.array([value], dtype=object)
        elif spec.dtype.is_floating:
            value = float(stored[0]) if stored else math.nan
            values[name] = np.array([value], dtype=spec.dtype.as_numpy_dtype)
        elif spec.dtype.is_integer:
            value = int(stored[0]) if stored else features.MISSING_INT
            values[name] = np.array([value], dtype=spec.dtype.as_numpy_dtype)
        else:
            raise ValueError(
                f"signature {signature} input {name} has unsupported dtype {spec.dtype}"
            )
    return values


def warmup_logs(probes: list[Probe], model_name: str) -> list[prediction_log_pb2.PredictionLog]:
    """The probes' gRPC requests as TF Serving warmup records."""
    if len(probes) > servers.MAX_WARMUP_RECORDS:
        raise ValueError(
            f"{len(probes)} warmup requests; TF Serving replays at most {servers.MAX_WARMUP_RECORDS}"
        )
    return [
        prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=probe.predict_request(model_name))
        )
        for probe in probes
    ]


def write_warmup_file(model_dir: str, logs: list[prediction_log_pb2.PredictionLog]) -> str:
    """Writes `<model_dir>/assets.extra/tf_serving_warmup_requests`; returns its path."""
    path = os.path.join(model_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path

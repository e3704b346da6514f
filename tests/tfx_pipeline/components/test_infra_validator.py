"""The InfraValidator executor, run for real: tiny SavedModels served by `python -m serving`.

Each model reads a fare and a payment type, in both of the pipeline's signature forms:
serialized tf.Examples (`serving_default`) and one input per column (`serving_raw`).
"""

import json
import os

import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2
from tfx.dsl.components.base import base_executor
from tfx.proto import infra_validator_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import path_utils, proto_utils

from tfx_pipeline.components.infra_validator import executor as executor_lib
from tfx_pipeline.components.infra_validator import validation

ROWS = [(4.5, "Cash"), (12.0, "Credit Card"), (7.25, None), (30.0, "Credit Card"), (5.0, "Cash")]
SPEC = {
    "fare": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
    "payment_type": tf.io.FixedLenFeature([], tf.string, default_value=""),
}


class _Model(tf.Module):
    """p = sigmoid(0.1 * fare + card), `scale`d; `slow` repeats a matrix product per call."""

    def __init__(self, scale: float = 1.0, slow: int = 0):
        super().__init__()
        self.scale = scale
        self.slow = slow
        self.weight = tf.Variable(0.1)
        self.matrix = tf.Variable(tf.eye(256) * 0.5)

    def _predict(self, fare, payment_type):
        card = tf.cast(tf.equal(payment_type, "Credit Card"), tf.float32)
        probability = tf.sigmoid(self.weight * fare + card) * self.scale
        if self.slow:
            product = tf.foldl(
                lambda acc, _: tf.matmul(acc, self.matrix),
                tf.range(self.slow),
                initializer=self.matrix,
            )
            probability += 0.0 * tf.reduce_sum(product)
        return {"probabilities": probability}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        parsed = tf.io.parse_example(examples, SPEC)
        return self._predict(parsed["fare"], parsed["payment_type"])

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32, name="fare"),
            tf.TensorSpec([None], tf.string, name="payment_type"),
        ]
    )
    def serve_raw(self, fare, payment_type):
        return self._predict(tf.where(tf.math.is_nan(fare), 0.0, fare), payment_type)


def save_model(uri: str, **kwargs) -> standard_artifacts.Model:
    module = _Model(**kwargs)
    tf.saved_model.save(
        module,
        path_utils.serving_model_path(uri),
        signatures={
            "serving_default": module.serve_examples.get_concrete_function(),
            "serving_raw": module.serve_raw.get_concrete_function(),
        },
    )
    model = standard_artifacts.Model()
    model.uri = uri
    return model


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    uri = tmp_path_factory.mktemp("examples")
    split = uri / "Split-eval"
    split.mkdir()
    with tf.io.TFRecordWriter(str(split / "data.gz"), options="GZIP") as writer:
        for fare, payment_type in ROWS:
            feature = {"fare": tf.train.Feature(float_list=tf.train.FloatList(value=[fare]))}
            if payment_type is not None:
                feature["payment_type"] = tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[payment_type.encode()])
                )
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    artifact = standard_artifacts.Examples()
    artifact.uri = str(uri)
    artifact.split_names = artifact_utils.encode_split_names(["eval"])
    return artifact


@pytest.fixture(scope="module")
def good_model(tmp_path_factory):
    return save_model(str(tmp_path_factory.mktemp("good")))


def run(tmp_path, model, examples, baseline=None, max_p99_increase=0.5, num_examples=5):
    blessing = standard_artifacts.InfraBlessing()
    blessing.uri = str(tmp_path / "blessing")
    os.makedirs(blessing.uri)
    request_spec = infra_validator_pb2.RequestSpec(
        tensorflow_serving=infra_validator_pb2.TensorFlowServingRequestSpec(
            signature_names=["serving_default", "serving_raw"]
        ),
        split_name="eval",
        num_examples=num_examples,
        make_warmup=True,
    )
    inputs = {
        standard_component_specs.MODEL_KEY: [model],
        standard_component_specs.EXAMPLES_KEY: [examples],
    }
    if baseline is not None:
        inputs["baseline_model"] = [baseline]
    context = base_executor.BaseExecutor.Context(tmp_dir=str(tmp_path / "tmp"), unique_id="1")
    executor_lib.Executor(context).Do(
        inputs,
        {standard_component_specs.BLESSING_KEY: [blessing]},
        {
            standard_component_specs.SERVING_SPEC_KEY: proto_utils.proto_to_json(
                infra_validator_pb2.ServingSpec(model_name="taxi")
            ),
            standard_component_specs.REQUEST_SPEC_KEY: proto_utils.proto_to_json(request_spec),
            standard_component_specs.VALIDATION_SPEC_KEY: proto_utils.proto_to_json(
                infra_validator_pb2.ValidationSpec(max_loading_time_seconds=120)
            ),
            "server": "python",
            "max_p99_increase": max_p99_increase,
        },
    )
    with open(os.path.join(blessing.uri, executor_lib.RESULT_FILE)) as handle:
        return blessing, json.load(handle)


def test_a_sound_model_is_blessed_and_carries_its_warmup_requests(tmp_path, good_model, examples):
    blessing, result = run(tmp_path, good_model, examples, baseline=good_model)
    assert result["problems"] == []
    assert blessing.get_int_custom_property("blessed") == 1
    assert os.path.exists(os.path.join(blessing.uri, "INFRA_BLESSED"))
    assert result["server"] == "python"
    assert result["requests_checked"] == 2 * len(ROWS)
    assert set(result["latency_ms"]) == {"candidate", "baseline"}
    assert blessing.get_float_custom_property("p99_ms") > 0

    # The Pusher pushes the stamped copy, TF Serving replays its warmup file: read it as TF
    # Serving does, with prediction_log_pb2.
    assert blessing.get_int_custom_property("has_model") == 1
    stamped = path_utils.stamped_model_path(blessing.uri)
    warmup = os.path.join(stamped, "assets.extra", "tf_serving_warmup_requests")
    logs = [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(warmup)
    ]
    assert len(logs) == result["warmup_records"] == 2 * len(ROWS)
    assert {log.WhichOneof("log_type") for log in logs} == {"predict_log"}
    signatures = [log.predict_log.request.model_spec.signature_name for log in logs]
    assert signatures == ["serving_default"] * len(ROWS) + ["serving_raw"] * len(ROWS)
    raw = logs[len(ROWS) + 2].predict_log.request  # the row without a payment type
    assert raw.model_spec.name == "taxi"
    assert tf.make_ndarray(raw.inputs["payment_type"]).tolist() == [b""]
    assert tf.make_ndarray(raw.inputs["fare"]).tolist() == [7.25]
    assert tf.saved_model.load(stamped).signatures.keys() == {"serving_default", "serving_raw"}


def test_probabilities_outside_zero_one_are_not_blessed(tmp_path, examples):
    broken = save_model(str(tmp_path / "broken"), scale=3.0)
    blessing, result = run(tmp_path, broken, examples, num_examples=2)
    assert blessing.get_int_custom_property("blessed") == 0
    assert os.path.exists(os.path.join(blessing.uri, "INFRA_NOT_BLESSED"))
    assert not blessing.has_custom_property("has_model")
    assert not os.path.exists(path_utils.stamped_model_path(blessing.uri))
    # Alike failures are one line each: per signature and transport, with how many failed.
    assert len(result["problems"]) == 4
    assert result["problems"][0].startswith(
        "serving_default over gRPC: probabilities outside [0, 1]: ["
    )
    assert result["problems"][0].endswith("(2 of 2 requests, first: request 0)")
    assert result["problems"][3].startswith("serving_raw over REST: probabilities outside")
    assert "outside [0, 1]" in blessing.get_string_custom_property("reason")


def test_a_missing_signature_is_not_blessed(tmp_path, examples):
    module = _Model()
    path = path_utils.serving_model_path(str(tmp_path / "one_signature"))
    tf.saved_model.save(
        module, path, signatures={"serving_default": module.serve_examples.get_concrete_function()}
    )
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "one_signature")
    blessing, result = run(tmp_path, model, examples)
    assert blessing.get_int_custom_property("blessed") == 0
    assert result["problems"] == [
        "the model has no signature serving_raw (it has ['serving_default'])"
    ]


def test_a_model_much_slower_than_the_baseline_is_not_blessed(tmp_path, good_model, examples):
    # About 5x the baseline's p99 (measured), so a loaded machine cannot close the gap.
    slow = save_model(str(tmp_path / "slow"), slow=24)
    blessing, result = run(tmp_path, slow, examples, baseline=good_model, max_p99_increase=0.5)
    assert blessing.get_int_custom_property("blessed") == 0
    (problem,) = result["problems"]
    assert problem.startswith("p99 latency ") and "above the last blessed model's" in problem
    latency = result["latency_ms"]
    assert latency["candidate"]["p99_ms"] > 1.5 * latency["baseline"]["p99_ms"]


def test_latency_problem_is_relative_to_the_baseline():
    fast = validation.Latency(p50_ms=1.0, p99_ms=2.0, calls=300)
    slow = validation.Latency(p50_ms=2.0, p99_ms=3.5, calls=300)
    assert validation.latency_problem(slow, None, 0.5) is None
    assert validation.latency_problem(fast, slow, 0.5) is None
    assert validation.latency_problem(slow, fast, 0.75) is None  # 3.5 <= 2.0 * 1.75
    assert validation.latency_problem(slow, fast, 0.5) == (
        "p99 latency 3.50 ms is more than 50% above the last blessed model's 2.00 ms "
        "(limit 3.00 ms)"
    )

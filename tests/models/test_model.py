"""The Keras model and its serving export, called with plain tensors and a real Transform output."""

import json
import math
import pathlib
import types

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from models import features
from models import model as taxi_model
from tests.conftest import DATA_ROOT, read_csv_rows
from tests.serving_inputs import predict_through_both_signatures, serialized_examples

COUNTS = {
    **{
        features.transformed_name(k): features.BUCKET_COUNT + 1
        for k in features.BUCKETIZED_FEATURES
    },
    **{features.transformed_name(k): n + 1 for k, n in features.CATEGORICAL_INT_FEATURES.items()},
    **{features.transformed_name(k): 5 for k in features.VOCABULARY_FEATURES},
}


def random_batch(batch_size: int, seed: int = 0) -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(seed)
    batch = {}
    for name in features.model_input_names():
        if name in COUNTS:
            batch[name] = tf.constant(rng.integers(0, COUNTS[name], batch_size), tf.int64)
        else:
            batch[name] = tf.constant(rng.normal(size=batch_size), tf.float32)
    return batch


def test_model_takes_every_transformed_feature_by_name():
    model = taxi_model.build_model(taxi_model.ModelHParams(), COUNTS)
    assert sorted(model.input.keys()) == sorted(features.model_input_names())


def test_model_outputs_one_probability_per_row():
    model = taxi_model.build_model(taxi_model.ModelHParams(), COUNTS)
    probabilities = model(random_batch(7))
    assert probabilities.shape == (7, 1)
    assert probabilities.dtype == tf.float32
    values = probabilities.numpy()
    assert np.all((values >= 0) & (values <= 1))


def test_build_model_names_missing_category_counts():
    counts = dict(COUNTS)
    del counts[features.transformed_name("company")]
    with pytest.raises(ValueError, match="company_xf"):
        taxi_model.build_model(taxi_model.ModelHParams(), counts)


def test_hparams_read_from_a_tuner_config():
    hparams = taxi_model.ModelHParams.from_dict(
        {
            "learning_rate": 0.01,
            "num_layers": 3,
            "units_0": 128,
            "units_1": 16,
            "units_2": 32,
            "embedding_dim": 4,
            "dropout": 0.2,
        }
    )
    assert hparams.hidden_units == (128, 16, 32)
    assert hparams.learning_rate == 0.01 and hparams.embedding_dim == 4


def fare_sign_dataset(size: int = 2048, seed: int = 2) -> tf.data.Dataset:
    """Endless batches of 64 whose label is the sign of one input, reshuffled every pass."""
    batch = random_batch(size, seed=seed)
    label = (batch[features.transformed_name("fare")].numpy() > 0).astype(np.int64)
    return (
        tf.data.Dataset.from_tensor_slices((batch, label))
        .shuffle(size, seed=seed)
        .batch(64)
        .repeat()
    )


def test_training_learns_a_separable_signal():
    """A label that depends on one input must be learnt well beyond chance."""
    dataset = fare_sign_dataset()
    model = taxi_model.build_model(taxi_model.ModelHParams(learning_rate=0.01), COUNTS)
    history = taxi_model.train(model, dataset, dataset, train_steps=150, eval_steps=10)
    assert history.final["val_auc"] > 0.95, history.final


@pytest.mark.parametrize(
    ("train_steps", "eval_steps", "steps", "validation_steps"),
    [
        (50, 20, [5, 10, 15, 20, 25, 30, 35, 40, 45, 50], 2),
        # Steps that do not divide: nine epochs of 3, the last one cut to 1.
        (25, 20, [3, 6, 9, 12, 15, 18, 21, 24, 25], 3),
        (4, 3, [1, 2, 3, 4], 1),
    ],
)
def test_training_records_a_curve_and_keeps_the_total_steps(
    train_steps, eval_steps, steps, validation_steps
):
    dataset = fare_sign_dataset()
    model = taxi_model.build_model(taxi_model.ModelHParams(), COUNTS)
    history = taxi_model.train(model, dataset, dataset, train_steps, eval_steps, curve_points=10)
    assert int(model.optimizer.iterations.numpy()) == train_steps
    assert history.steps == steps
    assert history.epochs == list(range(1, len(steps) + 1))
    assert history.validation_steps == validation_steps
    assert {"loss", "auc", "val_loss", "val_auc"} <= set(history.metrics)
    assert all(len(values) == len(steps) for values in history.metrics.values())
    assert history.final == {name: values[-1] for name, values in history.metrics.items()}


def weights_after_training(
    curve_points: int,
) -> tuple[list[np.ndarray], taxi_model.TrainingHistory]:
    tf_keras.utils.set_random_seed(7)
    model = taxi_model.build_model(taxi_model.ModelHParams(dropout=0.2), COUNTS)
    dataset = fare_sign_dataset(size=1024)  # 16 batches a pass, reshuffled every pass
    # Another Dataset object, as run_fn's: iterators of one dataset share its reshuffle seeds,
    # so validating on the training dataset itself would change the training order.
    eval_dataset = fare_sign_dataset(size=256, seed=3)
    history = taxi_model.train(
        model, dataset, eval_dataset, train_steps=60, eval_steps=4, curve_points=curve_points
    )
    return [weight.numpy() for weight in model.weights], history


def test_the_curve_changes_neither_the_batches_nor_the_weights():
    """Ten epochs read the batches one epoch would, in its order: the same model comes out.

    Were each epoch to restart the data, epochs of 6 steps would train on the first 6 batches
    of the first pass ten times over.
    """
    one_epoch, single = weights_after_training(curve_points=1)
    ten_epochs, curve = weights_after_training(curve_points=10)
    assert single.steps == [60] and len(curve.steps) == 10
    for before, after in zip(one_epoch, ten_epochs, strict=True):
        np.testing.assert_array_equal(before, after)


def test_the_history_is_written_as_json_with_null_for_non_finite_values(tmp_path):
    history = taxi_model.TrainingHistory(
        epochs=[1, 2],
        steps=[5, 10],
        validation_steps=3,
        metrics={"loss": [0.5, 0.25], "val_auc": [math.nan, 0.75]},
    )
    path = taxi_model.write_training_history(history, str(tmp_path / "model_run"))
    assert path == str(tmp_path / "model_run" / taxi_model.TRAINING_HISTORY_FILE)
    assert json.loads(pathlib.Path(path).read_text()) == {
        "epochs": [1, 2],
        "steps": [5, 10],
        "validation_steps": 3,
        "metrics": {"loss": [0.5, 0.25], "val_auc": [None, 0.75]},
    }


def test_train_rejects_a_diverged_fit():
    batch = random_batch(256)
    batch[features.transformed_name("fare")] = tf.fill([256], math.nan)
    label = np.ones(256, np.int64)
    dataset = tf.data.Dataset.from_tensor_slices((batch, label)).batch(64).repeat()
    model = taxi_model.build_model(taxi_model.ModelHParams(), COUNTS)
    with pytest.raises(RuntimeError, match="diverged"):
        taxi_model.train(model, dataset, dataset, train_steps=3, eval_steps=1)


@pytest.fixture(scope="module")
def export(tf_transform_output, tmp_path_factory):
    """(the Keras model, the folder it was exported to)."""
    counts = taxi_model.category_counts(tf_transform_output)
    model = taxi_model.build_model(taxi_model.ModelHParams(), counts)
    export_dir = str(tmp_path_factory.mktemp("export"))
    taxi_model.export_serving_model(model, tf_transform_output, export_dir)
    return model, export_dir


def test_run_fn_records_the_curve_in_model_run_and_exports(
    transform_output_dir, raw_feature_spec, tmp_path
):
    """The TFX adapter end to end on bundled rows: the curve lands where the report reads it."""
    rows = read_csv_rows(DATA_ROOT / "span-2" / "data.csv", limit=200)
    data_file = str(tmp_path / "data_tfrecord-00000-of-00001.gz")
    with tf.io.TFRecordWriter(data_file, options="GZIP") as writer:
        for example in serialized_examples(rows, raw_feature_spec).numpy():
            writer.write(example)
    fn_args = types.SimpleNamespace(
        custom_config={"seed": 1, "batch_size": 32},
        transform_output=transform_output_dir,
        hyperparameters=None,
        train_files=[data_file],
        eval_files=[data_file],
        train_steps=12,
        eval_steps=4,
        model_run_dir=str(tmp_path / "model_run"),
        serving_model_dir=str(tmp_path / "serving"),
    )
    taxi_model.run_fn(fn_args)
    written = json.loads((tmp_path / "model_run" / taxi_model.TRAINING_HISTORY_FILE).read_text())
    assert written["steps"] == [2, 4, 6, 8, 10, 12]
    assert len(written["metrics"]["val_auc"]) == 6
    assert (tmp_path / "serving" / "saved_model.pb").exists()


@pytest.fixture(scope="module")
def exported_model(export):
    return tf.saved_model.load(export[1])


def test_export_carries_the_weights_but_not_the_keras_layers(
    export, exported_model, tf_transform_output, raw_feature_spec
):
    """The served model computes what the trained one does, from weights alone."""
    from tensorflow.core.protobuf import saved_model_pb2

    model, export_dir = export
    rows = read_csv_rows(DATA_ROOT / "span-2" / "data.csv", limit=20)
    examples = serialized_examples(rows, raw_feature_spec)
    transformed = tf_transform_output.transform_raw_features(
        tf.io.parse_example(examples, tf_transform_output.raw_feature_spec())
    )
    inputs = {name: transformed[name] for name in features.model_input_names()}
    served = exported_model.signatures[features.SERVING_EXAMPLES_SIGNATURE](examples=examples)
    np.testing.assert_allclose(
        served[features.PROBABILITY_OUTPUT].numpy(), model(inputs).numpy().reshape(-1), rtol=1e-6
    )
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((pathlib.Path(export_dir) / "saved_model.pb").read_bytes())
    function_names = [f.signature.name for f in saved.meta_graphs[0].graph_def.library.function]
    layer_names = [layer.name for layer in model.layers]
    assert not [name for name in function_names if any(layer in name for layer in layer_names)]


def test_export_has_the_three_signatures(exported_model):
    assert set(exported_model.signatures) == {
        features.SERVING_EXAMPLES_SIGNATURE,
        features.SERVING_RAW_SIGNATURE,
        features.TRANSFORM_SIGNATURE,
    }
    raw = exported_model.signatures[features.SERVING_RAW_SIGNATURE]
    assert set(raw.structured_input_signature[1]) == set(features.RAW_FEATURE_DTYPES)


def test_both_serving_signatures_agree_on_csv_rows_with_missing_values(
    exported_model, raw_feature_spec
):
    rows = read_csv_rows(DATA_ROOT / "span-2" / "data.csv", limit=60)
    assert any(row["company"] == "" for row in rows) and any(
        row["dropoff_latitude"] == "" for row in rows
    ), "the sample must exercise missing values"
    probabilities = predict_through_both_signatures(exported_model, rows, raw_feature_spec)
    assert probabilities.shape == (60,)


def test_transform_signature_produces_the_label(exported_model, raw_feature_spec):
    rows = read_csv_rows(DATA_ROOT / "span-2" / "data.csv", limit=5)
    transformed = exported_model.signatures[features.TRANSFORM_SIGNATURE](
        examples=serialized_examples(rows, raw_feature_spec)
    )
    expected = [int(float(r["tips"]) > 0.2 * float(r["fare"])) for r in rows]
    np.testing.assert_array_equal(transformed[features.LABEL_KEY].numpy().reshape(-1), expected)


def test_autograph_leaves_tf_keras_and_transform_internals_alone_once():
    from tensorflow.python.autograph.core import config as autograph_config

    taxi_model.skip_autograph_for_libraries()
    taxi_model.skip_autograph_for_libraries()
    rules = [str(rule) for rule in autograph_config.CONVERSION_RULES]
    assert rules.count("DoNotConvert rule for tf_keras") == 1
    assert rules.count("DoNotConvert rule for tensorflow_transform") == 1


def test_train_rejects_a_model_with_constant_output():
    batch = random_batch(256)
    label = np.zeros(256, np.int64)
    dataset = tf.data.Dataset.from_tensor_slices((batch, label)).batch(64).repeat()
    model = taxi_model.build_model(taxi_model.ModelHParams(learning_rate=0.0), COUNTS)
    for weight in model.weights:
        weight.assign(tf.zeros_like(weight))  # every probability is sigmoid(0) and stays so
    with pytest.raises(RuntimeError, match="degenerate model"):
        taxi_model.train(model, dataset, dataset, train_steps=2, eval_steps=1)

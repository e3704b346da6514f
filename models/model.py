"""The wide-and-deep Keras model, its input pipeline and its serving export; run_fn adapts them to TFX.

Everything above `run_fn` is plain TensorFlow: tests call it with tensors and temporary files.

The Trainer also records its training curve, `training_history.json` in its `model_run` output
(`TRAINING_HISTORY_FILE`, written by `write_training_history`), one entry per epoch:

    {"epochs": [1, 2, ..., 10],              # epoch numbers, from 1
     "steps": [100, 200, ..., 1000],         # training steps done at the end of each epoch
     "validation_steps": 10,                 # eval batches behind each val_ value
     "metrics": {"loss": [...], "auc": [...], "accuracy": [...],
                 "val_loss": [...], "val_auc": [...], "val_accuracy": [...]}}

A training value is the metric over that epoch's steps; a `val_` value is the model after that
epoch on the same first `validation_steps` eval batches every epoch. A value that is not a
finite number is written as null.
"""

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from models import features

# Below this range of probabilities over a few evaluation batches, a model is called constant.
MIN_PREDICTION_SPREAD = 1e-4
# Training input: examples drawn from this many files at a time, shuffled in a buffer this big.
INTERLEAVED_FILES = 4
SHUFFLE_BUFFER = 10_000
# The training curve has about this many points: the training steps are cut into as many epochs.
CURVE_POINTS = 10
TRAINING_HISTORY_FILE = "training_history.json"


@dataclasses.dataclass(frozen=True)
class ModelHParams:
    """Hyperparameters of the model; the tuner searches over these."""

    learning_rate: float = 0.003
    hidden_units: tuple[int, ...] = (64, 32)
    embedding_dim: int = 8
    dropout: float = 0.1

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ModelHParams":
        """Reads the flat dict a Keras Tuner search writes (`num_layers`, `units_0`, ...)."""
        defaults = cls()
        num_layers = int(values.get("num_layers", len(defaults.hidden_units)))
        hidden_units = tuple(
            int(
                values.get(
                    f"units_{i}", defaults.hidden_units[min(i, len(defaults.hidden_units) - 1)]
                )
            )
            for i in range(num_layers)
        )
        return cls(
            learning_rate=float(values.get("learning_rate", defaults.learning_rate)),
            hidden_units=hidden_units,
            embedding_dim=int(values.get("embedding_dim", defaults.embedding_dim)),
            dropout=float(values.get("dropout", defaults.dropout)),
        )


# Libraries whose code AutoGraph must not transpile: their functions branch on Python values
# only, so converting them changes nothing but the time it takes.
AUTOGRAPH_EXEMPT_MODULES = ("tf_keras", "tensorflow_transform")


def skip_autograph_for_libraries() -> None:
    """Stops AutoGraph from transpiling tf_keras' and tf.Transform's own code.

    TensorFlow's AutoGraph leaves the `keras` package alone but not `tf_keras` (Keras 2 as a
    separate package), so the first `fit` in a process spends 10-20 s converting Keras internals.
    The Transform layer is the same: every trace of it (training and eval input, each exported
    signature) converted tf.Transform's graph-loading code, about 1 s of every Trainer run
    (input 0.63 -> 0.30 s, export 1.83 -> 1.25 s), for the same graph and the same training.
    Our own code is still converted. Idempotent.
    """
    try:
        from tensorflow.python.autograph.core import config as autograph_config
    except ImportError:  # a TensorFlow without this module: training is only slower to start
        return
    present = {str(rule) for rule in autograph_config.CONVERSION_RULES}
    added = tuple(
        autograph_config.DoNotConvert(module)
        for module in AUTOGRAPH_EXEMPT_MODULES
        if f"DoNotConvert rule for {module}" not in present
    )
    autograph_config.CONVERSION_RULES = (*added, *autograph_config.CONVERSION_RULES)


def category_counts(tf_transform_output: tft.TFTransformOutput) -> dict[str, int]:
    """Number of distinct indices of every categorical model input, read from Transform's output."""
    counts = {}
    for key in features.BUCKETIZED_FEATURES:
        counts[features.transformed_name(key)] = features.BUCKET_COUNT + 1
    for key, num_values in features.CATEGORICAL_INT_FEATURES.items():
        counts[features.transformed_name(key)] = num_values + 1
    for key in features.VOCABULARY_FEATURES:
        vocabulary_size = tf_transform_output.vocabulary_size_by_name(features.vocabulary_name(key))
        counts[features.transformed_name(key)] = vocabulary_size + features.OOV_BUCKETS
    return counts


class _CategoryRows(keras.layers.Layer):
    """Stacks the categorical inputs into rows of one shared table: feature i's index + offset i.

    One table for every categorical feature, each feature owning its own block of rows, is the
    same model as a table per feature and a one-hot linear layer, in 2 variables instead of 12:
    tracing the training step (Keras and Adam build ops per variable, and per one-hot column)
    took 1.3-1.7 s of CPU instead of 2.1-3.0 s, and every Tuner trial and the Trainer trace it.
    """

    def __init__(self, offsets: Sequence[int], **kwargs: Any):
        super().__init__(**kwargs)
        self.offsets = list(offsets)

    def call(self, columns: Sequence[tf.Tensor]) -> tf.Tensor:
        return tf.stack(columns, axis=1) + tf.constant(self.offsets, dtype=tf.int64)


class _SumOverFeatures(keras.layers.Layer):
    """[batch, features, 1] per-category weights to the [batch, 1] linear term they add up to."""

    def call(self, weights: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(weights, axis=1)


def build_model(hparams: ModelHParams, counts: Mapping[str, int]) -> keras.Model:
    """Wide (linear in the numbers and in every category) plus deep (embeddings and MLP) classifier.

    The wide part's weight per category is the one-hot linear model's; the categories' weights
    and embeddings live in one table each, a block of rows per feature (`_CategoryRows`).

    Args:
      hparams: layer sizes, embedding width, dropout and learning rate.
      counts: number of indices per categorical input, as from `category_counts`.

    Returns:
      A compiled model taking one [batch] tensor per `features.model_input_names()` and
      returning the probability of a big tip, shape [batch, 1].
    """
    skip_autograph_for_libraries()
    numeric_names = [features.transformed_name(k) for k in features.NUMERIC_FEATURES]
    categorical_names = [n for n in features.model_input_names() if n not in numeric_names]
    missing = [n for n in categorical_names if n not in counts]
    if missing:
        raise ValueError(f"category counts missing for model inputs: {missing}")

    inputs = {name: keras.Input(shape=(), name=name, dtype=tf.float32) for name in numeric_names}
    inputs.update(
        {name: keras.Input(shape=(), name=name, dtype=tf.int64) for name in categorical_names}
    )

    numeric = keras.layers.Concatenate(name="numeric")(
        [keras.layers.Reshape((1,))(inputs[name]) for name in numeric_names]
    )
    offsets = np.cumsum([0] + [counts[name] for name in categorical_names])
    rows = _CategoryRows(offsets[:-1].tolist(), name="category_rows")(
        [inputs[name] for name in categorical_names]
    )
    table_rows = int(offsets[-1])

    category_weights = keras.layers.Embedding(table_rows, 1, name="category_weights")(rows)
    wide_logit = keras.layers.Add(name="wide_logit")(
        [
            keras.layers.Dense(1, name="numeric_weights")(numeric),
            _SumOverFeatures(name="category_sum")(category_weights),
        ]
    )

    embeddings = keras.layers.Embedding(
        table_rows, hparams.embedding_dim, name="category_embeddings"
    )(rows)
    deep = keras.layers.Concatenate(name="deep")(
        [numeric, keras.layers.Flatten(name="embeddings")(embeddings)]
    )
    for i, units in enumerate(hparams.hidden_units):
        deep = keras.layers.Dense(units, activation="relu", name=f"hidden_{i}")(deep)
        if hparams.dropout > 0:
            deep = keras.layers.Dropout(hparams.dropout)(deep)
    deep_logit = keras.layers.Dense(1, name="deep_logit")(deep)

    logit = keras.layers.Add(name="logit")([wide_logit, deep_logit])
    probability = keras.layers.Activation("sigmoid", name="probability")(logit)
    model = keras.Model(inputs=inputs, outputs=probability)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=hparams.learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    return model


def make_dataset(
    file_patterns: Sequence[str],
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    seed: int,
    shuffle: bool = True,
) -> tf.data.Dataset:
    """Endless (features, label) batches: raw tf.Examples from ExampleGen, transformed on the fly.

    Transform only analyzes (`materialize=False`): writing every transformed row would cost as
    much as the analysis and grow with the data, while training reads a fixed number of steps.
    Each batch of serialized examples is parsed and transformed in one parallel map, ahead of
    training: three times faster than `make_batched_features_dataset` and a second map
    (1,000 batches of 128 in 1.0 s instead of 3.3 s), which kept training waiting for input.
    """
    skip_autograph_for_libraries()
    raw_spec = tf_transform_output.raw_feature_spec()
    transform_layer = tf_transform_output.transform_features_layer()
    model_inputs = features.model_input_names()

    def parse_and_transform(serialized: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        transformed = transform_layer(tf.io.parse_example(serialized, raw_spec))
        return (
            {name: transformed[name] for name in model_inputs},
            transformed[features.LABEL_KEY],
        )

    files = tf.data.Dataset.list_files(list(file_patterns), shuffle=shuffle, seed=seed)
    records = files.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP"),
        cycle_length=INTERLEAVED_FILES,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if shuffle:
        records = records.shuffle(SHUFFLE_BUFFER, seed=seed)
    return (
        records.repeat()
        .batch(batch_size)
        .map(parse_and_transform, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


@dataclasses.dataclass(frozen=True)
class TrainingHistory:
    """Keras' metrics at the end of every epoch, and the training steps done by then."""

    epochs: list[int]
    steps: list[int]
    validation_steps: int
    metrics: dict[str, list[float]]

    @property
    def final(self) -> dict[str, float]:
        """Every metric at the end of training."""
        return {name: values[-1] for name, values in self.metrics.items()}

    def to_json(self) -> str:
        def number(value: float) -> float | None:
            return value if math.isfinite(value) else None

        return json.dumps(
            {
                "epochs": self.epochs,
                "steps": self.steps,
                "validation_steps": self.validation_steps,
                "metrics": {
                    name: [number(value) for value in values]
                    for name, values in sorted(self.metrics.items())
                },
            }
        )


class _StepBudget(keras.callbacks.Callback):
    """Ends training after exactly `total_steps` batches; notes the count at each epoch's end."""

    def __init__(self, total_steps: int):
        super().__init__()
        self.total_steps = total_steps
        self.done = 0
        self.at_epoch_end: list[int] = []
        # Keras would otherwise copy every batch's metrics out of the graph for this callback.
        self._supports_tf_logs = True

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.done += 1
        if self.done >= self.total_steps:
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.at_epoch_end.append(self.done)


def train(
    model: keras.Model,
    train_dataset: tf.data.Dataset,
    eval_dataset: tf.data.Dataset,
    train_steps: int,
    eval_steps: int,
    curve_points: int = CURVE_POINTS,
) -> TrainingHistory:
    """Fits the model for `train_steps` steps, validating about `curve_points` times.

    The steps are cut into epochs of ceil(train_steps / curve_points) steps, the last one
    shorter when they do not divide: exactly `train_steps` steps in all, on the batches one
    epoch of `train_steps` would read in the same order (Keras keeps one iterator over an
    endless dataset across epochs), so the trained weights are the same (tested).

    Every epoch is validated on the same first ceil(eval_steps / epochs) eval batches, read and
    transformed once, then kept in memory: each pass over the eval input from its start costs
    ~0.35 s before its first batch (measured on the taxi data), ten of them 3-4 s, which
    validating from a cache avoids; the curve's points are on one set of examples. The
    prediction spread check reads the same cache.
    `eval_dataset` must be another Dataset object than `train_dataset`: iterators of one
    dataset share its reshuffling seeds, so validating on it would change the training order.

    Args:
      model: a compiled model, as from `build_model`.
      train_dataset: endless training batches, as from `make_dataset`.
      eval_dataset: evaluation batches, of which the first ones validate every epoch.
      train_steps: training steps in all.
      eval_steps: evaluation batches in all, shared among the epochs' validations.
      curve_points: epochs to cut training into (fewer when train_steps is smaller).

    Returns:
      The metrics at every epoch's end; `final` holds the last.

    Raises:
      RuntimeError: when a final metric is not finite (the fit diverged), or the model gives
        (almost) the same prediction to every example.
    """
    steps_per_epoch = math.ceil(train_steps / max(1, curve_points))
    epochs = math.ceil(train_steps / steps_per_epoch)
    validation_steps = math.ceil(eval_steps / epochs)
    # Read to its end every epoch (no validation_steps), so the cache is complete after one.
    validation_data = eval_dataset.take(validation_steps).cache()
    budget = _StepBudget(train_steps)
    history = model.fit(
        train_dataset,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        validation_data=validation_data,
        callbacks=[budget],
        verbose=2,
    )
    result = TrainingHistory(
        epochs=[epoch + 1 for epoch in history.epoch],
        steps=budget.at_epoch_end,
        validation_steps=validation_steps,
        metrics={
            name: [float(value) for value in values] for name, values in history.history.items()
        },
    )
    if not all(math.isfinite(value) for value in result.final.values()):
        raise RuntimeError(f"training diverged: final metrics {result.final}")
    check_predictions_vary(model, validation_data)
    return result


def write_training_history(history: TrainingHistory, directory: str) -> str:
    """Writes `TRAINING_HISTORY_FILE` into `directory` (local or a cloud bucket); returns its path."""
    tf.io.gfile.makedirs(directory)
    path = os.path.join(directory, TRAINING_HISTORY_FILE)
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write(history.to_json() + "\n")
    return path


def check_predictions_vary(model: keras.Model, dataset: tf.data.Dataset, batches: int = 4) -> None:
    """Raises when the model gives (almost) the same probability to every example.

    A collapsed model can still post a plausible loss on imbalanced data; it must not reach
    the Evaluator, let alone serving.
    """
    predictions = np.concatenate(
        [model.predict_on_batch(features).reshape(-1) for features, _ in dataset.take(batches)]
    )
    spread = float(predictions.max() - predictions.min())
    if spread < MIN_PREDICTION_SPREAD:
        raise RuntimeError(
            f"degenerate model: {predictions.size} evaluation predictions all lie within "
            f"{spread:.2e} of {float(predictions.mean()):.4f} (constant output)"
        )


class _ServingModule(tf.Module):
    """Carries the Transform layer and the model's weights so both are saved into one SavedModel.

    The weights are tracked, not the Keras model: a tracked Keras model makes the SavedModel
    carry a trace of every layer's call (110 of its 162 functions), about 1 s of every export
    and a third of every load (the Evaluator loads two models, the server one per version).
    Every consumer calls the signatures; none reads the Keras object back.
    """

    def __init__(self, model: keras.Model, tf_transform_output: tft.TFTransformOutput):
        super().__init__()
        self.model_variables = list(model.variables)
        self._call_model = model.__call__  # a bound method: not tracked, so not saved
        self.tft_layer = tf_transform_output.transform_features_layer()
        raw_spec = tf_transform_output.raw_feature_spec()
        unknown = sorted(set(features.RAW_FEATURE_DTYPES) - set(raw_spec))
        if unknown:
            raise ValueError(f"the schema has no columns named {unknown}")
        self.full_raw_spec = raw_spec
        self.serving_raw_spec = {key: raw_spec[key] for key in features.RAW_FEATURE_DTYPES}

    def predict_raw(self, raw: Mapping[str, tf.Tensor | tf.SparseTensor]) -> tf.Tensor:
        transformed = self.tft_layer(dict(raw))
        model_inputs = {name: transformed[name] for name in features.model_input_names()}
        return tf.reshape(self._call_model(model_inputs), [-1])


def _dense_to_raw(value: tf.Tensor, spec: tf.io.FixedLenFeature | tf.io.VarLenFeature) -> Any:
    """A [batch] JSON-client column as the [batch, 1] tensor Transform parsed from CSV.

    Missing markers (NaN, '', negative integers; see `features.MISSING_VALUE_DOC`) become
    absent entries, exactly like an empty CSV cell.
    """
    if value.dtype == tf.string:
        present = tf.not_equal(value, "")
    elif value.dtype.is_floating:
        present = tf.logical_not(tf.math.is_nan(value))
    else:
        present = value >= 0
    if isinstance(spec, tf.io.FixedLenFeature):
        return tf.reshape(value, [-1, 1])
    rows = tf.where(present)[:, 0]
    batch_size = tf.shape(value, out_type=tf.int64)[0]
    return tf.SparseTensor(
        indices=tf.stack([rows, tf.zeros_like(rows)], axis=1),
        values=tf.gather(value, rows),
        dense_shape=tf.stack([batch_size, 1]),
    )


def _tensor_dtype(kind: str) -> tf.DType:
    return {"float": tf.float32, "int": tf.int64, "string": tf.string}[kind]


def export_serving_model(
    model: keras.Model, tf_transform_output: tft.TFTransformOutput, output_dir: str
) -> None:
    """Saves the model with Transform inside and three signatures.

    - `serving_default`: serialized tf.Example in `examples`, the TFX and TF Serving convention.
    - `serving_raw`: one named [batch] input per raw feature, for JSON clients.
    - `transform_features`: serialized tf.Example to transformed features incl. the label (TFMA).
    """
    module = _ServingModule(model, tf_transform_output)
    examples_spec = tf.TensorSpec([None], tf.string, name=features.EXAMPLES_INPUT)

    @tf.function(input_signature=[examples_spec])
    def serve_examples(examples):
        raw = tf.io.parse_example(examples, module.serving_raw_spec)
        return {features.PROBABILITY_OUTPUT: module.predict_raw(raw)}

    raw_signature = {
        key: tf.TensorSpec([None], _tensor_dtype(kind), name=key)
        for key, kind in features.RAW_FEATURE_DTYPES.items()
    }

    @tf.function(input_signature=[raw_signature])
    def serve_raw(columns):
        raw = {key: _dense_to_raw(columns[key], module.serving_raw_spec[key]) for key in columns}
        return {features.PROBABILITY_OUTPUT: module.predict_raw(raw)}

    @tf.function(input_signature=[examples_spec])
    def transform_features(examples):
        raw = tf.io.parse_example(examples, module.full_raw_spec)
        return module.tft_layer(raw)

    signatures = {
        features.SERVING_EXAMPLES_SIGNATURE: serve_examples.get_concrete_function(),
        features.SERVING_RAW_SIGNATURE: serve_raw.get_concrete_function(),
        features.TRANSFORM_SIGNATURE: transform_features.get_concrete_function(),
    }
    tf.saved_model.save(module, output_dir, signatures=signatures)


def run_fn(fn_args: Any) -> None:
    """TFX Trainer entry point: train with the tuned hyperparameters, record the curve, export."""
    custom_config = fn_args.custom_config or {}
    seed = int(custom_config["seed"])
    batch_size = int(custom_config["batch_size"])
    keras.utils.set_random_seed(seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    hparams = ModelHParams.from_dict(_hyperparameter_values(fn_args.hyperparameters))
    model = build_model(hparams, category_counts(tf_transform_output))
    history = train(
        model,
        make_dataset(fn_args.train_files, tf_transform_output, batch_size, seed),
        make_dataset(fn_args.eval_files, tf_transform_output, batch_size, seed, shuffle=False),
        train_steps=fn_args.train_steps,
        eval_steps=fn_args.eval_steps,
    )
    write_training_history(history, fn_args.model_run_dir)
    export_serving_model(model, tf_transform_output, fn_args.serving_model_dir)


def _hyperparameter_values(hyperparameters: Any) -> dict[str, Any]:
    """TFX hands over Keras Tuner's config (`{"space": ..., "values": {...}}`), or nothing."""
    if not hyperparameters:
        return {}
    if "values" in hyperparameters:
        return dict(hyperparameters["values"])
    return dict(hyperparameters)

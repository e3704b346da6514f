"""preprocessing_fn: raw taxi columns to model-ready tensors, run by TFX Transform.

Transform traces this once over the whole training span (analyzers: means, quantiles, vocabularies)
and bakes the result into a TF graph that the exported model carries, so serving applies exactly
the same transformation as training.
"""

import tensorflow as tf
import tensorflow_transform as tft

from models import features


def _dense_with_presence(
    raw: tf.Tensor | tf.SparseTensor, default: float | int | str
) -> tuple[tf.Tensor, tf.Tensor]:
    """Turns a [batch, 1] raw column into ([batch] values, [batch] is-present mask).

    CSV columns arrive as SparseTensors with no entry where the value was missing.
    Missing values are filled with `default`; the mask lets callers treat them explicitly.
    """
    if isinstance(raw, tf.SparseTensor):
        shape = tf.stack([raw.dense_shape[0], 1])
        values = tf.sparse.to_dense(
            tf.SparseTensor(raw.indices, raw.values, shape), default_value=default
        )
        present = tf.sparse.to_dense(
            tf.SparseTensor(raw.indices, tf.ones_like(raw.values, dtype=tf.bool), shape),
            default_value=False,
        )
        return tf.squeeze(values, axis=1), tf.squeeze(present, axis=1)
    values = tf.reshape(raw, [-1])
    return values, tf.ones_like(values, dtype=tf.bool)


def _present_values(raw: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """The values that are actually present, for analyzers that must not see fill values."""
    return raw.values if isinstance(raw, tf.SparseTensor) else tf.reshape(raw, [-1])


def _numeric(raw: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """log1p-compressed (fares and distances are heavy-tailed) and z-scored; missing becomes 0.

    Mean and variance are taken over the present values only, in one analyzer that reads raw
    data alone: Transform's analyzer cache can then keep each span's accumulators, and a new span
    never makes it re-read the older ones. A missing value gets the mean, which z-scores to 0.
    """
    logged = tf.math.log1p(tf.maximum(tf.cast(_present_values(raw), tf.float32), 0.0))
    z_scores = tft.scale_to_z_score(logged)
    if not isinstance(raw, tf.SparseTensor):
        return z_scores
    # Back to one value per row, 0 where the row had none.
    rows = raw.indices[:, :1]
    return tf.scatter_nd(rows, z_scores, tf.reshape(raw.dense_shape[0], [1]))


def _bucketized(raw: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """Quantile bucket of a coordinate; missing coordinates get their own last bucket."""
    boundaries = tft.quantiles(
        tf.cast(_present_values(raw), tf.float32),
        num_buckets=features.BUCKET_COUNT,
        epsilon=0.01,
    )
    values, present = _dense_with_presence(raw, default=0.0)
    buckets = tft.apply_buckets(tf.cast(values, tf.float32), boundaries)
    return tf.where(present, buckets, tf.constant(features.BUCKET_COUNT, tf.int64))


def _categorical_int(raw: tf.Tensor | tf.SparseTensor, num_values: int) -> tf.Tensor:
    """The value as its own index; missing or out-of-range values map to index `num_values`."""
    values, present = _dense_with_presence(raw, default=0)
    values = tf.cast(values, tf.int64)
    valid = present & (values >= 0) & (values < num_values)
    return tf.where(valid, values, tf.constant(num_values, tf.int64))


def _vocabulary(raw: tf.Tensor | tf.SparseTensor, key: str, top_k: int) -> tf.Tensor:
    """Vocabulary index; a missing value is its own token, unseen values share the OOV bucket."""
    values, present = _dense_with_presence(raw, default="")
    values = tf.where(present & (values != ""), values, features.MISSING_STRING)
    return tft.compute_and_apply_vocabulary(
        values,
        top_k=top_k,
        num_oov_buckets=features.OOV_BUCKETS,
        vocab_filename=features.vocabulary_name(key),
    )


def _label(tips: tf.Tensor | tf.SparseTensor, fare: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """1 when the tip is more than 20% of the fare. A missing tip counts as no tip."""
    tips_values, _ = _dense_with_presence(tips, default=0.0)
    fare_values, _ = _dense_with_presence(fare, default=0.0)
    threshold = features.TIP_FRACTION_THRESHOLD * tf.cast(fare_values, tf.float32)
    return tf.cast(tf.cast(tips_values, tf.float32) > threshold, tf.int64)


def preprocessing_fn(inputs: dict[str, tf.Tensor | tf.SparseTensor]) -> dict[str, tf.Tensor]:
    """Maps raw columns to transformed features: one [batch] tensor per model input, plus the label.

    Args:
      inputs: raw columns as parsed by Transform from the schema, each [batch, 1].

    Returns:
      Transformed features keyed by `features.transformed_name(...)` and `features.LABEL_KEY`.
      The label is only produced when `tips` is fed, so serving graphs simply omit it.
    """
    outputs = {}
    for key in features.NUMERIC_FEATURES:
        outputs[features.transformed_name(key)] = _numeric(inputs[key])
    for key in features.BUCKETIZED_FEATURES:
        outputs[features.transformed_name(key)] = _bucketized(inputs[key])
    for key, num_values in features.CATEGORICAL_INT_FEATURES.items():
        outputs[features.transformed_name(key)] = _categorical_int(inputs[key], num_values)
    for key, top_k in features.VOCABULARY_FEATURES.items():
        outputs[features.transformed_name(key)] = _vocabulary(inputs[key], key, top_k)
    outputs[features.LABEL_KEY] = _label(inputs[features.TIPS_KEY], inputs[features.FARE_KEY])
    return outputs

"""Tiny SavedModels built inside the tests, with every kind of signature the REST API serves."""

import os

import tensorflow as tf


class _Tiny(tf.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = tf.Variable(scale)

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
    def serve(self, x):
        return {"y": tf.reduce_sum(x, axis=1) * self.scale}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32, name="a"),
            tf.TensorSpec([None], tf.string, name="b"),
            tf.TensorSpec([None], tf.int64, name="c"),
        ]
    )
    def multi(self, a, b, c):
        return {
            "doubled": a * 2.0,
            "echo": b,
            "length": tf.strings.length(b, unit="BYTE"),
            "plus_one": c + 1,
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def binary(self, image_bytes):
        return {
            "size": tf.strings.length(image_bytes, unit="BYTE"),
            "reversed_bytes": tf.strings.reduce_join(
                tf.reverse(tf.strings.bytes_split(image_bytes).to_tensor(), axis=[1]), axis=1
            ),
        }


def save_tiny(base_path: str, version: int, scale: float) -> str:
    """Version `version` of model 'tiny': y = scale * sum(x); also 'multi' and 'binary' signatures."""
    module = _Tiny(scale)
    path = os.path.join(base_path, str(version))
    tf.saved_model.save(
        module,
        path,
        signatures={
            "serving_default": module.serve.get_concrete_function(),
            "multi": module.multi.get_concrete_function(),
            "binary": module.binary.get_concrete_function(),
        },
    )
    return path


class _Counter(tf.Module):
    """Counts its calls, so a test can tell how often warmup ran a request."""

    def __init__(self):
        super().__init__()
        self.calls = tf.Variable(0, dtype=tf.int64)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x):
        calls = self.calls.assign_add(1)
        return {"calls": tf.fill(tf.shape(x), calls)}


def save_counter(base_path: str, version: int) -> str:
    """Model 'counter': each row's output is how many calls the version has answered, this one
    included (its state starts at 0 with every load)."""
    module = _Counter()
    path = os.path.join(base_path, str(version))
    tf.saved_model.save(
        module, path, signatures={"serving_default": module.serve.get_concrete_function()}
    )
    return path


def save_classifier(base_path: str, version: int) -> str:
    """A TF1-style model with classify and regress signatures over tf.Example feature 'x'."""
    path = os.path.join(base_path, str(version))
    graph = tf.Graph()
    with graph.as_default():
        serialized = tf.compat.v1.placeholder(tf.string, [None], name="tf_example")
        parsed = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})
        x = parsed["x"]
        positive = tf.sigmoid(x)
        scores = tf.concat([1.0 - positive, positive], axis=1)
        batch = tf.shape(serialized)[0]
        classes = tf.tile(tf.constant([["negative", "positive"]]), tf.stack([batch, 1]))
        builder = tf.compat.v1.saved_model.Builder(path)
        with tf.compat.v1.Session(graph=graph) as session:
            builder.add_meta_graph_and_variables(
                session,
                [tf.saved_model.SERVING],
                signature_def_map={
                    "serving_default": tf.compat.v1.saved_model.classification_signature_def(
                        serialized, classes, scores
                    ),
                    "regress_x": tf.compat.v1.saved_model.regression_signature_def(
                        serialized, x * 2.0
                    ),
                },
            )
            builder.save()
    return path


# The raw features _RawFeatures takes, with the dtype and the missing value of each
# (models/features.py's convention: NaN, "", -1).
RAW_FEATURES = {"fare": tf.float32, "payment_type": tf.string, "trip_start_hour": tf.int64}
RAW_MISSING = {"fare": float("nan"), "payment_type": "", "trip_start_hour": -1}


class _RawFeatures(tf.Module):
    """A few taxi-like raw features, as named inputs (serving_raw) or as tf.Examples
    (serving_default), with an absent feature read as its missing value."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], dtype, name=key) for key, dtype in RAW_FEATURES.items()
        ]
    )
    def raw(self, fare, payment_type, trip_start_hour):
        return {
            "score": fare * 2.0
            + tf.cast(trip_start_hour, tf.float32)
            + tf.cast(tf.strings.length(payment_type), tf.float32)
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def examples(self, examples):
        parsed = tf.io.parse_example(
            examples,
            {
                key: tf.io.FixedLenFeature([], dtype, default_value=RAW_MISSING[key])
                for key, dtype in RAW_FEATURES.items()
            },
        )
        return self.raw(**parsed)


def save_raw_features(base_path: str, version: int) -> str:
    """Model 'raw': score = 2 * fare + trip_start_hour + len(payment_type), over raw features
    (`serving_raw`) or serialized tf.Examples (`serving_default`)."""
    module = _RawFeatures()
    path = os.path.join(base_path, str(version))
    tf.saved_model.save(
        module,
        path,
        signatures={
            "serving_raw": module.raw.get_concrete_function(),
            "serving_default": module.examples.get_concrete_function(),
        },
    )
    return path

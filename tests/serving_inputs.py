"""Build serving requests from CSV rows for the exported model's two serving signatures."""

import numpy as np
import tensorflow as tf

from models import features
from tests.conftest import csv_row_to_instance


def serialized_examples(rows, raw_feature_spec, drop=()):
    """CSV rows as serialized tf.Examples; an empty cell becomes a feature with no values."""
    examples = []
    for row in rows:
        example = tf.train.Example()
        for key, values in csv_row_to_instance(row, raw_feature_spec).items():
            if key in drop:
                continue
            target = example.features.feature[key]
            dtype = raw_feature_spec[key].dtype
            if dtype == tf.string:
                target.bytes_list.value.extend(values)
            elif dtype == tf.int64:
                target.int64_list.value.extend(values)
            else:
                target.float_list.value.extend(values)
        examples.append(example.SerializeToString())
    return tf.constant(examples)


def raw_columns(rows):
    """Rows as the JSON-client columns of serving_raw, with the documented missing markers."""
    instances = [features.raw_json_instance(row) for row in rows]
    dtypes = {"string": tf.string, "int": tf.int64, "float": tf.float32}
    return {
        key: tf.constant([instance[key] for instance in instances], dtypes[kind])
        for key, kind in features.RAW_FEATURE_DTYPES.items()
    }


def predict_through_both_signatures(loaded, rows, raw_feature_spec) -> np.ndarray:
    """Probabilities from `serving_default` after checking `serving_raw` returns the same."""
    by_example = loaded.signatures[features.SERVING_EXAMPLES_SIGNATURE](
        # Serving requests never carry the label source.
        examples=serialized_examples(rows, raw_feature_spec, drop={features.TIPS_KEY})
    )[features.PROBABILITY_OUTPUT].numpy()
    by_raw = loaded.signatures[features.SERVING_RAW_SIGNATURE](**raw_columns(rows))[
        features.PROBABILITY_OUTPUT
    ].numpy()
    assert np.all((by_example >= 0) & (by_example <= 1)), by_example
    np.testing.assert_allclose(by_raw, by_example, rtol=1e-5, atol=1e-6)
    return by_example

"""The training input path: raw ExampleGen tf.Examples in, transformed model inputs and label out."""

import numpy as np
import tensorflow as tf

from models import features
from models import model as taxi_model
from tests.conftest import DATA_ROOT, read_csv_rows

ROWS = 64


def write_raw_examples(path, rows, raw_feature_spec):
    """CSV rows as ExampleGen writes them: gzipped tf.Examples, empty cells as empty lists."""
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for row in rows:
            feature = {}
            for key, spec in raw_feature_spec.items():
                text = row.get(key, "")
                if spec.dtype == tf.string:
                    values = [text.encode()] if text else []
                    feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
                elif spec.dtype == tf.int64:
                    values = [int(float(text))] if text else []
                    feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
                else:
                    values = [float(text)] if text else []
                    feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())


def test_batches_of_raw_examples_come_out_transformed_with_the_label(
    tf_transform_output, raw_feature_spec, tmp_path
):
    rows = read_csv_rows(DATA_ROOT / "span-2" / "data.csv", limit=ROWS)
    write_raw_examples(tmp_path / "part-0.gz", rows, raw_feature_spec)
    dataset = taxi_model.make_dataset(
        [str(tmp_path / "*.gz")], tf_transform_output, batch_size=ROWS, seed=0, shuffle=False
    )
    inputs, label = next(iter(dataset))
    assert set(inputs) == set(features.model_input_names())
    expected_label = [
        int(float(r["tips"] or 0) > features.TIP_FRACTION_THRESHOLD * float(r["fare"] or 0))
        for r in rows
    ]
    np.testing.assert_array_equal(label.numpy(), expected_label)
    payment = inputs[features.transformed_name("payment_type")].numpy()
    assert payment.shape == (ROWS,) and payment.min() >= 0
    fare = inputs[features.transformed_name("fare")].numpy()
    assert np.isfinite(fare).all() and fare.std() > 0  # z-scored, not raw dollars
    assert abs(fare.mean()) < 1.0


def test_shuffled_input_is_a_seeded_permutation_of_every_file(
    tf_transform_output, raw_feature_spec, tmp_path
):
    rows = read_csv_rows(DATA_ROOT / "span-2" / "data.csv", limit=3 * ROWS)
    for part in range(3):
        chunk = rows[part * ROWS : (part + 1) * ROWS]
        write_raw_examples(tmp_path / f"part-{part}.gz", chunk, raw_feature_spec)

    def one_pass(shuffle, seed=7):
        dataset = taxi_model.make_dataset(
            [str(tmp_path / "*.gz")], tf_transform_output, batch_size=16, seed=seed, shuffle=shuffle
        )
        fares = [
            inputs[features.transformed_name("fare")].numpy() for inputs, _ in dataset.take(12)
        ]
        return np.concatenate(fares)

    in_order, shuffled = one_pass(shuffle=False), one_pass(shuffle=True)
    np.testing.assert_array_equal(np.sort(shuffled), np.sort(in_order))  # each row exactly once
    assert not np.array_equal(shuffled, in_order)
    np.testing.assert_array_equal(one_pass(shuffle=True), shuffled)  # the seed fixes the order
    assert not np.array_equal(one_pass(shuffle=True, seed=8), shuffled)

"""The Arrow CSV executor writes exactly the examples TFX's CsvExampleGen executor writes."""

import json

import pytest
import tensorflow as tf
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv_executor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs

from tests.conftest import DATA_ROOT
from tfx_pipeline.components.arrow_csv_example_gen import executor as arrow_executor
from tfx_pipeline.components.arrow_csv_example_gen import shuffle

HEADER = "name,count,price,note,always_empty\n"
# One file has only whole prices and the other decimals: the split's type is float for both.
# Quoted commas and line breaks, empty cells and a column empty in every row are all covered.
FILE_A = HEADER + 'a,1,2,"x, y",\nb,,3,,\n"c\nd",3,4,plain,\n'
FILE_B = HEADER + "e,4,5.5,,\nf,5,,z,\n"


def run_executor(executor_class, input_base, output_uri):
    examples = standard_artifacts.Examples()
    examples.uri = str(output_uri)
    exec_properties = {
        specs.INPUT_BASE_KEY: str(input_base),
        specs.INPUT_CONFIG_KEY: json.dumps(
            {"splits": [{"name": "single_split", "pattern": "span-1/*"}]}
        ),
        specs.OUTPUT_CONFIG_KEY: json.dumps(
            {
                "splitConfig": {
                    "splits": [
                        {"name": "train", "hashBuckets": 3},
                        {"name": "eval", "hashBuckets": 1},
                    ]
                }
            }
        ),
        specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
        specs.OUTPUT_FILE_FORMAT_KEY: example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    executor = executor_class(executor_class.Context(tmp_dir=str(output_uri) + "-tmp"))
    executor.Do({}, {specs.EXAMPLES_KEY: [examples]}, exec_properties)
    return read_examples(output_uri)


def read_examples(uri):
    """Every example in every split, as sorted (feature, value text) tuples."""
    rows = []
    for path in sorted(tf.io.gfile.glob(f"{uri}/Split-*/*.gz")):
        for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            example = tf.train.Example.FromString(record.numpy())
            rows.append(
                tuple(sorted((key, str(value)) for key, value in example.features.feature.items()))
            )
    return sorted(rows)


@pytest.fixture
def small_csv(tmp_path):
    span = tmp_path / "data" / "span-1"
    span.mkdir(parents=True)
    (span / "a.csv").write_text(FILE_A)
    (span / "b.csv").write_text(FILE_B)
    return tmp_path / "data"


def test_same_examples_as_csv_example_gen_on_awkward_csv(small_csv, tmp_path):
    expected = run_executor(tfx_csv_executor.Executor, small_csv, tmp_path / "tfx")
    actual = run_executor(arrow_executor.Executor, small_csv, tmp_path / "arrow")
    assert len(actual) == 5
    assert actual == expected
    by_name = {dict(row)["name"]: dict(row) for row in actual}
    assert "float_list" in by_name['bytes_list {\n  value: "a"\n}\n']["price"]


def test_same_examples_as_csv_example_gen_on_taxi_rows(tmp_path):
    span = tmp_path / "data" / "span-1"
    span.mkdir(parents=True)
    lines = (DATA_ROOT / "span-2" / "data.csv").read_text().splitlines(keepends=True)
    (span / "data.csv").write_text("".join(lines[:401]))
    expected = run_executor(tfx_csv_executor.Executor, tmp_path / "data", tmp_path / "tfx")
    actual = run_executor(arrow_executor.Executor, tmp_path / "data", tmp_path / "arrow")
    assert len(actual) == 400
    assert actual == expected


def test_files_with_different_headers_are_refused(small_csv, tmp_path):
    (small_csv / "span-1" / "c.csv").write_text("name,count\ng,1\n")
    with pytest.raises(Exception, match="different headers"):
        run_executor(arrow_executor.Executor, small_csv, tmp_path / "arrow")


def test_a_broken_row_fails_naming_the_file(small_csv, tmp_path):
    broken = small_csv / "span-1" / "c.csv"
    broken.write_text(HEADER + 'g,1,2,"an unterminated quote\n')
    with pytest.raises(Exception, match=f"cannot read CSV file {broken}"):
        run_executor(arrow_executor.Executor, small_csv, tmp_path / "arrow")


def wire_feature_names(serialized):
    """Feature names in the order the bytes list them (an Example may be several concatenated)."""

    def fields(data):
        position = 0
        while position < len(data):
            key, position = varint(data, position)
            assert key & 7 == 2, "every field on this path is length-delimited"
            length, position = varint(data, position)
            yield key >> 3, data[position : position + length]
            position += length

    def varint(data, position):
        value = shift = 0
        while True:
            byte = data[position]
            value |= (byte & 0x7F) << shift
            position += 1
            if byte < 0x80:
                return value, position
            shift += 7

    return [
        name.decode()
        for _, features in fields(serialized)  # Example.features
        for _, entry in fields(features)  # Features.feature map entries
        for number, name in fields(entry)
        if number == 1  # the entry's key
    ]


def test_features_are_serialized_in_name_order_so_the_split_is_the_same_every_run(
    small_csv, tmp_path
):
    run_executor(arrow_executor.Executor, small_csv, tmp_path / "arrow")
    records = [
        record.numpy()
        for path in tf.io.gfile.glob(f"{tmp_path}/arrow/Split-*/*.gz")
        for record in tf.data.TFRecordDataset(path, compression_type="GZIP")
    ]
    assert len(records) == 5
    for record in records:
        assert wire_feature_names(record) == sorted(HEADER.strip().split(","))


def test_each_split_is_shuffled_into_shards_in_bounded_buckets(tmp_path, monkeypatch):
    span = tmp_path / "data" / "span-1"
    span.mkdir(parents=True)
    (span / "rows.csv").write_text("row\n" + "".join(f"{n}\n" for n in range(2000)))
    # About 9 kB of CSV: 1 kB buckets make several shards per split.
    monkeypatch.setattr(shuffle, "CSV_BYTES_PER_SHUFFLE_BUCKET", 1024)
    run_executor(arrow_executor.Executor, tmp_path / "data", tmp_path / "arrow")

    rows = {}
    for split in ("train", "eval"):
        shards = sorted(tf.io.gfile.glob(f"{tmp_path}/arrow/Split-{split}/*"))
        assert len(shards) > 5
        assert all(name.endswith("-of-00009.gz") for name in shards)
        rows[split] = [
            tf.train.Example.FromString(record.numpy()).features.feature["row"].int64_list.value[0]
            for record in tf.data.TFRecordDataset(shards, compression_type="GZIP")
        ]
        # Not in file order inside a shard nor across them.
        assert rows[split] != sorted(rows[split])
    assert sorted(rows["train"] + rows["eval"]) == list(range(2000))
    assert 0.2 < len(rows["eval"]) / 2000 < 0.3
    # The scratch buckets are gone; only the splits remain.
    assert sorted(path.name for path in (tmp_path / "arrow").iterdir()) == [
        "Split-eval",
        "Split-train",
    ]


def test_a_split_no_example_falls_into_still_gets_an_empty_shard(tmp_path):
    span = tmp_path / "data" / "span-1"
    span.mkdir(parents=True)
    (span / "one.csv").write_text("name,count\na,1\n")
    rows = run_executor(arrow_executor.Executor, tmp_path / "data", tmp_path / "arrow")
    assert len(rows) == 1
    for split in ("train", "eval"):
        (shard,) = tf.io.gfile.glob(f"{tmp_path}/arrow/Split-{split}/*.gz")
        assert shard.endswith("data_tfrecord-00000-of-00001.gz")
    counts = [
        sum(1 for _ in tf.data.TFRecordDataset(path, compression_type="GZIP"))
        for path in sorted(tf.io.gfile.glob(f"{tmp_path}/arrow/Split-*/*.gz"))
    ]
    assert sorted(counts) == [0, 1]

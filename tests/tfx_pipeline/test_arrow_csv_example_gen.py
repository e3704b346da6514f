"""The Arrow CSV executor writes exactly the examples TFX's CsvExampleGen executor writes."""

import json

import pytest
import tensorflow as tf
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv_executor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs

from tests.conftest import DATA_ROOT
from tfx_pipeline import arrow_csv_example_gen

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
    actual = run_executor(arrow_csv_example_gen.Executor, small_csv, tmp_path / "arrow")
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
    actual = run_executor(arrow_csv_example_gen.Executor, tmp_path / "data", tmp_path / "arrow")
    assert len(actual) == 400
    assert actual == expected


def test_files_with_different_headers_are_refused(small_csv, tmp_path):
    (small_csv / "span-1" / "c.csv").write_text("name,count\ng,1\n")
    with pytest.raises(Exception, match="different headers"):
        run_executor(arrow_csv_example_gen.Executor, small_csv, tmp_path / "arrow")


def test_a_broken_row_fails_naming_the_file(small_csv, tmp_path):
    broken = small_csv / "span-1" / "c.csv"
    broken.write_text(HEADER + 'g,1,2,"an unterminated quote\n')
    with pytest.raises(Exception, match=f"cannot read CSV file {broken}"):
        run_executor(arrow_csv_example_gen.Executor, small_csv, tmp_path / "arrow")

"""The Arrow CSV executor: TFX's CsvExampleGen examples, typed by the schema, and files it cannot read named."""

import gzip
import json

import apache_beam as beam
import pyarrow as pa
import pytest
import tensorflow as tf
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv_executor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs

from tests.conftest import DATA_ROOT, SCHEMA_PATH
from tfx_pipeline.components.arrow_csv_example_gen import csv_errors, csv_examples, shuffle
from tfx_pipeline.components.arrow_csv_example_gen import executor as arrow_executor
from tfx_pipeline.runners.local import first_line

HEADER = "name,count,price,note,always_empty\n"
# One file has only whole prices and the other decimals: the split's type is float for both.
# Quoted commas and line breaks, empty cells and a column empty in every row are all covered.
FILE_A = HEADER + 'a,1,2,"x, y",\nb,,3,,\n"c\nd",3,4,plain,\n'
FILE_B = HEADER + "e,4,5.5,,\nf,5,,z,\n"


def run_executor(executor_class, input_base, output_uri, schema_text=None):
    """Runs an ExampleGen executor on `input_base`/span-1; `schema_text` becomes its schema input."""
    examples = standard_artifacts.Examples()
    examples.uri = str(output_uri)
    input_dict = {}
    if schema_text is not None:
        schema = standard_artifacts.Schema()
        schema.uri = str(output_uri) + "-schema"
        tf.io.gfile.makedirs(schema.uri)
        tf.io.gfile.GFile(schema.uri + "/schema.pbtxt", "w").write(schema_text)
        input_dict[arrow_executor.SCHEMA_KEY] = [schema]
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
    executor.Do(input_dict, {specs.EXAMPLES_KEY: [examples]}, exec_properties)
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
    typed = run_executor(
        arrow_executor.Executor, tmp_path / "data", tmp_path / "typed", SCHEMA_PATH.read_text()
    )
    assert len(actual) == 400
    assert actual == expected
    assert typed == expected


def test_the_curated_schema_changes_no_byte_of_the_bundled_spans(schema, tmp_path):
    """Typed by the schema, the bundled data's examples are byte for byte today's inferred ones."""
    files = [str(DATA_ROOT / "span-1" / "data.csv"), str(DATA_ROOT / "span-2" / "data.csv")]
    variants = {"inferred": None, "typed": csv_examples.schema_column_types(schema)}
    with beam.Pipeline() as pipeline:
        for name, schema_types in variants.items():
            _ = (
                pipeline
                | f"Encode[{name}]" >> csv_examples.CsvFilesToExamples(files, schema_types)
                | f"Write[{name}]" >> beam.io.WriteToTFRecord(str(tmp_path / name), num_shards=1)
            )
    inferred, typed = (
        [
            record
            for batch in tf.data.TFRecordDataset(str(tmp_path / f"{name}-00000-of-00001"))
            .batch(8192)
            .as_numpy_iterator()
            for record in batch
        ]
        for name in variants
    )
    assert len(typed) == 15002
    assert sorted(typed) == sorted(inferred)


# price is FLOAT, count INT, name BYTES; note is not in the schema and is inferred.
SCHEMA = """
feature { name: "name" type: BYTES }
feature { name: "count" type: INT }
feature { name: "price" type: FLOAT }
feature { name: "always_empty" type: FLOAT }
feature { name: "not_in_the_csv" type: INT }
"""


def test_a_float_column_of_whole_numbers_is_read_as_the_schema_declares(tmp_path):
    span = tmp_path / "data" / "span-1"
    span.mkdir(parents=True)
    (span / "a.csv").write_text("name,count,price,note\na,1,2,3\nb,2,,4\n")
    inferred = run_executor(arrow_executor.Executor, tmp_path / "data", tmp_path / "inferred")
    typed = run_executor(arrow_executor.Executor, tmp_path / "data", tmp_path / "typed", SCHEMA)
    by_name = {dict(row)["name"]: dict(row) for row in typed}
    a, b = by_name['bytes_list {\n  value: "a"\n}\n'], by_name['bytes_list {\n  value: "b"\n}\n']
    assert a["price"] == "float_list {\n  value: 2\n}\n"
    assert b["price"] == "float_list {\n}\n"  # an empty cell: the schema's kind, no values
    assert a["count"] == "int64_list {\n  value: 1\n}\n"
    assert a["note"] == "int64_list {\n  value: 3\n}\n"  # not in the schema: inferred
    assert "not_in_the_csv" not in a
    # Without the schema the span's whole prices are guessed to be integers, as TFX guesses.
    assert (
        "int64_list"
        in {dict(row)["name"]: dict(row) for row in inferred}['bytes_list {\n  value: "a"\n}\n'][
            "price"
        ]
    )


def test_values_that_do_not_parse_as_the_schema_type_name_column_file_line_and_value(tmp_path):
    span = tmp_path / "data" / "span-1"
    span.mkdir(parents=True)
    # A quoted line break in line 3 makes the bad rows' lines differ from their row numbers.
    (span / "a.csv").write_text(
        'name,count,price\na,1,2.5\n"b\nc",2,3\nd,3.5,4\ne,4,abc\nf,5,n/a\n'
    )
    (span / "b.csv").write_text("name,count,price\ng,1,1\nh,x,1\n")
    with pytest.raises(ValueError) as error:
        run_executor(arrow_executor.Executor, tmp_path / "data", tmp_path / "arrow", SCHEMA)
    message = first_line(error.value)
    assert message.startswith("3 problems in the CSV files: ")
    assert (
        f"cannot parse CSV file {span / 'a.csv'} as the schema declares: column count is INT "
        "but line 5 has '3.5'"
    ) in message
    assert (
        f"{span / 'a.csv'} as the schema declares: column price is FLOAT but line 6 has 'abc'"
        in (message)
    )
    assert f"{span / 'b.csv'} as the schema declares: column count is INT but line 3 has 'x'" in (
        message
    )


def test_first_unparsable_finds_the_first_bad_value_of_a_large_column():
    values = pa.array(["1"] * 70_000 + [None, "1.5"] + ["x"] * 10, pa.string())
    assert csv_examples.first_unparsable(values, csv_examples.INT) == 70_001
    assert csv_examples.first_unparsable(values[:70_001], csv_examples.INT) is None
    assert csv_examples.first_unparsable(values, csv_examples.STRING) is None


HEADER3 = b"a,b,c\n"
UNREADABLE = {
    "not UTF-8": (
        HEADER3 + b"1,2,3\n4,caf\xe9,6\n",
        "it is not UTF-8: byte 0xe9 at byte 17 (line 3) is not valid UTF-8; re-encode the file "
        "as UTF-8",
    ),
    "not UTF-8 in the header": (b"a,caf\xe9,c\n1,2,3\n", "byte 0xe9 at byte 5 (line 1)"),
    "binary": (HEADER3 + b"1,2\x00,3\n", "it holds NUL bytes (the first at byte 9, line 2)"),
    "UTF-16": ("a,b,c\n1,2,3\n".encode("utf-16"), "it is UTF-16 text"),
    "gzip": (gzip.compress(HEADER3 + b"1,2,3\n"), "it is gzip-compressed"),
    "semicolons": (b"a;b;c\n1;2;3\n", "the file looks semicolon-separated"),
    "tabs": (b"a\tb\tc\n1\t2\t3\n", "the file looks tab-separated"),
    "truncated row": (
        HEADER3 + b"1,2,3\n\n4,5\n",
        "line 4 has 2 fields where the header has 3 (a truncated or ragged row",
    ),
    "extra field": (
        HEADER3 + b'1,"x\ny",3\n4,5,6,7\n',
        "line 4 has 4 fields where the header has 3 (an unquoted comma inside a value",
    ),
    "empty": (b"", "the file is empty"),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_a_file_that_is_not_csv_fails_naming_the_file_and_the_likely_cause(
    case, small_csv, tmp_path
):
    data, cause = UNREADABLE[case]
    bad = small_csv / "span-1" / "c.csv"
    bad.write_bytes(data)
    with pytest.raises(ValueError) as error:
        run_executor(arrow_executor.Executor, small_csv, tmp_path / "arrow")
    # The runner shows a failed component's first line: it holds the file and the cause.
    message = first_line(error.value)
    assert f"cannot read CSV file {bad}: " in message
    assert cause in message


def test_every_unreadable_file_is_named_at_once(small_csv, tmp_path):
    (small_csv / "span-1" / "c.csv").write_bytes(b"a;b\n1;2\n")
    (small_csv / "span-1" / "d.csv").write_bytes(b"")
    with pytest.raises(ValueError) as error:
        run_executor(arrow_executor.Executor, small_csv, tmp_path / "arrow")
    message = first_line(error.value)
    assert message.startswith("2 problems in the CSV files: ")
    assert f"{small_csv / 'span-1' / 'c.csv'}: its header is one column" in message
    assert f"{small_csv / 'span-1' / 'd.csv'}: the file is empty" in message


def test_invalid_utf8_is_found_across_chunk_boundaries():
    text = "é".encode() * 10 + b"\n" + b"x\xff"
    # Chunks of 3 bytes cut the two-byte characters in half.
    chunks = [text[i : i + 3] for i in range(0, len(text), 3)]
    assert csv_errors.first_invalid_utf8(chunks) == (22, 2, 0xFF)
    assert csv_errors.first_invalid_utf8([text[:21]]) is None
    assert csv_errors.first_invalid_utf8([text[:1]]) == (0, 1, 0xC3)  # ends inside a character


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

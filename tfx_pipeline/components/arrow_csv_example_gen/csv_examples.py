"""CSV files to serialized tf.Examples with Arrow and C++, in batches: the same examples as TFX's CSV executor.

TFX's own CSV executor builds every tf.Example cell by cell in Python (and infers column types in
a second pass over every parsed row). Here Arrow parses each file in blocks and tfx-bsl's C++
coder encodes whole batches, with TFX's contract: a header line per file, one global column
type per column, an empty cell written as a feature with no values.

Column types come from the curated schema when there is one (`schema_column_types`): a FLOAT
column whose values in one span happen to be whole numbers stays FLOAT, and a value that does
not parse as its column's type fails the run naming the column, the file and the line. Columns
the schema does not type are inferred from all files (int, else float, else string), as TFX
does. A file that cannot be read as CSV fails naming the file and the likely cause
(`csv_errors`). No TFX: `CsvFilesToExamples` is a plain Beam transform.
"""

import itertools
from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa
import tensorflow as tf
from pyarrow import compute, csv
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.coders import example_coder

from tfx_pipeline.components.arrow_csv_example_gen import csv_errors
from tfx_pipeline.components.arrow_csv_example_gen.csv_errors import CsvFileError

# Column types from narrowest to widest; a split's column takes the widest any file needs.
NULL, INT, FLOAT, STRING = 0, 1, 2, 3
ARROW_TYPES = {INT: pa.int64(), FLOAT: pa.float32(), STRING: pa.binary()}
# The schema's feature types as column types; features of other types are inferred.
SCHEMA_TYPES = {schema_pb2.INT: INT, schema_pb2.FLOAT: FLOAT, schema_pb2.BYTES: STRING}
TYPE_NAMES = {INT: "INT", FLOAT: "FLOAT", STRING: "BYTES"}
# Bytes of CSV Arrow parses per batch: bounds memory per worker whatever the file size.
BLOCK_BYTES = 8 << 20


def schema_column_types(schema: schema_pb2.Schema) -> dict[str, int]:
    """INT, FLOAT or STRING for every feature the schema gives one of TFDV's value types."""
    return {f.name: SCHEMA_TYPES[f.type] for f in schema.feature if f.type in SCHEMA_TYPES}


def _read_blocks(path: str) -> Iterable[pa.RecordBatch]:
    """The file's rows as batches of string columns; only an empty cell counts as missing.

    A file that is not readable CSV raises CsvFileError naming it and the likely cause (Arrow's
    own message names no file, and often no line).
    """
    names = _header_names(path)
    try:
        reader = csv.open_csv(
            _open(path),
            read_options=csv.ReadOptions(block_size=BLOCK_BYTES),
            parse_options=csv.ParseOptions(newlines_in_values=True),
            convert_options=csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=True,
            ),
        )
        yield from reader
    except pa.ArrowInvalid as error:
        raise CsvFileError(path, csv_errors.diagnose(path, error)) from error


def _open(path: str) -> pa.NativeFile:
    """Local files stream from disk; remote ones (gs://) are read whole through TensorFlow's."""
    if "://" not in path:
        return pa.OSFile(path)
    with tf.io.gfile.GFile(path, "rb") as handle:
        return pa.BufferReader(handle.read())


def _header_names(path: str) -> list[str]:
    """The header's column names, after checking the file's first bytes look like UTF-8 CSV."""
    with tf.io.gfile.GFile(path, "rb") as handle:
        head = handle.read(csv_errors.SNIFF_BYTES)
        newline = head.find(b"\n")
        header = head[: newline + 1] if newline >= 0 else head + handle.readline()
    cause = csv_errors.sniff(head)
    if cause is None:
        try:
            header.decode("utf-8")
        except UnicodeDecodeError as error:
            cause = csv_errors.not_utf8(error.start, 1, header[error.start])
    if cause is None:
        try:
            names = csv.read_csv(
                pa.py_buffer(header),
                read_options=csv.ReadOptions(autogenerate_column_names=False),
            ).column_names
        except pa.ArrowInvalid as error:
            cause = f"its header line cannot be parsed: {error}"
        else:
            cause = csv_errors.header_problem(names)
    if cause is not None:
        raise CsvFileError(path, cause)
    return names


def column_type(values: pa.Array) -> int:
    """The narrowest of INT, FLOAT, STRING that holds every present value (NULL if none)."""
    present = values.drop_null()
    if len(present) == 0:
        return NULL
    for kind in (INT, FLOAT):
        try:
            compute.cast(present, pa.int64() if kind == INT else pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return kind
    return STRING


def _as_lists(values: pa.Array, kind: int) -> pa.ListArray:
    """One list per row: the value, or an empty list where the cell was empty."""
    present = compute.is_valid(values)
    lengths = compute.cast(present, pa.int32())
    offsets = pa.array([0], pa.int32())
    offsets = pa.concat_arrays([offsets, compute.cumulative_sum(lengths).cast(pa.int32())])
    flat = compute.cast(values.drop_null(), ARROW_TYPES[kind])
    return pa.ListArray.from_arrays(offsets, flat)


def first_unparsable(values: pa.Array, kind: int) -> int | None:
    """The index of the first value that does not parse as `kind`, or None when all do.

    One Arrow cast over the whole column; only when it fails, a bisection (each step casts half
    of what is left, so finding the value costs about one more cast of the column).
    """
    arrow_type = ARROW_TYPES[kind]

    def parses(start: int, stop: int) -> bool:
        try:
            compute.cast(values.slice(start, stop - start), arrow_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return False
        return True

    if kind == STRING or parses(0, len(values)):
        return None
    low, high = 0, len(values)  # values[:low] parse; values[low:high] hold a bad one
    while high - low > 1:
        middle = (low + high) // 2
        if parses(low, middle):
            low = middle
        else:
            high = middle
    return low


class _InferFileTypes(beam.DoFn):
    """Per file: its header, each column's type, and every problem that stops it being read.

    A column the schema types gets that type where it has any value, after checking its values
    parse; any other column gets the narrowest type that holds its values.
    """

    def __init__(self, schema_types: dict[str, int]):
        self._schema_types = schema_types

    def process(
        self, path: str
    ) -> Iterable[tuple[tuple[str, ...] | None, dict[str, int], list[str]]]:
        types: dict[str, int] = {}
        names: tuple[str, ...] = ()
        unparsable: dict[str, tuple[int, object]] = {}  # column -> (record, value)
        rows_before = 0
        try:
            for batch in _read_blocks(path):
                names = tuple(batch.schema.names)
                for name, values in zip(names, batch.columns, strict=True):
                    kind = self._schema_types.get(name)
                    if kind is None:
                        types[name] = max(types.get(name, NULL), column_type(values))
                        continue
                    # A column empty in every row of every file stays NULL, as TFX writes it.
                    present = kind if values.null_count < len(values) else NULL
                    types[name] = max(types.get(name, NULL), present)
                    if name not in unparsable:
                        bad = first_unparsable(values, kind)
                        if bad is not None:
                            unparsable[name] = (rows_before + bad + 1, values[bad].as_py())
                rows_before += batch.num_rows
        except CsvFileError as error:
            yield None, {}, [str(error)]
            return
        problems = [
            f"cannot parse CSV file {path} as the schema declares: column {name} is "
            f"{TYPE_NAMES[self._schema_types[name]]} but line "
            f"{csv_errors.line_of_record(path, record)} has {csv_errors.quoted(value)}; fix "
            "the file, or the schema if the column's type changed"
            for name, (record, value) in sorted(unparsable.items())
        ]
        yield names, types, problems


class _MergeTypes(beam.CombineFn):
    """Widest type per column over all files; every file must have the same header.

    Files that cannot be read are collected, and the split fails naming every one of them.
    """

    def create_accumulator(self):  # noqa: ANN201 - Beam's signature
        return None, {}, []

    def add_input(self, accumulator, file_types):  # noqa: ANN001, ANN201
        return self.merge_accumulators([accumulator, file_types])

    def merge_accumulators(self, accumulators):  # noqa: ANN001, ANN201
        names, merged, problems = None, {}, []
        for file_names, types, file_problems in accumulators:
            problems += file_problems
            if file_names is None:
                continue
            if names is not None and file_names != names:
                raise ValueError(
                    f"files of one split have different headers: {list(names)} vs "
                    f"{list(file_names)}"
                )
            names = file_names
            for name, kind in types.items():
                merged[name] = max(merged.get(name, NULL), kind)
        return names, merged, problems

    def extract_output(self, accumulator):  # noqa: ANN001, ANN201
        _, types, problems = accumulator
        if problems:
            # One line: the runner shows a failed component's first line on the console.
            count = f"{len(problems)} problems in the CSV files: " if len(problems) > 1 else ""
            raise ValueError(count + "; ".join(sorted(problems)))
        return types


class _EncodeExamples(beam.DoFn):
    """Serialized tf.Examples with their features in column-name order, so the bytes (which the
    train/eval split hashes) are the same in every process.

    The C++ encoder lists a row's features in its hash map's order, which is seeded per process.
    So each column is encoded on its own and a row's pieces are joined in name order: serialized
    protos concatenate as a merge, and every piece is one Example holding one feature.
    """

    def setup(self) -> None:
        self._encoder = example_coder.RecordBatchToExamplesEncoder()

    def process(self, path: str, types: dict[str, int]) -> Iterable[bytes]:
        # TFX writes a column empty in every row as a feature with no kind, which the C++ encoder
        # cannot express: that piece is the same for every row.
        empty = {
            name: tf.train.Example(
                features=tf.train.Features(feature={name: tf.train.Feature()})
            ).SerializeToString()
            for name, kind in types.items()
            if kind == NULL
        }
        for batch in _read_blocks(path):
            pieces = []
            for name in sorted(batch.schema.names):
                if name in empty:
                    pieces.append(itertools.repeat(empty[name], batch.num_rows))
                    continue
                column = _as_lists(batch.column(name), types[name])
                pieces.append(self._encoder.encode(pa.RecordBatch.from_arrays([column], [name])))
            yield from map(b"".join, zip(*pieces, strict=True))


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def CsvFilesToExamples(  # noqa: N802 - used like a PTransform class
    pipeline: beam.Pipeline, files: list[str], schema_types: dict[str, int] | None = None
) -> beam.pvalue.PCollection:
    """Serialized tf.Examples of every row of `files`, which must share one header.

    Args:
      pipeline: the Beam pipeline.
      files: CSV files with one header line each.
      schema_types: column types from the schema (`schema_column_types`); other columns, and
        every column when None, are inferred from the values.
    """
    paths = pipeline | "CreateFilenames" >> beam.Create(files)
    types = (
        paths
        | "InferTypes" >> beam.ParDo(_InferFileTypes(schema_types or {}))
        | "MergeTypes" >> beam.CombineGlobally(_MergeTypes())
    )
    return paths | "Encode" >> beam.ParDo(_EncodeExamples(), beam.pvalue.AsSingleton(types))

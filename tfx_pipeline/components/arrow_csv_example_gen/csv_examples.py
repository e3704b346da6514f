"""CSV files to serialized tf.Examples with Arrow and C++, in batches: the same examples as TFX's CSV executor.

TFX's own CSV executor builds every tf.Example cell by cell in Python (and infers column types in
a second pass over every parsed row). Here Arrow parses each file in blocks and tfx-bsl's C++
coder encodes whole batches, with TFX's contract: a header line per file, one global column
type per column inferred from all files (int, else float, else string), an empty cell written as
a feature with no values. No TFX: `CsvFilesToExamples` is a plain Beam transform.
"""

import itertools
from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa
import tensorflow as tf
from pyarrow import compute, csv
from tfx_bsl.coders import example_coder

# Column types from narrowest to widest; a split's column takes the widest any file needs.
NULL, INT, FLOAT, STRING = 0, 1, 2, 3
ARROW_TYPES = {INT: pa.int64(), FLOAT: pa.float32(), STRING: pa.binary()}
# Bytes of CSV Arrow parses per batch: bounds memory per worker whatever the file size.
BLOCK_BYTES = 8 << 20


def _read_blocks(path: str) -> Iterable[pa.RecordBatch]:
    """The file's rows as batches of string columns; only an empty cell counts as missing.

    A malformed file raises ValueError naming it (Arrow's own message names no file).
    """
    try:
        names = _header_names(path)
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
        raise ValueError(f"cannot read CSV file {path}: {error}") from None


def _open(path: str) -> pa.NativeFile:
    """Local files stream from disk; remote ones (gs://) are read whole through TensorFlow's."""
    if "://" not in path:
        return pa.OSFile(path)
    with tf.io.gfile.GFile(path, "rb") as handle:
        return pa.BufferReader(handle.read())


def _header_names(path: str) -> list[str]:
    with tf.io.gfile.GFile(path, "rb") as handle:
        table = csv.read_csv(
            pa.py_buffer(handle.readline()),
            read_options=csv.ReadOptions(autogenerate_column_names=False),
        )
    return table.column_names


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


class _InferFileTypes(beam.DoFn):
    def process(self, path: str) -> Iterable[tuple[tuple[str, ...], dict[str, int]]]:
        types: dict[str, int] = {}
        names: tuple[str, ...] = ()
        for batch in _read_blocks(path):
            names = tuple(batch.schema.names)
            for name, values in zip(names, batch.columns, strict=True):
                types[name] = max(types.get(name, NULL), column_type(values))
        yield names, types


class _MergeTypes(beam.CombineFn):
    """Widest type per column over all files; every file must have the same header."""

    def create_accumulator(self) -> tuple[tuple[str, ...] | None, dict[str, int]]:
        return None, {}

    def add_input(self, accumulator, file_types):  # noqa: ANN001, ANN201 - Beam's signature
        return self.merge_accumulators([accumulator, file_types])

    def merge_accumulators(self, accumulators):  # noqa: ANN001, ANN201
        names, merged = None, {}
        for file_names, types in accumulators:
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
        return names, merged

    def extract_output(self, accumulator):  # noqa: ANN001, ANN201
        return accumulator[1]


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
    pipeline: beam.Pipeline, files: list[str]
) -> beam.pvalue.PCollection:
    """Serialized tf.Examples of every row of `files`, which must share one header."""
    paths = pipeline | "CreateFilenames" >> beam.Create(files)
    types = (
        paths
        | "InferTypes" >> beam.ParDo(_InferFileTypes())
        | "MergeTypes" >> beam.CombineGlobally(_MergeTypes())
    )
    return paths | "Encode" >> beam.ParDo(_EncodeExamples(), beam.pvalue.AsSingleton(types))

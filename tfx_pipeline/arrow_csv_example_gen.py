"""A CsvExampleGen executor that parses CSV with Arrow and encodes tf.Examples in C++, in batches.

TFX's own CSV executor builds every tf.Example cell by cell in Python (and infers column types
in a second pass over every parsed row), which makes it the slowest step of the pipeline on
large spans. This executor keeps its contract: the same files (`span-{SPAN}/*` under
`input_base`), a header line per file, one global column type per column inferred from all
files of the split (int, else float, else string), an empty cell written as a feature with no
values, and the same splitting, shuffling and output format (the base executor does those).
The examples are the same; which of them land in train or eval differs (the split hashes the
serialized bytes, which list features in column order rather than sorted), at the same ratio.
"""

import os
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa
import tensorflow as tf
from pyarrow import compute, csv
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs
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
    """Local files stream from disk; remote ones (gs://) are read whole through TFX's file layer."""
    if "://" not in path:
        return pa.OSFile(path)
    with fileio.open(path, "rb") as handle:
        return pa.BufferReader(handle.read())


def _header_names(path: str) -> list[str]:
    with fileio.open(path, "rb") as handle:
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
    def setup(self) -> None:
        self._encoder = example_coder.RecordBatchToExamplesEncoder()

    def process(self, path: str, types: dict[str, int]) -> Iterable[bytes]:
        empty_columns = sorted(name for name, kind in types.items() if kind == NULL)
        # TFX writes a column empty in every row as a feature without a type, which the C++
        # encoder cannot express. Serialized protos concatenate as a merge, so appending one
        # message holding just those features gives the same example.
        suffix = tf.train.Example(
            features=tf.train.Features(feature={name: tf.train.Feature() for name in empty_columns})
        ).SerializeToString(deterministic=True)
        for batch in _read_blocks(path):
            columns, names = [], []
            for name, values in zip(batch.schema.names, batch.columns, strict=True):
                if types[name] == NULL:
                    continue
                columns.append(_as_lists(values, types[name]))
                names.append(name)
            encoded = self._encoder.encode(pa.RecordBatch.from_arrays(columns, names))
            if suffix:
                encoded = [example + suffix for example in encoded]
            yield from encoded


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _ArrowCsvToExample(  # noqa: N802 - TFX calls the PTransform factory like a class
    pipeline: beam.Pipeline, exec_properties: dict[str, Any], split_pattern: str
) -> beam.pvalue.PCollection:
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    files = sorted(fileio.glob(pattern))
    if not files:
        raise RuntimeError(f"split pattern {pattern} matches no files")
    paths = pipeline | "CreateFilenames" >> beam.Create(files)
    types = (
        paths
        | "InferTypes" >> beam.ParDo(_InferFileTypes())
        | "MergeTypes" >> (beam.CombineGlobally(_MergeTypes()))
    )
    return paths | "Encode" >> beam.ParDo(_EncodeExamples(), beam.pvalue.AsSingleton(types))


class Executor(BaseExampleGenExecutor):
    """CsvExampleGen executor: Arrow CSV parsing and C++ tf.Example encoding."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 - TFX's name
        return _ArrowCsvToExample


class ArrowCsvExampleGen(FileBasedExampleGen):
    """CsvExampleGen's interface (input_base, input_config, output_config) with this executor."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

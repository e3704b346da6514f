"""A CsvExampleGen executor that parses CSV with Arrow and encodes tf.Examples in C++, in batches.

TFX's own CSV executor builds every tf.Example cell by cell in Python (and infers column types
in a second pass over every parsed row), which makes it the slowest step of the pipeline on
large spans. This executor keeps its contract: the same files (`span-{SPAN}/*` under
`input_base`), a header line per file, one global column type per column inferred from all
files of the split (int, else float, else string), an empty cell written as a feature with no
values, the same splitting (the base executor's) and the same output format.
The examples are the same, and the same in every run; which of them land in train or eval
differs from TFX's executor (the split hashes the serialized bytes, which here are one message
per feature rather than one sorted map), at the same ratio.

Each split is shuffled on its way out, as TFX does, but in bounded memory: TFX's Reshuffle is
held whole in memory by Beam's in-process runner (2.8 GB for a 1M-row span). Here examples are
scattered by hash into buckets of temporary files, and each bucket is then read, permuted and
written as one gzipped shard, so memory holds one bucket (about 60 MB) at a time.
"""

import hashlib
import itertools
import math
import os
import uuid
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import tensorflow as tf
from apache_beam.transforms import window
from apache_beam.utils import windowed_value
from pyarrow import compute, csv
from tfx.components.example_gen import utils, write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.util import examples_utils
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils
from tfx_bsl.coders import example_coder

# Column types from narrowest to widest; a split's column takes the widest any file needs.
NULL, INT, FLOAT, STRING = 0, 1, 2, 3
ARROW_TYPES = {INT: pa.int64(), FLOAT: pa.float32(), STRING: pa.binary()}
# Bytes of CSV Arrow parses per batch: bounds memory per worker whatever the file size.
BLOCK_BYTES = 8 << 20
# CSV bytes per shuffle bucket. A serialized example is about 3.5 times its CSV row, so a bucket
# shuffled in memory holds about 60 MB of examples.
CSV_BYTES_PER_SHUFFLE_BUCKET = 16 << 20
# Scratch folder for the scattered buckets, inside the output artifact (removed when done; TFX
# removes a failed execution's outputs with it).
SHUFFLE_SCRATCH = ".shuffle-scratch"
# The output shards' name, as TFX's own ExampleGen names them.
SHARD_PREFIX = write_split.DEFAULT_TF_RECORD_FILE_NAME


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


def shuffle_bucket(example: bytes, num_buckets: int) -> int:
    """A bucket from a hash independent of the train/eval split's (which is sha256)."""
    digest = hashlib.blake2b(example, digest_size=8).digest()
    return int.from_bytes(digest, "little") % num_buckets


def _shard_path(split_uri: str, bucket: int, num_buckets: int) -> str:
    return os.path.join(split_uri, f"{SHARD_PREFIX}-{bucket:05d}-of-{num_buckets:05d}.gz")


def shuffle_bucket_count(csv_bytes: int) -> int:
    return max(1, math.ceil(csv_bytes / CSV_BYTES_PER_SHUFFLE_BUCKET))


class _ScatterToBuckets(beam.DoFn):
    """Appends each example to its bucket's scratch file; emits (bucket, file) per bundle."""

    def __init__(self, scratch_dir: str, num_buckets: int):
        self._scratch_dir = scratch_dir
        self._num_buckets = num_buckets

    def start_bundle(self) -> None:
        self._bundle = uuid.uuid4().hex
        self._writers: dict[int, tuple[str, tf.io.TFRecordWriter]] = {}

    def process(self, example: bytes) -> None:
        bucket = shuffle_bucket(example, self._num_buckets)
        if bucket not in self._writers:
            path = os.path.join(self._scratch_dir, f"bucket-{bucket:05d}-{self._bundle}")
            self._writers[bucket] = path, tf.io.TFRecordWriter(path)
        self._writers[bucket][1].write(example)

    def finish_bundle(self) -> Iterable[windowed_value.WindowedValue]:
        for bucket, (path, writer) in sorted(self._writers.items()):
            writer.close()
            yield windowed_value.WindowedValue(
                (bucket, path), window.GlobalWindow().max_timestamp(), [window.GlobalWindow()]
            )


class _WriteShuffledShard(beam.DoFn):
    """Reads one bucket whole, permutes it (seeded by the bucket) and writes it as a gzip shard."""

    def __init__(self, split_uri: str, num_buckets: int):
        self._split_uri = split_uri
        self._num_buckets = num_buckets

    def process(self, bucket_files: tuple[int, Iterable[str]]) -> Iterable[str]:
        bucket, paths = bucket_files
        examples: list[bytes] = []
        for batch in tf.data.TFRecordDataset(sorted(paths)).batch(8192).as_numpy_iterator():
            examples.extend(batch)
        order = np.random.default_rng(bucket).permutation(len(examples))
        shard = _shard_path(self._split_uri, bucket, self._num_buckets)
        with tf.io.TFRecordWriter(shard, tf.io.TFRecordOptions(compression_type="GZIP")) as out:
            for index in order:
                out.write(examples[index])
        yield shard


@beam.ptransform_fn
def _ShuffleAndWrite(  # noqa: N802 - used like a PTransform class
    examples: beam.pvalue.PCollection, split_uri: str, scratch_dir: str, num_buckets: int
) -> beam.pvalue.PCollection:
    return (
        examples
        | "Scatter" >> beam.ParDo(_ScatterToBuckets(scratch_dir, num_buckets))
        | "GroupBuckets" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(_WriteShuffledShard(split_uri, num_buckets))
    )


def _input_bytes(input_base: str, input_config: example_gen_pb2.Input) -> int:
    return sum(
        fileio.stat(path).length
        for split in input_config.splits
        for path in fileio.glob(os.path.join(input_base, split.pattern))
    )


class Executor(BaseExampleGenExecutor):
    """CsvExampleGen executor: Arrow CSV parsing and C++ tf.Example encoding."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 - TFX's name
        return _ArrowCsvToExample

    def Do(
        self,
        input_dict: dict[str, list[Any]],
        output_dict: dict[str, list[Any]],
        exec_properties: dict[str, Any],
    ) -> None:
        """TFX's ExampleGen Do, with the bounded-memory shuffle instead of WriteSplit's Reshuffle."""
        self._log_startup(input_dict, output_dict, exec_properties)
        input_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input()
        )
        output_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], example_gen_pb2.Output()
        )
        file_format = exec_properties.get(
            standard_component_specs.OUTPUT_FILE_FORMAT_KEY, example_gen_pb2.FILE_FORMAT_UNSPECIFIED
        )
        if file_format not in (
            example_gen_pb2.FILE_FORMAT_UNSPECIFIED,
            example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        ):
            raise ValueError(
                f"output_file_format {file_format} is not supported: this executor writes "
                "gzipped TFRecords only"
            )
        output_key = standard_component_specs.EXAMPLES_KEY
        examples = artifact_utils.get_single_instance(output_dict[output_key])
        examples.split_names = artifact_utils.encode_split_names(
            utils.generate_output_split_names(input_config, output_config)
        )
        num_buckets = shuffle_bucket_count(
            _input_bytes(exec_properties[standard_component_specs.INPUT_BASE_KEY], input_config)
        )
        scratch = os.path.join(examples.uri, SHUFFLE_SCRATCH)
        split_uris = []
        with self._make_beam_pipeline() as pipeline:
            splits = self.GenerateExamplesByBeam(pipeline, exec_properties)
            for name, split in splits.items():
                split_uri = artifact_utils.get_split_uri(output_dict[output_key], name)
                scratch_dir = os.path.join(scratch, name)
                for folder in (split_uri, scratch_dir):
                    fileio.makedirs(folder)
                _ = split | f"WriteSplit[{name}]" >> _ShuffleAndWrite(
                    split_uri, scratch_dir, num_buckets
                )
                split_uris.append(split_uri)
        fileio.rmtree(scratch)
        for split_uri in split_uris:
            # A split no example hashed into still gets one (empty) shard, as TFX's writer does,
            # so readers find a file and the data gate can report the empty split.
            if not fileio.glob(os.path.join(split_uri, f"{SHARD_PREFIX}-*")):
                empty = _shard_path(split_uri, 0, 1)
                tf.io.TFRecordWriter(empty, tf.io.TFRecordOptions(compression_type="GZIP")).close()
        payload_format = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
        if payload_format:
            examples_utils.set_payload_format(examples, payload_format)
        if file_format:
            examples_utils.set_file_format(examples, write_split.to_file_format_str(file_format))


class ArrowCsvExampleGen(FileBasedExampleGen):
    """CsvExampleGen's interface (input_base, input_config, output_config) with this executor."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

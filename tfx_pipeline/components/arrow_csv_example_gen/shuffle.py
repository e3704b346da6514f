"""Each split shuffled on its way out in bounded memory, written as gzip TFRecord shards.

TFX's ExampleGen shuffles with Beam's Reshuffle, which Beam's in-process runner holds whole in
memory (2.8 GB for a 1M-row span). Here examples are scattered by hash into buckets of scratch
files, and each bucket is then read, permuted and written as one gzipped shard, so memory holds
one bucket (about 60 MB) at a time. No TFX: `ShuffleAndWrite` is a plain Beam transform.
"""

import hashlib
import math
import os
import uuid
from collections.abc import Iterable

import apache_beam as beam
import numpy as np
import tensorflow as tf
from apache_beam.transforms import window
from apache_beam.utils import windowed_value

# CSV bytes per shuffle bucket. A serialized example is about 3.5 times its CSV row, so a bucket
# shuffled in memory holds about 60 MB of examples.
CSV_BYTES_PER_SHUFFLE_BUCKET = 16 << 20
# The output shards' name, as TFX's own ExampleGen names them (write_split's
# DEFAULT_TF_RECORD_FILE_NAME; a test holds the two together).
SHARD_PREFIX = "data_tfrecord"


def shuffle_bucket(example: bytes, num_buckets: int) -> int:
    """A bucket from a hash independent of the train/eval split's (which is sha256)."""
    digest = hashlib.blake2b(example, digest_size=8).digest()
    return int.from_bytes(digest, "little") % num_buckets


def shard_path(split_uri: str, bucket: int, num_buckets: int) -> str:
    """Where bucket `bucket` of `num_buckets` is written, named as TFX names its shards."""
    return os.path.join(split_uri, f"{SHARD_PREFIX}-{bucket:05d}-of-{num_buckets:05d}.gz")


def shuffle_bucket_count(csv_bytes: int) -> int:
    """How many buckets keep each one near CSV_BYTES_PER_SHUFFLE_BUCKET of input."""
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
        shard = shard_path(self._split_uri, bucket, self._num_buckets)
        with tf.io.TFRecordWriter(shard, tf.io.TFRecordOptions(compression_type="GZIP")) as out:
            for index in order:
                out.write(examples[index])
        yield shard


@beam.ptransform_fn
def ShuffleAndWrite(  # noqa: N802 - used like a PTransform class
    examples: beam.pvalue.PCollection, split_uri: str, scratch_dir: str, num_buckets: int
) -> beam.pvalue.PCollection:
    """Writes `examples` shuffled into `num_buckets` gzip shards under `split_uri`."""
    return (
        examples
        | "Scatter" >> beam.ParDo(_ScatterToBuckets(scratch_dir, num_buckets))
        | "GroupBuckets" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(_WriteShuffledShard(split_uri, num_buckets))
    )


def write_empty_shard(split_uri: str) -> None:
    """One empty shard, so readers of a split no example hashed into still find a file."""
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    tf.io.TFRecordWriter(shard_path(split_uri, 0, 1), options).close()

"""The Transform executor reads analyzer-cache entries as tf.Transform's own reader does."""

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from tfx_pipeline import transform_executor

RECORDS = [b"accumulator-1", b"", b"\x00\xffbinary"]


def write_entry(prefix, suffix):
    with beam.Pipeline() as pipeline:
        _ = (
            pipeline
            | beam.Create(RECORDS)
            | beam.io.WriteToTFRecord(prefix, file_name_suffix=suffix, num_shards=2)
        )
    return f"{prefix}-*-of-*"


def read_entry(pattern):
    with beam.Pipeline() as pipeline:
        records = pipeline | transform_executor.ReadCacheEntry(pattern)
        assert_that(records, equal_to(RECORDS))


def test_reads_gzip_and_plain_entries_across_shards(tmp_path):
    read_entry(write_entry(str(tmp_path / "gzip" / "0"), ".gz"))
    read_entry(write_entry(str(tmp_path / "plain" / "0"), ""))

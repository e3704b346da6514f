"""TFX's Transform executor, reading the analyzer cache of older spans without a Beam read each.

With a rolling window, Transform analyzes only the new span and takes every older span's
analyzer accumulators from the previous run's cache: one small file per span and analyzer.
tf.Transform reads each with `beam.io.ReadFromTFRecord`, several pipeline stages apiece, which
in the in-process runner cost about a second per cached span with this preprocessing_fn (12
entries per span), whatever the span's size. The files hold a few kilobytes, so this executor
reads them while the pipeline is built and hands them in with `beam.Create`: same entries, same
analysis, fewer stages. Everything else is TFX's executor.
"""

import apache_beam as beam
import tensorflow as tf
from tfx.components.transform import executor as tfx_executor


class ReadCacheEntry(beam.PTransform):
    """The records of the files matching `file_pattern` (gzip if named .gz), as a PCollection."""

    def __init__(self, file_pattern: str):
        super().__init__()
        self._file_pattern = file_pattern

    def expand(self, pipeline: beam.Pipeline) -> beam.PCollection:
        records = [
            record.numpy()
            for path in sorted(tf.io.gfile.glob(self._file_pattern))
            for record in tf.data.TFRecordDataset(
                path, compression_type="GZIP" if path.endswith(".gz") else ""
            )
        ]
        return pipeline | "Create" >> beam.Create(records, reshuffle=False)


class Executor(tfx_executor.Executor):
    """TFX's Transform executor with the analyzer cache read by `ReadCacheEntry`."""

    @staticmethod
    def _GetCacheSource() -> type[beam.PTransform]:  # noqa: N802 - TFX's name
        return ReadCacheEntry

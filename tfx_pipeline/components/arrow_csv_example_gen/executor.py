"""The ArrowCsvExampleGen executor: TFX's ExampleGen steps around `csv_examples` and `shuffle`.

It keeps CsvExampleGen's contract: the same files (the split patterns under `input_base`), the
same examples, the same splitting (the base executor's hash split) and the same output format.
Which examples land in train or eval differs from TFX's executor (the split hashes the serialized
bytes, which here are one message per feature rather than one sorted map), at the same ratio;
features are serialized in name order, so the split is the same in every process.

With a `schema` input (the curated schema, from ImportSchemaGen) the columns it types are parsed
as it declares instead of being inferred per span.
"""

import os
from typing import Any

import apache_beam as beam
from tfx.components.example_gen import utils, write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.util import examples_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from tfx_pipeline.components.arrow_csv_example_gen import shuffle
from tfx_pipeline.components.arrow_csv_example_gen.csv_examples import (
    CsvFilesToExamples,
    schema_column_types,
)

# Scratch folder for the scattered buckets, inside the output artifact (removed when done; TFX
# removes a failed execution's outputs with it).
SHUFFLE_SCRATCH = ".shuffle-scratch"
# The optional input channel holding the curated schema (TFX's standard key, "schema").
SCHEMA_KEY = standard_component_specs.SCHEMA_KEY
# Where Do hands the schema's column types to the PTransform, beside TFX's own private
# `_beam_pipeline_args` in exec_properties.
SCHEMA_TYPES_PROPERTY = "_schema_column_types"


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
    schema_types = exec_properties.get(SCHEMA_TYPES_PROPERTY)
    return pipeline | "CsvToExamples" >> CsvFilesToExamples(files, schema_types)


def schema_types_of(input_dict: dict[str, list[Any]]) -> dict[str, int] | None:
    """The column types the `schema` input declares; None without one (types are inferred)."""
    if not input_dict.get(SCHEMA_KEY):
        return None
    uri = artifact_utils.get_single_uri(input_dict[SCHEMA_KEY])
    return schema_column_types(io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(uri)))


def _input_bytes(input_base: str, input_config: example_gen_pb2.Input) -> int:
    return sum(
        fileio.stat(path).length
        for split in input_config.splits
        for path in fileio.glob(os.path.join(input_base, split.pattern))
    )


class Executor(BaseExampleGenExecutor):
    """CsvExampleGen executor: Arrow CSV parsing, C++ tf.Example encoding, bounded shuffle."""

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
        num_buckets = shuffle.shuffle_bucket_count(
            _input_bytes(exec_properties[standard_component_specs.INPUT_BASE_KEY], input_config)
        )
        scratch = os.path.join(examples.uri, SHUFFLE_SCRATCH)
        split_uris = []
        exec_properties = {**exec_properties, SCHEMA_TYPES_PROPERTY: schema_types_of(input_dict)}
        with self._make_beam_pipeline() as pipeline:
            splits = self.GenerateExamplesByBeam(pipeline, exec_properties)
            for name, split in splits.items():
                split_uri = artifact_utils.get_split_uri(output_dict[output_key], name)
                scratch_dir = os.path.join(scratch, name)
                for folder in (split_uri, scratch_dir):
                    fileio.makedirs(folder)
                _ = split | f"WriteSplit[{name}]" >> shuffle.ShuffleAndWrite(
                    split_uri, scratch_dir, num_buckets
                )
                split_uris.append(split_uri)
        fileio.rmtree(scratch)
        for split_uri in split_uris:
            # A split no example hashed into still gets one (empty) shard, as TFX's writer does,
            # so readers find a file and the data gate can report the empty split.
            if not fileio.glob(os.path.join(split_uri, f"{shuffle.SHARD_PREFIX}-*")):
                shuffle.write_empty_shard(split_uri)
        payload_format = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
        if payload_format:
            examples_utils.set_payload_format(examples, payload_format)
        if file_format:
            examples_utils.set_file_format(examples, write_split.to_file_format_str(file_format))

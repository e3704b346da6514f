"""ArrowCsvExampleGen, the TFX component: CsvExampleGen's interface with the Arrow executor, plus an optional schema."""

from tfx import types
from tfx.components.example_gen import utils
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import component_spec, standard_artifacts, standard_component_specs

from tfx_pipeline.components.arrow_csv_example_gen.executor import SCHEMA_KEY, Executor


class ArrowCsvExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
    """FileBasedExampleGen's spec with an optional `schema` input: the types to parse columns as."""

    INPUTS = {
        SCHEMA_KEY: component_spec.ChannelParameter(type=standard_artifacts.Schema, optional=True)
    }


class ArrowCsvExampleGen(FileBasedExampleGen):
    """CsvExampleGen's interface (input_base, input_config, output_config) with this executor.

    `schema` (optional): a Schema channel, e.g. ImportSchemaGen's curated schema. Columns it
    types are parsed as it declares (a value that does not parse fails the run naming the
    column, file and line); without it every column's type is inferred, as CsvExampleGen does.
    """

    SPEC_CLASS = ArrowCsvExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(
        self,
        input_base: str,
        input_config: example_gen_pb2.Input | None = None,
        output_config: example_gen_pb2.Output | None = None,
        range_config: range_config_pb2.RangeConfig | None = None,
        schema: types.BaseChannel | None = None,
    ):
        # FileBasedExampleGen.__init__ builds its own spec class, which has no inputs; the
        # defaults are its own.
        input_config = input_config or utils.make_default_input_config()
        spec = ArrowCsvExampleGenSpec(
            input_base=input_base,
            input_config=input_config,
            output_config=output_config or utils.make_default_output_config(input_config),
            range_config=range_config,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            examples=types.Channel(type=standard_artifacts.Examples),
            schema=schema,
        )
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)

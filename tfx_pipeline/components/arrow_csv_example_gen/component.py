"""ArrowCsvExampleGen, the TFX component: CsvExampleGen's interface with the Arrow executor."""

from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from tfx_pipeline.components.arrow_csv_example_gen.executor import Executor


class ArrowCsvExampleGen(FileBasedExampleGen):
    """CsvExampleGen's interface (input_base, input_config, output_config) with this executor."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

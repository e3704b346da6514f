"""InfraValidator, the TFX component, with our executor and two more settings.

TFX's InfraValidator starts TF Serving only through Docker or Kubernetes. This one keeps its
spec (model, examples, serving_spec, validation_spec, request_spec; an InfraBlessing out, with the
warm model inside when request_spec.make_warmup is set, which the Pusher pushes) and adds:

  baseline_model    the last blessed model, served beside the candidate for the latency budget
  server            which model server runs: `auto`, `tensorflow_model_server` or `python`
  max_p99_increase  how much slower than the baseline the candidate's p99 latency may be
"""

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import infra_validator_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from tfx_pipeline.components.infra_validator import executor

BASELINE_MODEL_KEY = "baseline_model"
SERVER_KEY = "server"
MAX_P99_INCREASE_KEY = "max_p99_increase"


class InfraValidatorSpec(standard_component_specs.InfraValidatorSpec):
    """TFX's InfraValidator spec plus the baseline model and the two settings."""

    PARAMETERS = {
        **standard_component_specs.InfraValidatorSpec.PARAMETERS,
        SERVER_KEY: ExecutionParameter(type=str),
        MAX_P99_INCREASE_KEY: ExecutionParameter(type=float),
    }
    INPUTS = {
        **standard_component_specs.InfraValidatorSpec.INPUTS,
        BASELINE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = standard_component_specs.InfraValidatorSpec.OUTPUTS


class InfraValidator(base_component.BaseComponent):
    """Proves the candidate loads, answers correctly, and is fast enough in a model server."""

    SPEC_CLASS = InfraValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        model: types.BaseChannel,
        examples: types.BaseChannel,
        serving_spec: infra_validator_pb2.ServingSpec,
        request_spec: infra_validator_pb2.RequestSpec,
        validation_spec: infra_validator_pb2.ValidationSpec,
        server: str,
        max_p99_increase: float,
        baseline_model: types.BaseChannel | None = None,
    ):
        spec = InfraValidatorSpec(
            model=model,
            examples=examples,
            baseline_model=baseline_model,
            blessing=types.Channel(type=standard_artifacts.InfraBlessing),
            serving_spec=serving_spec,
            request_spec=request_spec,
            validation_spec=validation_spec,
            server=server,
            max_p99_increase=max_p99_increase,
        )
        super().__init__(spec=spec)

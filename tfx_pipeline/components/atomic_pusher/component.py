"""Pusher, the TFX component, with our executor and what the model card reports as inputs.

TFX's Pusher spec (model, model_blessing, infra_blessing, push_destination, custom_config; a
PushedModel out) plus optional inputs, so that MLMD lineage links each pushed version to every
artifact its model card (model_card.py) describes:

  evaluation       the Evaluator's ModelEvaluation: metrics, intervals, the blessing judgement
  hyperparameters  the HyperParameters the Trainer received
  statistics       the ExampleStatistics of this run's span
  schema           the Schema the model was trained with
  examples         the Examples the Trainer read (one artifact per span)

and two settings the card records: card_pipeline_name and data_root.
"""

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from tfx_pipeline.components.atomic_pusher import executor
from tfx_pipeline.components.atomic_pusher.executor import (
    DATA_ROOT_KEY,
    EVALUATION_KEY,
    EXAMPLES_KEY,
    HYPERPARAMETERS_KEY,
    PIPELINE_NAME_KEY,
    SCHEMA_KEY,
    STATISTICS_KEY,
)


class PusherSpec(standard_component_specs.PusherSpec):
    """TFX's Pusher spec plus the model card's inputs and settings."""

    PARAMETERS = {
        **standard_component_specs.PusherSpec.PARAMETERS,
        PIPELINE_NAME_KEY: ExecutionParameter(type=str, optional=True),
        DATA_ROOT_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation, optional=True),
        HYPERPARAMETERS_KEY: ChannelParameter(
            type=standard_artifacts.HyperParameters, optional=True
        ),
        STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics, optional=True),
        SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema, optional=True),
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples, optional=True),
    }
    OUTPUTS = standard_component_specs.PusherSpec.OUTPUTS


class Pusher(base_component.BaseComponent):
    """Pushes a blessed model as a TF Serving version, whole and once, with its model card."""

    SPEC_CLASS = PusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        model: types.BaseChannel,
        model_blessing: types.BaseChannel,
        infra_blessing: types.BaseChannel,
        push_destination: pusher_pb2.PushDestination,
        card_pipeline_name: str | None = None,
        data_root: str | None = None,
        evaluation: types.BaseChannel | None = None,
        hyperparameters: types.BaseChannel | None = None,
        statistics: types.BaseChannel | None = None,
        schema: types.BaseChannel | None = None,
        examples: types.BaseChannel | None = None,
    ):
        spec = PusherSpec(
            model=model,
            model_blessing=model_blessing,
            infra_blessing=infra_blessing,
            evaluation=evaluation,
            hyperparameters=hyperparameters,
            statistics=statistics,
            schema=schema,
            examples=examples,
            push_destination=push_destination,
            card_pipeline_name=card_pipeline_name,
            data_root=data_root,
            pushed_model=types.Channel(type=standard_artifacts.PushedModel),
        )
        super().__init__(spec=spec)

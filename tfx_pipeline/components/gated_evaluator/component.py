"""GatedEvaluator, the TFX component: TFX's Evaluator with one more exec property, the rules.

Same inputs and outputs as TFX's Evaluator (so the Pusher, the resolvers and the run summary
read it unchanged); its executor blesses by `BlessingRules` judged on TFMA's confidence
intervals instead of TFMA's point-estimate thresholds. The rules travel as one JSON string, a
plain parameter every orchestrator (local, Kubeflow v2 / Vertex, Airflow) compiles.
"""

import tensorflow_model_analysis as tfma
from tfx import types
from tfx.components.evaluator import component as evaluator_component
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import component_spec, standard_artifacts, standard_component_specs

from tfx_pipeline.components.gated_evaluator.executor import BLESSING_RULES_KEY, Executor
from tfx_pipeline.components.gated_evaluator.rules import BlessingRules


class GatedEvaluatorSpec(standard_component_specs.EvaluatorSpec):
    """The Evaluator's spec plus `blessing_rules` (BlessingRules as JSON)."""

    PARAMETERS = {
        **standard_component_specs.EvaluatorSpec.PARAMETERS,
        BLESSING_RULES_KEY: component_spec.ExecutionParameter(type=str),
    }


class GatedEvaluator(evaluator_component.Evaluator):
    """TFX's Evaluator whose blessing is judged on confidence intervals (see executor.py)."""

    SPEC_CLASS = GatedEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        model: types.BaseChannel,
        baseline_model: types.BaseChannel,
        eval_config: tfma.EvalConfig,
        blessing_rules: BlessingRules,
    ):
        spec = GatedEvaluatorSpec(
            examples=examples,
            model=model,
            baseline_model=baseline_model,
            eval_config=eval_config,
            blessing_rules=blessing_rules.to_json(),
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing),
        )
        # TFX's Evaluator.__init__ builds its own spec; ours is that spec plus the rules.
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)

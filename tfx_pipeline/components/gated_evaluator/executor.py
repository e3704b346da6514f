"""TFX's Evaluator executor, judged by our rules: TFMA computes, `judge` decides, TFX's blessing.

TFMA's own threshold validation compares point estimates only (metrics_validator: `float(metric)`),
so the eval config carries no thresholds: TFX's executor only evaluates (metrics with jackknife
intervals, written as usual), then `judge.judge` applies the rules of the `blessing_rules` exec
property, `results.write` replaces TFMA's validation result with the judgement's, and the
ModelBlessing is written exactly as TFX's Evaluator writes it (BLESSED or NOT_BLESSED file, the
`blessed`, model and baseline custom properties), which the Pusher and both baseline resolvers
(ours and TFX's LatestBlessedModelStrategy) read.
"""

import os
from typing import Any

from absl import logging
from tfx import types
from tfx.components.evaluator import constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils

from tfx_pipeline.components.gated_evaluator import judge, results
from tfx_pipeline.components.gated_evaluator.rules import BlessingRules

BLESSING_RULES_KEY = "blessing_rules"


class Executor(evaluator_executor.Executor):
    """Evaluates with TFX's Evaluator executor, then blesses by `BlessingRules`."""

    def Do(  # noqa: N802 - TFX's executor interface
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        rules = BlessingRules.from_json(exec_properties[BLESSING_RULES_KEY])
        super().Do(input_dict, output_dict, exec_properties)

        evaluation_uri = artifact_utils.get_single_uri(
            output_dict[standard_component_specs.EVALUATION_KEY]
        )
        baseline = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
        slices, gaps = results.read_slices(evaluation_uri)
        judgement = judge.judge(rules, slices, gaps, has_baseline=bool(baseline))
        results.write(evaluation_uri, judgement, has_baseline=bool(baseline))
        for failure in judgement.failures():
            logging.info("Blessing check failed: %s", failure.reason())
        write_blessing(
            artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY]),
            model=input_dict[standard_component_specs.MODEL_KEY][0],
            baseline=baseline[0] if baseline else None,
            component_id=exec_properties.get("current_component_id"),
            blessed=judgement.blessed,
        )


def write_blessing(
    blessing: types.Artifact,
    model: types.Artifact,
    baseline: types.Artifact | None,
    component_id: str | None,
    blessed: bool,
) -> None:
    """The ModelBlessing as TFX's Evaluator executor writes it (its file and custom properties)."""
    blessing.set_string_custom_property(
        constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri
    )
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    if baseline is not None:
        blessing.set_string_custom_property(
            constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baseline.uri
        )
        blessing.set_int_custom_property(
            constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, baseline.id
        )
    if component_id:
        blessing.set_string_custom_property("component_id", component_id)
    # Exactly one of the two files: TFX's executor wrote one already if the eval config held
    # TFMA thresholds of its own.
    for name in (constants.BLESSED_FILE_NAME, constants.NOT_BLESSED_FILE_NAME):
        if fileio.exists(os.path.join(blessing.uri, name)):
            fileio.remove(os.path.join(blessing.uri, name))
    file_name = constants.BLESSED_FILE_NAME if blessed else constants.NOT_BLESSED_FILE_NAME
    io_utils.write_string_file(os.path.join(blessing.uri, file_name), "")
    blessing.set_int_custom_property(
        constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        constants.BLESSED_VALUE if blessed else constants.NOT_BLESSED_VALUE,
    )
    logging.info("Blessing result %s written to %s.", blessed, blessing.uri)

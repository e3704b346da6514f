"""Resolver strategy for the Evaluator's baseline: the latest blessed model that is not the candidate.

TFX's LatestBlessedModelStrategy returns the latest blessed model even when that is the very model
being evaluated (a cached Trainer hands the same model to the next run). The Evaluator then reruns
against itself and the Pusher pushes an identical model as a new version. Excluding the candidate
keeps an unchanged rerun fully cached and compares a new model with the previous blessed one.
"""

from typing import Any

from tfx.dsl.components.common import resolver

CANDIDATE_KEY = "candidate"
MODEL_KEY = "model"
BLESSING_KEY = "model_blessing"

# Custom properties the Evaluator writes on ModelBlessing artifacts.
_BLESSED = "blessed"
_CURRENT_MODEL_ID = "current_model_id"


class LatestBlessedBaselineStrategy(resolver.ResolverStrategy):
    """Resolves `model`/`model_blessing` to the newest blessed model other than `candidate`."""

    def resolve_artifacts(
        self, store: Any, input_dict: dict[str, list[Any]]
    ) -> dict[str, list[Any]] | None:
        candidates = list(input_dict.get(CANDIDATE_KEY, []))
        candidate_ids = {artifact.id for artifact in candidates}
        blessing_by_model_id = {
            blessing.get_int_custom_property(_CURRENT_MODEL_ID): blessing
            for blessing in input_dict.get(BLESSING_KEY, [])
            if blessing.get_int_custom_property(_BLESSED) == 1
        }
        baselines = sorted(
            (
                model
                for model in input_dict.get(MODEL_KEY, [])
                if model.id in blessing_by_model_id and model.id not in candidate_ids
            ),
            key=lambda model: model.id,
            reverse=True,
        )
        baseline = baselines[:1]
        return {
            CANDIDATE_KEY: candidates,
            MODEL_KEY: baseline,
            BLESSING_KEY: [blessing_by_model_id[model.id] for model in baseline],
        }

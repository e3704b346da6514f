"""Resolver strategy for "the newest, if there is one": the newest artifact of each channel, or none.

TFX's LatestArtifactStrategy returns None when a channel has no artifact yet, which fails the
resolver node: a first run with `--no-tune` (no earlier search) or the first run of a training
window recorded a FAILED execution, and its report said FAILED, although the Trainer went on with
the model defaults as designed. This strategy resolves such a channel to no artifact, a
successful resolution that the optional input it feeds reads as "none".
"""

from typing import Any

from tfx.dsl.components.common import resolver


class NewestOrNoneStrategy(resolver.ResolverStrategy):
    """Resolves every channel to its newest artifact (highest MLMD id), or to none."""

    def resolve_artifacts(
        self, store: Any, input_dict: dict[str, list[Any]]
    ) -> dict[str, list[Any]] | None:
        del store  # the channels' artifacts are all it reads
        return {
            key: sorted(artifacts, key=lambda artifact: artifact.id, reverse=True)[:1]
            for key, artifacts in input_dict.items()
        }

"""The resolver nodes of the pipeline, in two families; `create_pipeline` picks one, once.

Lineage-aware (`LineageResolvers`, the default): our strategies follow MLMD lineage. The drift
baseline is the previous span's statistics, the evaluation baseline the newest blessed model
other than the candidate (so an unchanged rerun is fully cached and pushes nothing), the
rolling training window is available, and a channel with nothing yet (no earlier search) resolves
to no artifact instead of failing the node.

Portable (`PortableResolvers`, for Vertex AI Pipelines): Kubeflow Pipelines v2 compiles only TFX's
stock LatestArtifactStrategy and LatestBlessedModelStrategy. The drift baseline is the newest
statistics of any earlier run (resolved before this run's StatisticsGen starts), the evaluation
baseline can be the candidate itself when the Trainer was cached (the Pusher still never pushes a
model identical to one already served), there is no training window, and a resolver with nothing
to resolve yet is recorded as failed (its consumers' inputs are optional: the run goes on).
"""

from typing import Protocol

from tfx.dsl.components.base import base_node
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.types import Channel, standard_artifacts

from tfx_pipeline import node_ids
from tfx_pipeline.resolvers.latest_blessed_baseline import LatestBlessedBaselineStrategy
from tfx_pipeline.resolvers.newest import NewestOrNoneStrategy
from tfx_pipeline.resolvers.previous_span_statistics import PreviousSpanStatisticsStrategy
from tfx_pipeline.resolvers.span_window import SpanWindowStrategy


class ResolverFamily(Protocol):
    """What the pipeline asks of a family of resolvers."""

    supports_span_window: bool

    def previous_statistics(
        self, example_gen: base_node.BaseNode, statistics_gen: base_node.BaseNode
    ) -> Resolver:
        """The statistics the new span's drift is measured against (output key `statistics`)."""

    def baseline(self, trainer: base_node.BaseNode) -> Resolver:
        """The model the candidate is evaluated against (output keys `model`, `model_blessing`)."""

    def span_window(self, example_gen: base_node.BaseNode, num_spans: int) -> Resolver:
        """The newest `num_spans` accepted spans (output key `examples`)."""

    def hyperparameters(self) -> Resolver:
        """The newest searched hyperparameters, for a run that does not search (`hyperparameters`)."""

    def analyzer_cache(self) -> Resolver:
        """Transform's analysis results per span from its previous run (`cache`)."""


class _NewestResolvers:
    """The resolvers of "the newest artifact of a type", with the family's `newest_strategy`."""

    newest_strategy: type

    def hyperparameters(self) -> Resolver:
        return Resolver(
            strategy_class=self.newest_strategy,
            hyperparameters=Channel(type=standard_artifacts.HyperParameters),
        ).with_id(node_ids.HYPERPARAMETERS_RESOLVER)

    def analyzer_cache(self) -> Resolver:
        return Resolver(
            strategy_class=self.newest_strategy,
            cache=Channel(type=standard_artifacts.TransformCache),
        ).with_id(node_ids.ANALYZER_CACHE_RESOLVER)


class LineageResolvers(_NewestResolvers):
    """Our lineage-following strategies: exact baselines and the rolling window."""

    supports_span_window = True
    # None found (no earlier search) resolves to none: the Trainer uses the model defaults.
    newest_strategy = NewestOrNoneStrategy

    def previous_statistics(
        self, example_gen: base_node.BaseNode, statistics_gen: base_node.BaseNode
    ) -> Resolver:
        del statistics_gen  # resolved from lineage: no ordering against this run's statistics
        return Resolver(
            strategy_class=PreviousSpanStatisticsStrategy,
            current_examples=example_gen.outputs["examples"],
            statistics=Channel(type=standard_artifacts.ExampleStatistics),
        ).with_id(node_ids.PREVIOUS_STATISTICS_RESOLVER)

    def baseline(self, trainer: base_node.BaseNode) -> Resolver:
        return Resolver(
            strategy_class=LatestBlessedBaselineStrategy,
            candidate=trainer.outputs["model"],
            model=Channel(type=standard_artifacts.Model),
            model_blessing=Channel(type=standard_artifacts.ModelBlessing),
        ).with_id(node_ids.BASELINE_RESOLVER)

    def span_window(self, example_gen: base_node.BaseNode, num_spans: int) -> Resolver:
        return Resolver(
            strategy_class=SpanWindowStrategy,
            config={"num_spans": num_spans},
            current_examples=example_gen.outputs["examples"],
            examples=Channel(type=standard_artifacts.Examples),
        ).with_id(node_ids.SPAN_WINDOW_RESOLVER)


class PortableResolvers(_NewestResolvers):
    """TFX's stock strategies only, which Kubeflow Pipelines v2 (Vertex) can compile."""

    supports_span_window = False
    # Fails its node when nothing was recorded yet (no earlier search); the inputs it feeds are
    # optional, so the run goes on (the Trainer with the model defaults).
    newest_strategy = LatestArtifactStrategy

    def previous_statistics(
        self, example_gen: base_node.BaseNode, statistics_gen: base_node.BaseNode
    ) -> Resolver:
        del example_gen
        # The newest statistics of an earlier run, resolved before this run's StatisticsGen
        # starts so it can never be this span's own. Not lineage-aware: a rerun of the same span
        # compares the span with itself, which finds no drift.
        resolver = Resolver(
            strategy_class=LatestArtifactStrategy,
            statistics=Channel(type=standard_artifacts.ExampleStatistics),
        ).with_id(node_ids.PREVIOUS_STATISTICS_RESOLVER)
        statistics_gen.add_upstream_node(resolver)
        return resolver

    def baseline(self, trainer: base_node.BaseNode) -> Resolver:
        del trainer  # the stock strategy cannot exclude the candidate
        return Resolver(
            strategy_class=LatestBlessedModelStrategy,
            model=Channel(type=standard_artifacts.Model),
            model_blessing=Channel(type=standard_artifacts.ModelBlessing),
        ).with_id(node_ids.BASELINE_RESOLVER)

    def span_window(self, example_gen: base_node.BaseNode, num_spans: int) -> Resolver:
        raise ValueError(
            "a training window of several spans needs the lineage-following span window "
            "resolver, which Kubeflow Pipelines v2 (Vertex AI Pipelines) cannot compile"
        )


def family(portable: bool) -> ResolverFamily:
    """The portable family for Vertex AI Pipelines, else the lineage-aware one."""
    return PortableResolvers() if portable else LineageResolvers()

"""Resolver strategy: the statistics of the newest span older than the one being ingested.

The DataGate compares the new span with it (TFDV drift comparators from the schema). On the first
run, or when no older span was ingested, there is nothing to compare with and drift is not checked.
StatisticsGen does not copy the span onto its output, so the span comes from MLMD lineage: the
Examples artifact each statistics artifact was computed from.
"""

from typing import Any

from tfx.dsl.components.common import resolver

from tfx_pipeline import metadata

CURRENT_KEY = "current_examples"
STATISTICS_KEY = "statistics"


class PreviousSpanStatisticsStrategy(resolver.ResolverStrategy):
    """Resolves `statistics` to the newest ExampleStatistics of a span below the current one."""

    def resolve_artifacts(
        self, store: Any, input_dict: dict[str, list[Any]]
    ) -> dict[str, list[Any]] | None:
        current = list(input_dict.get(CURRENT_KEY, []))
        candidates = list(input_dict.get(STATISTICS_KEY, []))
        if not current or not candidates:
            return {CURRENT_KEY: current, STATISTICS_KEY: []}
        span = current[0].get_int_custom_property("span")
        spans = metadata.statistics_spans(store, [a.id for a in candidates])
        older = [a for a in candidates if spans.get(a.id, span) < span]
        previous = max(older, key=lambda a: (spans[a.id], a.id), default=None)
        return {CURRENT_KEY: current, STATISTICS_KEY: [previous] if previous else []}

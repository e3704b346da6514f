"""Resolver strategy: the rolling training window, the newest N spans that passed the data gate.

ExampleGen ingests one span per run; Transform, the Tuner and the Trainer read the window, so a
new span costs only its own ingestion, statistics and (with Transform's analyzer cache) analysis.
A span counts as accepted once a completed Transform read it: Transform runs only after the
DataGate passed, so a refused span never enters a later window. For each older span the newest
accepted Examples artifact is used (a span re-ingested after a fix replaces the earlier one).
"""

from typing import Any

from tfx.dsl.components.common import resolver

from tfx_pipeline import metadata

CURRENT_KEY = "current_examples"
EXAMPLES_KEY = "examples"


def window(current: Any, accepted: list[Any], num_spans: int) -> list[Any]:
    """`current` plus the newest accepted artifact of each of the `num_spans - 1` spans below it.

    Artifacts are TFX artifacts with a `span` custom property; the result is newest span first.
    """
    span = current.get_int_custom_property("span")
    lowest = span - num_spans + 1
    newest_by_span: dict[int, Any] = {}
    for artifact in accepted:
        other = artifact.get_int_custom_property("span")
        if lowest <= other < span and (
            other not in newest_by_span or artifact.id > newest_by_span[other].id
        ):
            newest_by_span[other] = artifact
    return [current, *(newest_by_span[s] for s in sorted(newest_by_span, reverse=True))]


class SpanWindowStrategy(resolver.ResolverStrategy):
    """Resolves `examples` to this run's span plus up to `num_spans - 1` older accepted spans."""

    def __init__(self, num_spans: int):
        if num_spans < 1:
            raise ValueError(f"num_spans must be at least 1, got {num_spans}")
        self._num_spans = num_spans

    def resolve_artifacts(
        self, store: Any, input_dict: dict[str, list[Any]]
    ) -> dict[str, list[Any]] | None:
        current = list(input_dict.get(CURRENT_KEY, []))
        if not current:
            return None  # ExampleGen produced nothing: nothing downstream can run
        newest = max(current, key=lambda a: (a.get_int_custom_property("span"), a.id))
        candidates = [a for a in input_dict.get(EXAMPLES_KEY, []) if a.id != newest.id]
        accepted_ids = metadata.accepted_example_ids(store, [a.id for a in candidates])
        accepted = [a for a in candidates if a.id in accepted_ids]
        return {
            CURRENT_KEY: current,
            EXAMPLES_KEY: window(newest, accepted, self._num_spans),
        }

"""MLMD look-ups shared by the run summary, the push history and the resolver strategies."""

from typing import Any

from ml_metadata.proto import metadata_store_pb2

OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
INPUT_EVENTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)


def artifacts_by_key(
    store: Any, execution_id: int, event_types: tuple[int, ...]
) -> dict[str, list[metadata_store_pb2.Artifact]]:
    """An execution's input or output artifacts, keyed like the component's channels."""
    events = [e for e in store.get_events_by_execution_ids([execution_id]) if e.type in event_types]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    by_key: dict[str, list[metadata_store_pb2.Artifact]] = {}
    for event in events:
        key = event.path.steps[0].key if event.path.steps else ""
        by_key.setdefault(key, []).append(artifacts[event.artifact_id])
    return by_key


def custom_property(artifact: metadata_store_pb2.Artifact, name: str) -> object:
    """A custom property's value whatever its type, or None."""
    value = artifact.custom_properties.get(name)
    if value is None:
        return None
    return getattr(value, value.WhichOneof("value"))


def producer(
    store: Any, artifact_id: int
) -> tuple[metadata_store_pb2.Execution | None, dict[str, list[metadata_store_pb2.Artifact]]]:
    """The execution that output `artifact_id`, and that execution's inputs by key."""
    for event in store.get_events_by_artifact_ids([artifact_id]):
        if event.type in OUTPUT_EVENTS:
            execution = store.get_executions_by_id([event.execution_id])[0]
            return execution, artifacts_by_key(store, execution.id, INPUT_EVENTS)
    return None, {}


def training_examples(store: Any, model_id: int) -> list[metadata_store_pb2.Artifact]:
    """The ExampleGen Examples a Trainer model was trained from, oldest span first.

    The Trainer reads them directly or as Transform's transformed examples, which lead back to
    the raw examples Transform read.
    """
    _, trainer_inputs = producer(store, model_id)
    found = []
    for examples in trainer_inputs.get("examples", []):
        _, inputs = producer(store, examples.id)
        found.extend(inputs.get("examples") or [examples])
    return sorted(found, key=lambda a: (custom_property(a, "span") or 0, a.id))


def statistics_of(store: Any, examples_id: int) -> metadata_store_pb2.Artifact | None:
    """The newest statistics (StatisticsGen output) computed from Examples `examples_id`."""
    found = None
    for event in store.get_events_by_artifact_ids([examples_id]):
        if event.type not in INPUT_EVENTS:
            continue
        outputs = artifacts_by_key(store, event.execution_id, OUTPUT_EVENTS)
        for statistics in outputs.get("statistics", []):
            if found is None or statistics.id > found.id:
                found = statistics
    return found

"""The rolling training window's resolver: which spans it picks, and when a span counts as accepted."""

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.types import standard_artifacts

from tfx_pipeline import metadata
from tfx_pipeline.resolvers import span_window


def examples(artifact_id, span):
    artifact = standard_artifacts.Examples()
    artifact.id = artifact_id
    artifact.set_int_custom_property("span", span)
    return artifact


def test_window_takes_the_newest_artifact_of_each_span_below_the_current_one():
    current = examples(50, span=7)
    accepted = [
        examples(10, span=3),
        examples(11, span=4),
        examples(12, span=5),
        examples(13, span=5),  # span 5 re-ingested: the newer artifact wins
        examples(14, span=6),
        examples(15, span=8),  # newer than the current span: never in this window
    ]
    picked = span_window.window(current, accepted, num_spans=4)
    assert [(a.id, a.get_int_custom_property("span")) for a in picked] == [
        (50, 7),
        (14, 6),
        (13, 5),
        (11, 4),
    ]
    assert [a.id for a in span_window.window(current, accepted, num_spans=1)] == [50]


def test_a_span_is_accepted_only_once_a_completed_transform_read_it():
    connection = metadata_store_pb2.ConnectionConfig()
    connection.fake_database.SetInParent()
    store = metadata_store.MetadataStore(connection)
    examples_type = store.put_artifact_type(metadata_store_pb2.ArtifactType(name="Examples"))
    transform_type = store.put_execution_type(
        metadata_store_pb2.ExecutionType(name="tfx.components.transform.component.Transform")
    )
    trainer_type = store.put_execution_type(
        metadata_store_pb2.ExecutionType(name="tfx.components.trainer.component.Trainer")
    )
    read_by_transform, refused, read_by_trainer, transform_failed = store.put_artifacts(
        [metadata_store_pb2.Artifact(type_id=examples_type) for _ in range(4)]
    )
    complete = metadata_store_pb2.Execution.COMPLETE
    failed = metadata_store_pb2.Execution.FAILED
    for execution_type, state, artifact_id in (
        (transform_type, complete, read_by_transform),
        (trainer_type, complete, read_by_trainer),
        (transform_type, failed, transform_failed),
    ):
        (execution_id,) = store.put_executions(
            [metadata_store_pb2.Execution(type_id=execution_type, last_known_state=state)]
        )
        event = metadata_store_pb2.Event(
            artifact_id=artifact_id, execution_id=execution_id, type=metadata_store_pb2.Event.INPUT
        )
        event.path.steps.add().key = "examples"
        store.put_events([event])
    accepted = metadata.accepted_example_ids(
        store, [read_by_transform, refused, read_by_trainer, transform_failed]
    )
    assert accepted == {read_by_transform}

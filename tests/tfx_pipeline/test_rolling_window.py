"""The rolling training window: wiring, config rules, and which spans the resolver picks."""

import dataclasses

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.types import standard_artifacts

from tests.tfx_pipeline.test_pipeline import config, upstream_ids  # noqa: F401 - fixture
from tfx_pipeline import config as config_lib
from tfx_pipeline import pipeline as pipeline_lib
from tfx_pipeline import span_window


def examples(artifact_id, span):
    artifact = standard_artifacts.Examples()
    artifact.id = artifact_id
    artifact.set_int_custom_property("span", span)
    return artifact


def test_a_window_above_one_span_feeds_transform_tuner_and_trainer(config):  # noqa: F811
    pipeline = pipeline_lib.create_pipeline(dataclasses.replace(config, training_window_spans=4))
    ids = [c.id for c in pipeline.components]
    assert ids.index("span_window_resolver") < ids.index("Transform")
    assert upstream_ids(pipeline, "span_window_resolver") == {"CsvExampleGen"}
    assert upstream_ids(pipeline, "Transform") == {
        "span_window_resolver",
        "latest_analyzer_cache_resolver",
        "ImportSchemaGen",
        "DataGate",
    }
    for node in ("Tuner", "Trainer"):
        assert "span_window_resolver" in upstream_ids(pipeline, node)
        assert "CsvExampleGen" not in upstream_ids(pipeline, node)
    # The Evaluator judges the model on the new span only, whatever the window.
    assert "span_window_resolver" not in upstream_ids(pipeline, "Evaluator")
    by_id = {c.id: c for c in pipeline.components}
    # Transform only analyzes: no transformed copy of the window is written.
    assert "transformed_examples" not in by_id["Transform"].outputs


def test_one_span_needs_no_resolver_and_no_cache(config):  # noqa: F811
    ids = [c.id for c in pipeline_lib.create_pipeline(config).components]
    assert "span_window_resolver" not in ids
    assert "latest_analyzer_cache_resolver" not in ids


def test_a_window_cannot_use_portable_resolvers(config):  # noqa: F811
    with pytest.raises(ValueError, match="training_window_spans above 1 needs"):
        dataclasses.replace(config, training_window_spans=3, portable_resolvers=True)
    with pytest.raises(ValueError, match="training_window_spans must be at least 1"):
        dataclasses.replace(config, training_window_spans=0)
    assert isinstance(
        dataclasses.replace(config, portable_resolvers=True), config_lib.PipelineConfig
    )


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
    accepted = span_window.accepted_example_ids(
        store, [read_by_transform, refused, read_by_trainer, transform_failed]
    )
    assert accepted == {read_by_transform}

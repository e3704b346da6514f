"""Every ML Metadata (MLMD) query of the project: the store, runs and node states, lineage, spans, pushes.

Read-only, and it imports ml_metadata only (no TensorFlow, no TFX), so the watch loop and the
command-line tools stay light. A `store` argument is an `mlmd.MetadataStore`, including the one
TFX hands a resolver strategy.
"""

import dataclasses
import json
import os
from typing import Any

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

from tfx_pipeline import node_ids

Artifact = metadata_store_pb2.Artifact
Execution = metadata_store_pb2.Execution

OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
INPUT_EVENTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)
# Context types of a pipeline run: TFX's IR-based orchestrators (local, Vertex) and its legacy
# launcher (AirflowDagRunner) name them differently.
RUN_CONTEXT_TYPES = ("pipeline_run", "run")
# The Transform input whose completed reads mark a span as accepted by the data gate.
TRANSFORM_EXAMPLES_KEY = "examples"
TRANSFORM_TYPE_SUFFIX = ".Transform"
FINISHED_STATES = (Execution.COMPLETE, Execution.CACHED)


def open_store(metadata_path: str, read_only: bool = True) -> mlmd.MetadataStore:
    """The SQLite MLMD store of a local or Airflow run (read-only unless asked)."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(metadata_path)
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
        if read_only
        else metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    )
    return mlmd.MetadataStore(config)


# --- artifacts and lineage -------------------------------------------------------------------


def custom_property(artifact: Artifact, name: str) -> object:
    """A custom property's value whatever its type, or None."""
    value = artifact.custom_properties.get(name)
    if value is None:
        return None
    return getattr(value, value.WhichOneof("value"))


def artifacts_by_key(
    store: Any, execution_id: int, event_types: tuple[int, ...]
) -> dict[str, list[Artifact]]:
    """An execution's input or output artifacts, keyed like the component's channels."""
    events = [e for e in store.get_events_by_execution_ids([execution_id]) if e.type in event_types]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    by_key: dict[str, list[Artifact]] = {}
    for event in events:
        key = event.path.steps[0].key if event.path.steps else ""
        by_key.setdefault(key, []).append(artifacts[event.artifact_id])
    return by_key


def producer(store: Any, artifact_id: int) -> tuple[Execution | None, dict[str, list[Artifact]]]:
    """The execution that output `artifact_id`, and that execution's inputs by key."""
    for event in store.get_events_by_artifact_ids([artifact_id]):
        if event.type in OUTPUT_EVENTS:
            execution = store.get_executions_by_id([event.execution_id])[0]
            return execution, artifacts_by_key(store, execution.id, INPUT_EVENTS)
    return None, {}


def training_examples(store: Any, model_id: int) -> list[Artifact]:
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


def statistics_of(store: Any, examples_id: int) -> Artifact | None:
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


def statistics_spans(store: Any, statistics_ids: list[int]) -> dict[int, int]:
    """Span of the Examples each statistics artifact was computed from, by statistics id.

    StatisticsGen does not copy the span onto its output; lineage leads to the Examples, on
    which ExampleGen records it as a custom property (its `span` property stays 0).
    """
    spans = {}
    for statistics_id in statistics_ids:
        _, inputs = producer(store, statistics_id)
        for examples in inputs.get("examples", []):
            span = custom_property(examples, "span")
            if span is not None:
                spans[statistics_id] = span
    return spans


def accepted_example_ids(store: Any, candidate_ids: list[int]) -> set[int]:
    """Ids among `candidate_ids` that a completed Transform execution read as its `examples`.

    Transform runs only after the data gate passed, so this is "accepted by the gate".
    """
    if not candidate_ids:
        return set()
    events = [
        event
        for event in store.get_events_by_artifact_ids(candidate_ids)
        if event.type in INPUT_EVENTS
        and event.path.steps
        and event.path.steps[0].key == TRANSFORM_EXAMPLES_KEY
    ]
    executions = {
        execution.id: execution
        for execution in store.get_executions_by_id(list({e.execution_id for e in events}))
    }
    type_names = {
        execution_type.id: execution_type.name
        for execution_type in store.get_execution_types_by_id(
            list({e.type_id for e in executions.values()})
        )
    }
    accepted = set()
    for event in events:
        execution = executions.get(event.execution_id)
        if (
            execution is not None
            and execution.last_known_state in FINISHED_STATES
            and type_names.get(execution.type_id, "").endswith(TRANSFORM_TYPE_SUFFIX)
        ):
            accepted.add(event.artifact_id)
    return accepted


def evaluation_of_blessing(store: Any, blessing_id: int) -> Artifact | None:
    """The ModelEvaluation the Evaluator wrote beside a ModelBlessing."""
    evaluator, _ = producer(store, blessing_id)
    if evaluator is None:
        return None
    evaluations = artifacts_by_key(store, evaluator.id, OUTPUT_EVENTS).get("evaluation", [])
    return evaluations[0] if evaluations else None


# TFX records why an execution failed here (an ExecutionResult as JSON), but only when the
# executor returned an error code: a raised exception leaves nothing (the run's log has it).
EXECUTION_RESULT_PROPERTY = "__execution_result__"


def execution_error(execution: Execution) -> str | None:
    """The first line of the error TFX recorded on a failed execution, or None."""
    recorded = custom_property(execution, EXECUTION_RESULT_PROPERTY)
    if not recorded:
        return None
    try:
        result = json.loads(recorded)
    except ValueError:
        return str(recorded).strip().splitlines()[0]
    message = str(result.get("resultMessage", "")).strip()
    if message:
        return message.splitlines()[0]
    return f"error code {result['code']}" if result.get("code") else None


# --- pipelines, runs and nodes ---------------------------------------------------------------


def node_id(store: Any, execution_id: int, pipeline_name: str) -> str:
    """The pipeline node (component id) an execution belongs to; '?' when none is recorded."""
    for context in store.get_contexts_by_execution(execution_id):
        if context.type == "node" and context.name.startswith(pipeline_name + "."):
            return context.name[len(pipeline_name) + 1 :]
        if context.type == "component_run":  # <pipeline>.<run id>.<node id>
            return context.name.rsplit(".", 1)[-1]
    return "?"


def run_contexts(store: Any, pipeline_name: str) -> list[metadata_store_pb2.Context]:
    """Every run context that holds executions of this pipeline, oldest first."""
    pipeline_context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_context is None:
        return []
    run_ids = {
        context.id
        for execution in store.get_executions_by_context(pipeline_context.id)
        for context in store.get_contexts_by_execution(execution.id)
        if context.type in RUN_CONTEXT_TYPES
    }
    runs = store.get_contexts_by_id(list(run_ids))
    return sorted(runs, key=lambda c: (c.create_time_since_epoch, c.id))


def latest_run(store: Any, pipeline_name: str) -> metadata_store_pb2.Context | None:
    """The newest run context that holds executions of this pipeline."""
    runs = run_contexts(store, pipeline_name)
    return runs[-1] if runs else None


def find_run(store: Any, pipeline_name: str, run_name: str) -> metadata_store_pb2.Context | None:
    """The run of this pipeline named `run_name` (its pipeline_run id), or None."""
    return next((run for run in run_contexts(store, pipeline_name) if run.name == run_name), None)


UNFINISHED_STATES = (Execution.NEW, Execution.RUNNING)


def run_executions(
    store: Any, pipeline_name: str, run: metadata_store_pb2.Context
) -> list["NodeExecution"]:
    """A run's executions in the order they started, with their artifacts."""
    return [
        NodeExecution(
            node_id=node_id(store, execution.id, pipeline_name),
            state=Execution.State.Name(execution.last_known_state),
            inputs=artifacts_by_key(store, execution.id, INPUT_EVENTS),
            outputs=artifacts_by_key(store, execution.id, OUTPUT_EVENTS),
            execution=execution,
        )
        for execution in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id)
    ]


def latest_node_state(store: Any, pipeline_name: str, node: str) -> str:
    """The state (COMPLETE, CACHED, FAILED, ...) of a node's newest execution, or UNKNOWN."""
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node}")
    if context is None:
        return "UNKNOWN"
    executions = store.get_executions_by_context(context.id)
    if not executions:
        return "UNKNOWN"
    newest = max(executions, key=lambda e: e.id)
    return Execution.State.Name(newest.last_known_state)


# TFX's cache key (tfx/orchestration/portable/cache_utils.py) as MLMD records it: a context named
# by the hash, holding every execution that had the same inputs, exec properties and executor.
CACHE_CONTEXT_TYPE = "execution_cache"


def run_name(store: Any, execution_id: int) -> str:
    """The run (its pipeline_run id) an execution belongs to; '?' when none is recorded."""
    for context in store.get_contexts_by_execution(execution_id):
        if context.type in RUN_CONTEXT_TYPES:
            return context.name
    return "?"


def node_executions(store: Any, pipeline_name: str, node: str) -> list[Execution]:
    """Every execution of one node of the pipeline, over all its runs, oldest first."""
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node}")
    if context is None:
        return []
    return sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)


def pipeline_nodes(store: Any, pipeline_name: str) -> list[str]:
    """The id of every node of the pipeline that has run at least once."""
    prefix = pipeline_name + "."
    return sorted(
        context.name[len(prefix) :]
        for context in store.get_contexts_by_type("node")
        if context.name.startswith(prefix)
    )


def same_cache_key(store: Any, execution_id: int) -> list[Execution] | None:
    """The executions recorded under the cache key of `execution_id` (itself too), oldest first.

    None when it has no key: TFX never caches resolver and importer nodes, and Airflow's legacy
    launcher records no key.
    """
    for context in store.get_contexts_by_execution(execution_id):
        if context.type == CACHE_CONTEXT_TYPE:
            return sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
    return None


def first_producer(store: Any, artifact_id: int) -> Execution | None:
    """The execution that wrote an artifact: the first to output it (a cached one outputs it again)."""
    ids = [
        event.execution_id
        for event in store.get_events_by_artifact_ids([artifact_id])
        if event.type in OUTPUT_EVENTS
    ]
    return store.get_executions_by_id([min(ids)])[0] if ids else None


def execution_type_name(store: Any, execution: Execution) -> str:
    """The class TFX registered the execution's component under, e.g. tfx....Trainer."""
    found = store.get_execution_types_by_id([execution.type_id])
    return found[0].name if found else "?"


@dataclasses.dataclass(frozen=True)
class NodeExecution:
    """One node's execution in a run, with its artifacts keyed like the component's channels."""

    node_id: str
    state: str  # COMPLETE, CACHED, FAILED, ...
    inputs: dict[str, list[Artifact]]
    outputs: dict[str, list[Artifact]]
    execution: Execution  # its times, exec properties (custom_properties) and id

    @property
    def seconds(self) -> float:
        """How long it took, from MLMD's create and last-update times."""
        return (
            self.execution.last_update_time_since_epoch - self.execution.create_time_since_epoch
        ) / 1000


def node_execution_records(store: Any, pipeline_name: str, node: str) -> list[NodeExecution]:
    """Every execution of one node over all runs, oldest first, with its artifacts."""
    return [
        NodeExecution(
            node_id=node,
            state=Execution.State.Name(execution.last_known_state),
            inputs=artifacts_by_key(store, execution.id, INPUT_EVENTS),
            outputs=artifacts_by_key(store, execution.id, OUTPUT_EVENTS),
            execution=execution,
        )
        for execution in node_executions(store, pipeline_name, node)
    ]


def latest_run_executions(
    metadata_path: str, pipeline_name: str
) -> tuple[str, list[NodeExecution]] | None:
    """The newest run of `pipeline_name`: its name and executions in order; None before any run."""
    if not os.path.exists(metadata_path):
        return None
    store = open_store(metadata_path)
    run = latest_run(store, pipeline_name)
    if run is None:
        return None
    return run.name, run_executions(store, pipeline_name, run)


def has_hyperparameters(metadata_path: str, pipeline_name: str) -> bool:
    """True when an earlier run of this pipeline produced tuned hyperparameters."""
    if not os.path.exists(metadata_path):
        return False
    store = open_store(metadata_path)
    pipeline_context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_context is None:
        return False
    return any(
        artifact.state == Artifact.LIVE
        for artifact in store.get_artifacts_by_context(pipeline_context.id)
        if store.get_artifact_types_by_id([artifact.type_id])[0].name == "HyperParameters"
    )


def ingested_span(metadata_path: str) -> int | None:
    """The highest span any run has ingested (ExampleGen's `span` property), or None."""
    if not os.path.exists(metadata_path):
        return None
    store = open_store(metadata_path)
    spans = [
        artifact.custom_properties["span"].int_value
        for artifact in store.get_artifacts_by_type("Examples")
        if "span" in artifact.custom_properties
    ]
    return max(spans, default=None)


# --- pushes ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PushRecord:
    """One version the Pusher placed in the serving directory, as MLMD recorded it."""

    version: int
    pushed_at_millis: int
    run: str
    destination: str
    model_id: int | None  # the Trainer's Model artifact
    blessing_id: int | None  # the Evaluator's ModelBlessing
    blessed: bool


def pushed_models(store: Any, pipeline_name: str) -> list[PushRecord]:
    """Every version a Pusher execution of this pipeline pushed, oldest first.

    Local runs and Airflow's legacy launcher alike; cached executions repeat an earlier push and
    are left out.
    """
    pipeline_context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_context is None:
        return []
    pusher_executions = [
        execution
        for execution in store.get_executions_by_context(pipeline_context.id)
        if execution.last_known_state == Execution.COMPLETE
        and node_id(store, execution.id, pipeline_name) == node_ids.PUSHER
    ]
    found = []
    for execution in sorted(pusher_executions, key=lambda e: e.id):
        outputs = artifacts_by_key(store, execution.id, OUTPUT_EVENTS)
        inputs = artifacts_by_key(store, execution.id, INPUT_EVENTS)
        for pushed in outputs.get("pushed_model", []):
            if custom_property(pushed, "pushed") != 1:
                continue
            runs = [
                c.name
                for c in store.get_contexts_by_execution(execution.id)
                if c.type in RUN_CONTEXT_TYPES
            ]
            model = inputs.get("model", [None])[0]
            blessing = inputs.get("model_blessing", [None])[0]
            found.append(
                PushRecord(
                    version=int(custom_property(pushed, "pushed_version")),
                    pushed_at_millis=execution.create_time_since_epoch,
                    run=runs[0] if runs else "?",
                    destination=str(custom_property(pushed, "pushed_destination")),
                    model_id=model.id if model else None,
                    blessing_id=blessing.id if blessing else None,
                    blessed=bool(blessing and custom_property(blessing, "blessed") == 1),
                )
            )
    return found


def latest_run_windows(metadata_path: str, pipeline_name: str) -> dict[str, tuple[float, float]]:
    """(start, end) Unix seconds of every node's execution in the latest run, from MLMD."""
    if not os.path.exists(metadata_path):
        return {}
    store = open_store(metadata_path)
    run = latest_run(store, pipeline_name)
    if run is None:
        return {}
    windows = {}
    for execution in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id):
        node = node_id(store, execution.id, pipeline_name)
        windows[node if node != "?" else f"execution-{execution.id}"] = (
            execution.create_time_since_epoch / 1000,
            execution.last_update_time_since_epoch / 1000,
        )
    return windows

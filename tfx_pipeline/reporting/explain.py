"""Why a component ran or came from cache in a run (`python -m tfx_pipeline.explain COMPONENT`).

TFX reuses an earlier execution's outputs when the cache key matches: a hash of the pipeline and
node info, the executor spec, the input artifacts (their whole MLMD records), the output
artifacts' skeleton and the exec properties (tfx/orchestration/portable/cache_utils.py). MLMD
keeps the key only as an opaque `execution_cache` context, beside each execution's inputs and exec
properties; the explanation compares those with the execution that could have been reused.
Our module-code fingerprint is an exec property (custom_config.module_fingerprint), so an edit to
models/ shows as one.
"""

import dataclasses
import datetime
import json
import os
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

from ml_metadata.proto import metadata_store_pb2

from tfx_pipeline import metadata
from tfx_pipeline.problems import ConfigProblems

Execution = metadata_store_pb2.Execution

EXIT_OK = 0
# What happened to the component in the run.
CACHED = "cached"
RAN = "ran"
FAILED = "failed"
UNCACHEABLE = "uncacheable"  # resolvers and importers: TFX runs them in every run
UNFINISHED = "unfinished"
NOT_RUN = "not run"
# Where TFX keeps an execution's result (tfx/orchestration/portable/mlmd/execution_lib.py); it
# writes it on failure only when the executor returned an error code, not when it raised.
# Exec properties are every custom property but TFX's own, which start with this.
INTERNAL_PREFIX = "__"
# Longer values are cut to this many characters on the console.
SHOWN_VALUE_CHARS = 70
UNSET = "(unset)"
# What MLMD does not record of the cache key (cache_utils.get_cache_context).
UNRECORDED_KEY_PARTS = (
    "the pipeline info and node info, the executor spec (executor class or container image), "
    "the output artifacts' skeleton (properties set before the executor runs) and each input "
    "artifact's whole MLMD record (its properties, not only its id)"
)


@dataclasses.dataclass(frozen=True)
class ExecutionRef:
    """One execution, as the explanation names it."""

    id: int
    run: str
    started: str  # local time, to the second
    state: str  # COMPLETE, CACHED, FAILED, ...

    def __str__(self) -> str:
        return f"execution {self.id} (run {self.run}, {self.started})"

    @property
    def in_its_run(self) -> str:
        """How a run's own execution is named beside the run: without the run again."""
        return f"execution {self.id}, started {self.started}"


@dataclasses.dataclass(frozen=True)
class ArtifactRef:
    """An input or output artifact with what tells it apart: span, version, uri, who wrote it."""

    id: int
    type_name: str
    uri: str
    span: int | None
    version: int | None
    producer: str | None  # the node that wrote it
    producer_run: str | None


@dataclasses.dataclass(frozen=True)
class InputChange:
    """An input key whose artifacts differ from the earlier execution's."""

    key: str
    before: tuple[ArtifactRef, ...]
    after: tuple[ArtifactRef, ...]


@dataclasses.dataclass(frozen=True)
class PropertyChange:
    """An exec property that differs; `name` is dotted into JSON values (custom_config.seed)."""

    name: str
    before: str
    after: str


@dataclasses.dataclass(frozen=True)
class CachingOff:
    """A node of the run that ran although an earlier execution with its cache key could be reused."""

    node: str
    execution: ExecutionRef
    reusable: ExecutionRef


@dataclasses.dataclass(frozen=True)
class Explanation:
    """Why `component` ran, came from cache, failed or did not run in `run`.

    Only the fields of its `outcome` are set; `format_explanation` turns it into lines.
    """

    component: str
    pipeline: str
    run: str
    outcome: str  # CACHED, RAN, FAILED, UNCACHEABLE, UNFINISHED or NOT_RUN
    execution: ExecutionRef | None = None
    execution_type: str = ""
    # CACHED: the execution whose outputs it reused, and those outputs.
    reused_from: ExecutionRef | None = None
    outputs: tuple[tuple[str, tuple[ArtifactRef, ...]], ...] = ()
    # RAN and FAILED: the earlier execution it is compared with (the latest earlier finished one,
    # or the one whose outputs that reused), and what differs.
    compared_with: ExecutionRef | None = None
    compared_via: ExecutionRef | None = None  # the latest earlier one, when it came from cache
    earlier_failures: tuple[ExecutionRef, ...] = ()  # when nothing earlier finished
    input_changes: tuple[InputChange, ...] = ()
    property_changes: tuple[PropertyChange, ...] = ()
    updated_inputs: tuple[ArtifactRef, ...] = ()  # same artifact, updated after compared_with ran
    # An earlier execution under this one's cache key: reusable (so caching was off), or not.
    same_key_as: ExecutionRef | None = None
    same_key_unusable: tuple[str, ...] = ()  # why its outputs could not be reused
    caching_off: CachingOff | None = None  # another node of the run that shows caching was off
    error: str | None = None  # FAILED: the first line of the result TFX recorded, if any
    # NOT_RUN: the node whose failure or interruption stopped the run, and its execution.
    stopped_by: tuple[str, ExecutionRef] | None = None
    last_run: ExecutionRef | None = None  # NOT_RUN: its latest execution in any earlier run

    @property
    def differences(self) -> int:
        return len(self.input_changes) + len(self.property_changes) + len(self.updated_inputs)


# --- reading MLMD ------------------------------------------------------------------------------


def _local_time(millis: int) -> str:
    return datetime.datetime.fromtimestamp(millis / 1000).isoformat(sep=" ", timespec="seconds")


def _ref(store: Any, execution: Execution) -> ExecutionRef:
    return ExecutionRef(
        id=execution.id,
        run=metadata.run_name(store, execution.id),
        started=_local_time(execution.create_time_since_epoch),
        state=Execution.State.Name(execution.last_known_state),
    )


def _artifact_ref(store: Any, artifact: metadata.Artifact, pipeline_name: str) -> ArtifactRef:
    writer = metadata.first_producer(store, artifact.id)
    span = metadata.custom_property(artifact, "span")
    version = metadata.custom_property(artifact, "version")
    return ArtifactRef(
        id=artifact.id,
        type_name=artifact.type,
        uri=artifact.uri,
        span=span if isinstance(span, int) else None,
        version=version if isinstance(version, int) else None,
        producer=metadata.node_id(store, writer.id, pipeline_name) if writer else None,
        producer_run=metadata.run_name(store, writer.id) if writer else None,
    )


def _artifact_refs(
    store: Any, by_key: Mapping[str, list[metadata.Artifact]], pipeline_name: str
) -> tuple[tuple[str, tuple[ArtifactRef, ...]], ...]:
    return tuple(
        (key, tuple(_artifact_ref(store, a, pipeline_name) for a in by_key[key]))
        for key in sorted(by_key)
    )


def _component_id(
    store: Any,
    pipeline_name: str,
    run: metadata_store_pb2.Context,
    run_nodes: list[str],
    component: str,
) -> str:
    """`component` as the pipeline names it (case aside); ConfigProblems when it has no such node."""
    known = list(dict.fromkeys([*run_nodes, *metadata.pipeline_nodes(store, pipeline_name)]))
    if component in known:
        return component
    matches = [node for node in known if node.lower() == component.lower()]
    if len(matches) == 1:
        return matches[0]
    raise ConfigProblems(
        [
            f"no component '{component}' in run {run.name} of pipeline '{pipeline_name}'; its "
            f"components are: {', '.join(run_nodes) or '(none)'}"
        ]
    )


def _unusable_outputs(store: Any, execution: Execution) -> tuple[str, ...]:
    """Why TFX could not reuse an execution's outputs now: not LIVE in MLMD, or gone from disk."""
    reasons = []
    outputs = metadata.artifacts_by_key(store, execution.id, metadata.OUTPUT_EVENTS)
    for key in sorted(outputs):
        for artifact in outputs[key]:
            if artifact.state != metadata.Artifact.LIVE:
                state = metadata.Artifact.State.Name(artifact.state)
                reasons.append(f"{key} artifact {artifact.id} is {state}")
            elif not artifact.uri or not os.path.exists(artifact.uri):
                reasons.append(f"{key} artifact {artifact.id} is gone from {artifact.uri}")
    return tuple(reasons)


def _reusable_twin(store: Any, execution: Execution) -> Execution | None:
    """The latest earlier finished execution under the same cache key as `execution`."""
    twins = metadata.same_cache_key(store, execution.id) or []
    earlier = [
        twin
        for twin in twins
        if twin.id < execution.id and twin.last_known_state in metadata.FINISHED_STATES
    ]
    return earlier[-1] if earlier else None


def _cache_source(store: Any, cached: Execution) -> Execution | None:
    """The execution that wrote the outputs a cached execution reused (same cache key)."""
    outputs = metadata.artifacts_by_key(store, cached.id, metadata.OUTPUT_EVENTS)
    for artifacts in outputs.values():
        for artifact in artifacts:
            writer = metadata.first_producer(store, artifact.id)
            if writer is not None and writer.id != cached.id:
                return writer
    return _reusable_twin(store, cached)


def _exec_properties(execution: Execution) -> dict[str, object]:
    return {
        name: metadata.custom_property(execution, name)
        for name in execution.custom_properties
        if not name.startswith(INTERNAL_PREFIX)
    }


_MISSING = object()


def _parsed(value: object) -> object:
    """A JSON object or list held in a string property, parsed; anything else as it is."""
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _text(value: object) -> str:
    if value is _MISSING:
        return UNSET
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return " ".join(text.split())


def _shown(before: object, after: object) -> tuple[str, str]:
    """Both values as text, cut to SHOWN_VALUE_CHARS around where they start to differ."""
    texts = _text(before), _text(after)
    common = len(os.path.commonprefix(texts))
    start = max(0, common - SHOWN_VALUE_CHARS // 4)
    if max(len(text) for text in texts) <= SHOWN_VALUE_CHARS or start < len("..."):
        start = 0
    shown = []
    for text in texts:
        cut = text[start:]
        if len(cut) > SHOWN_VALUE_CHARS - (3 if start else 0):
            cut = cut[: SHOWN_VALUE_CHARS - 3 - (3 if start else 0)] + "..."
        shown.append(("..." if start else "") + cut)
    return shown[0], shown[1]


def _value_changes(name: str, before: object, after: object) -> list[PropertyChange]:
    """The leaves that differ between two values, dotted into dicts and indexed into lists."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in sorted(set(before) | set(after), key=str):
            changes += _value_changes(
                f"{name}.{key}", before.get(key, _MISSING), after.get(key, _MISSING)
            )
        return changes
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        changes = []
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            changes += _value_changes(f"{name}[{index}]", old, new)
        return changes
    if before == after:
        return []
    return [PropertyChange(name, *_shown(before, after))]


def property_changes(
    before: Mapping[str, object], after: Mapping[str, object]
) -> list[PropertyChange]:
    """Every exec property that differs; JSON-valued ones by the sub-keys that changed."""
    changes = []
    for name in sorted(set(before) | set(after)):
        changes += _value_changes(
            name, _parsed(before.get(name, _MISSING)), _parsed(after.get(name, _MISSING))
        )
    return changes


def _input_changes(
    store: Any,
    before: Mapping[str, list[metadata.Artifact]],
    after: Mapping[str, list[metadata.Artifact]],
    pipeline_name: str,
) -> list[InputChange]:
    changes = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key, []), after.get(key, [])
        if sorted(a.id for a in old) != sorted(a.id for a in new):
            changes.append(
                InputChange(
                    key,
                    tuple(_artifact_ref(store, a, pipeline_name) for a in old),
                    tuple(_artifact_ref(store, a, pipeline_name) for a in new),
                )
            )
    return changes


def _updated_inputs(
    store: Any,
    inputs: Mapping[str, list[metadata.Artifact]],
    earlier: Execution,
    pipeline_name: str,
) -> list[ArtifactRef]:
    """Inputs both executions read whose MLMD record changed after the earlier one started.

    The cache key hashes an input's whole record, so an updated property changes it too.
    """
    before = metadata.artifacts_by_key(store, earlier.id, metadata.INPUT_EVENTS)
    shared = {a.id for artifacts in before.values() for a in artifacts}
    return [
        _artifact_ref(store, artifact, pipeline_name)
        for key in sorted(inputs)
        for artifact in inputs[key]
        if artifact.id in shared
        and artifact.last_update_time_since_epoch > earlier.create_time_since_epoch
    ]


def _caching_off(
    store: Any, run_executions: Iterable[metadata.NodeExecution], skip: int
) -> CachingOff | None:
    """A node of the run that ran although an earlier execution with its key was reusable."""
    for node_execution in run_executions:
        execution = node_execution.execution
        if execution.id == skip or execution.last_known_state != Execution.COMPLETE:
            continue
        twin = _reusable_twin(store, execution)
        if twin is not None and not _unusable_outputs(store, twin):
            return CachingOff(node_execution.node_id, _ref(store, execution), _ref(store, twin))
    return None


def _stopper(
    store: Any, run_executions: Iterable[metadata.NodeExecution]
) -> tuple[str, ExecutionRef] | None:
    """The node whose failure or interruption ended the run early, if one did."""
    for node_execution in run_executions:
        if node_execution.execution.last_known_state not in metadata.FINISHED_STATES:
            return node_execution.node_id, _ref(store, node_execution.execution)
    return None


def _why_it_ran(
    store: Any,
    pipeline_name: str,
    current: metadata.NodeExecution,
    run_executions: list[metadata.NodeExecution],
) -> dict[str, Any]:
    """The fields of a RAN or FAILED explanation: what differs from what it could have reused."""
    execution = current.execution
    fields: dict[str, Any] = {}
    twin = _reusable_twin(store, execution)
    if twin is not None:
        fields["same_key_as"] = _ref(store, twin)
        fields["same_key_unusable"] = _unusable_outputs(store, twin)
    else:
        fields["caching_off"] = _caching_off(store, run_executions, skip=execution.id)
    earlier = [
        e
        for e in metadata.node_executions(store, pipeline_name, current.node_id)
        if e.id < execution.id
    ]
    finished = [e for e in earlier if e.last_known_state in metadata.FINISHED_STATES]
    if not finished:
        fields["earlier_failures"] = tuple(_ref(store, e) for e in earlier)
        return fields
    compared = finished[-1]
    if compared.last_known_state == Execution.CACHED:
        # A cached execution keeps the exec properties from before its driver ran (ExampleGen's
        # span, for one); the execution it reused holds the ones its cache key was made of.
        source = _cache_source(store, compared)
        if source is not None:
            fields["compared_via"] = _ref(store, compared)
            compared = source
    fields["compared_with"] = _ref(store, compared)
    before_inputs = metadata.artifacts_by_key(store, compared.id, metadata.INPUT_EVENTS)
    fields["input_changes"] = tuple(
        _input_changes(store, before_inputs, current.inputs, pipeline_name)
    )
    fields["property_changes"] = tuple(
        property_changes(_exec_properties(compared), _exec_properties(execution))
    )
    fields["updated_inputs"] = tuple(
        _updated_inputs(store, current.inputs, compared, pipeline_name)
    )
    return fields


def explain(
    store: Any, pipeline_name: str, run: metadata_store_pb2.Context, component: str
) -> Explanation:
    """Why `component` ran, came from cache, failed or did not run in `run`.

    Raises ConfigProblems when the pipeline has no such component, listing the run's.
    """
    run_executions = metadata.run_executions(store, pipeline_name, run)
    run_nodes = list(dict.fromkeys(e.node_id for e in run_executions))
    node = _component_id(store, pipeline_name, run, run_nodes, component)
    base = {"component": node, "pipeline": pipeline_name, "run": run.name}
    mine = [e for e in run_executions if e.node_id == node]
    if not mine:
        earlier = metadata.node_executions(store, pipeline_name, node)
        return Explanation(
            **base,
            outcome=NOT_RUN,
            stopped_by=_stopper(store, run_executions),
            last_run=_ref(store, earlier[-1]) if earlier else None,
        )
    current = mine[-1]
    execution = current.execution
    base.update(
        execution=_ref(store, execution),
        execution_type=metadata.execution_type_name(store, execution),
        outputs=_artifact_refs(store, current.outputs, pipeline_name),
    )
    state = execution.last_known_state
    if state == Execution.CACHED:
        source = _cache_source(store, execution)
        return Explanation(
            **base, outcome=CACHED, reused_from=_ref(store, source) if source else None
        )
    if state not in (Execution.COMPLETE, Execution.FAILED):
        return Explanation(**base, outcome=UNFINISHED)
    if metadata.same_cache_key(store, execution.id) is None:
        return Explanation(**base, outcome=UNCACHEABLE)
    return Explanation(
        **base,
        outcome=FAILED if state == Execution.FAILED else RAN,
        error=metadata.execution_error(execution) if state == Execution.FAILED else None,
        **_why_it_ran(store, pipeline_name, current, run_executions),
    )


# --- formatting ----------------------------------------------------------------------------


def _describe(artifact: ArtifactRef, run: str, with_producer: bool = True) -> str:
    facts = [artifact.type_name] if artifact.type_name else []
    if artifact.span is not None:
        facts.append(f"span {artifact.span}")
    if artifact.version is not None:
        facts.append(f"version {artifact.version}")
    if artifact.producer and with_producer:
        where = "this run" if artifact.producer_run == run else f"run {artifact.producer_run}"
        facts.append(f"from {artifact.producer} ({where})")
    return f"artifact {artifact.id}: {', '.join(facts)}  {artifact.uri}"


def _ids(artifacts: tuple[ArtifactRef, ...]) -> str:
    if not artifacts:
        return "(none)"
    return ", ".join(f"artifact {a.id}" for a in artifacts)


def _difference_lines(explanation: Explanation) -> list[str]:
    lines = []
    for change in explanation.input_changes:
        lines.append(f"    input {change.key}: {_ids(change.before)} -> {_ids(change.after)}")
        lines += [f"      was {_describe(a, explanation.run)}" for a in change.before]
        lines += [f"      now {_describe(a, explanation.run)}" for a in change.after]
    for change in explanation.property_changes:
        lines.append(f"    exec property {change.name}: {change.before} -> {change.after}")
    for artifact in explanation.updated_inputs:
        lines.append(
            f"    input artifact {artifact.id} ({artifact.type_name}) is the same, but its MLMD "
            "record was updated after the earlier execution read it (the key hashes the record)"
        )
    return lines


def _why_lines(explanation: Explanation) -> list[str]:
    """Why a RAN or FAILED execution did not come from cache."""
    name = explanation.component
    lines = []
    if explanation.same_key_as is not None:
        twin = explanation.same_key_as
        if explanation.same_key_unusable:
            lines.append(
                f"  same inputs and parameters as {twin}, but its outputs could not be reused: "
                + "; ".join(explanation.same_key_unusable)
                + "."
            )
        else:
            lines.append(
                f"  same inputs and parameters as {twin}, whose outputs are still there to "
                "reuse: caching was off for this run (the runner's --no-cache)."
            )
    if explanation.compared_with is None:
        failures = explanation.earlier_failures
        if failures:
            lines.append(
                f"  none of the {len(failures)} earlier executions of {name} finished (the latest: "
                f"{failures[-1]}, {failures[-1].state}): there were no outputs to reuse."
            )
        else:
            lines.append(
                f"  no earlier execution of {name} in pipeline '{explanation.pipeline}': first run."
            )
        return lines
    via = explanation.compared_via
    against = (
        f"  compared with {explanation.compared_with}, whose outputs its latest earlier "
        f"execution ({via.id} in run {via.run}) reused from cache:"
        if via
        else f"  compared with its latest earlier execution, {explanation.compared_with}:"
    )
    differences = _difference_lines(explanation)
    if differences:
        lines += [against, *differences]
    elif explanation.same_key_as is None:
        lines += [
            against,
            "    nothing MLMD records differs (input artifact ids, exec properties). The cache "
            f"key also covers what MLMD does not record: {UNRECORDED_KEY_PARTS}; one of those "
            "changed.",
        ]
    caching_off = explanation.caching_off
    if caching_off is not None:
        lines.append(
            f"  caching was off for this run: {caching_off.node} (execution "
            f"{caching_off.execution.id}) ran with the same inputs and parameters as "
            f"{caching_off.reusable}, whose outputs were there to reuse, so every artifact it "
            "wrote is new downstream."
        )
    return lines


def _not_run_lines(explanation: Explanation) -> list[str]:
    stopped = explanation.stopped_by
    if stopped is not None:
        node, stopper = stopped
        what = "failed" if stopper.state == "FAILED" else f"was left {stopper.state}"
        reason = f"(skipped: {node} {what} in execution {stopper.id}, and the run stopped there)"
    else:
        reason = (
            "(the run finished without it, so it was not part of that run's pipeline: left out "
            "by the run's flags)"
        )
    lines = [f"{explanation.component} did not run in run {explanation.run} {reason}."]
    if explanation.last_run is not None:
        last = explanation.last_run
        lines.append(f"  its latest execution: {last}, {last.state}.")
    return lines


def _output_lines(explanation: Explanation) -> list[str]:
    return [
        f"  {key}: {_describe(artifact, explanation.run, with_producer=False)}"
        for key, artifacts in explanation.outputs
        for artifact in artifacts
    ]


def _cached_lines(explanation: Explanation) -> list[str]:
    name, run, execution = explanation.component, explanation.run, explanation.execution
    source = explanation.reused_from
    if source is None:
        headline = (
            f"{name} came from cache in run {run} (execution {execution.id}), but MLMD holds no "
            "earlier execution that wrote the outputs it reused:"
        )
    else:
        headline = (
            f"{name} came from cache in run {run} (execution {execution.id}): same inputs and "
            f"parameters as {source}, whose outputs it reused:"
        )
    return [headline, *_output_lines(explanation)]


def _failed_lines(explanation: Explanation, logs_dir: pathlib.Path | None) -> list[str]:
    name, run, execution = explanation.component, explanation.run, explanation.execution
    if explanation.error:
        headline = f"{name} failed in run {run} ({execution.in_its_run}): {explanation.error}"
    else:
        where = f" in {logs_dir}" if logs_dir else ""
        headline = (
            f"{name} failed in run {run} ({execution.in_its_run}). MLMD holds no error message "
            "(TFX records one only when an executor returns an error code, not when it raises): "
            f"the traceback is in the run's log{where}."
        )
    return [headline, "It did not come from cache:", *_why_lines(explanation)]


def format_explanation(explanation: Explanation, logs_dir: pathlib.Path | None = None) -> list[str]:
    """The explanation as console lines; `logs_dir` is where a failed run's traceback is."""
    name, run, execution = explanation.component, explanation.run, explanation.execution
    if explanation.outcome == NOT_RUN:
        return _not_run_lines(explanation)
    if explanation.outcome == CACHED:
        return _cached_lines(explanation)
    if explanation.outcome == FAILED:
        return _failed_lines(explanation, logs_dir)
    if explanation.outcome == UNFINISHED:
        return [
            f"{name} did not finish in run {run}: its {execution.in_its_run} is "
            f"{execution.state} (the run was interrupted)."
        ]
    if explanation.outcome == UNCACHEABLE:
        return [
            f"{name} ran in run {run} ({execution.in_its_run}): it has no cache key "
            f"({explanation.execution_type}); TFX runs resolver and importer nodes in every run.",
            *_output_lines(explanation),
        ]
    return [
        f"{name} ran in run {run} ({execution.in_its_run}), not from cache:",
        *_why_lines(explanation),
    ]


# --- the command -----------------------------------------------------------------------------

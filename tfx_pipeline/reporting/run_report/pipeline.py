"""Section 1: the pipeline as a picture, each component's state and duration, and any failure."""

import datetime

from tfx_pipeline import metadata
from tfx_pipeline.reporting.html import charts
from tfx_pipeline.reporting.html.page import Html, badge, join, section, table, tag
from tfx_pipeline.reporting.run_report.facts import RunFacts

# MLMD's execution states as the report names them.
STATES = {
    "COMPLETE": "ran",
    "CACHED": "cached",
    "FAILED": "failed",
    "RUNNING": "running",
    "NEW": "running",
    "CANCELED": "failed",
}
BADGES = {"ran": "ok", "cached": "", "failed": "fail", "skipped": "", "running": "warn"}


def node_state(facts: RunFacts, node: str) -> str:
    execution = facts.by_node.get(node)
    if execution is None:
        return "skipped"
    return STATES.get(execution.state, "unknown")


def graph_of(facts: RunFacts) -> tuple[list[str], list[tuple[str, str]]]:
    """The nodes and edges: the runner's pipeline when it gave one, else read from MLMD.

    From MLMD, the nodes are those of the run, and when it stopped early also every node other
    runs of this pipeline executed (so a node the failure skipped still shows); the edges link
    each input artifact to the node of this run that output it.
    """
    if facts.graph is not None:
        return list(facts.graph.nodes), list(facts.graph.edges)
    nodes = [execution.node_id for execution in facts.executions]
    stopped = any(STATES.get(e.state) in ("failed", "running") for e in facts.executions)
    for run in metadata.run_contexts(facts.store, facts.pipeline_name) if stopped else []:
        if run.id == facts.run.id:
            continue
        for execution in facts.store.get_executions_by_context(run.id):
            node = metadata.node_id(facts.store, execution.id, facts.pipeline_name)
            if node not in nodes and node != "?":
                nodes.append(node)
    producers: dict[int, set[str]] = {}
    for execution in facts.executions:
        for artifacts in execution.outputs.values():
            for artifact in artifacts:
                producers.setdefault(artifact.id, set()).add(execution.node_id)
    edges = sorted(
        {
            (upstream, execution.node_id)
            for execution in facts.executions
            for artifacts in execution.inputs.values()
            for artifact in artifacts
            for upstream in producers.get(artifact.id, ())
            if upstream != execution.node_id
        }
    )
    return nodes, edges


def _clock(millis: int) -> str:
    return datetime.datetime.fromtimestamp(millis / 1000).strftime("%H:%M:%S")


def pipeline_section(facts: RunFacts) -> Html:
    nodes, edges = graph_of(facts)
    graph_nodes = []
    rows = []
    row_classes = []
    for node in nodes:
        state = node_state(facts, node)
        execution = facts.by_node.get(node)
        seconds = f"{execution.seconds:.1f} s" if execution else ""
        note = ""
        if state == "failed" and execution is not None:
            note = metadata.execution_error(execution.execution) or facts.failure or "see the log"
        elif state == "skipped":
            note = "did not run in this run (an upstream component failed or the run stopped)"
        elif state == "cached":
            note = "outputs reused from an earlier execution"
        graph_nodes.append(
            charts.GraphNode(node_id=node, label=node, state=state, detail=seconds or state)
        )
        rows.append(
            [
                node,
                badge(state, BADGES.get(state, "")),
                _clock(execution.execution.create_time_since_epoch) if execution else "",
                f"{execution.seconds:.1f}" if execution else "",
                note,
            ]
        )
        row_classes.append("fail" if state == "failed" else None)
    failed = [node for node in nodes if node_state(facts, node) == "failed"]
    head = []
    if failed or facts.failure:
        message = facts.failure or f"{failed[0]} failed"
        head.append(tag("p", join([badge("FAILED", "fail"), " ", message])))
    if facts.log_path:
        head.append(tag("p", join(["Full log: ", tag("code", facts.log_path)])))
    return section(
        "pipeline",
        "1. Pipeline",
        *head,
        charts.pipeline_graph(graph_nodes, edges, title=f"Run {facts.run.name}"),
        table(
            ["component", "state", "started", "seconds", "note"],
            rows,
            numeric=[3],
            row_classes=row_classes,
            table_id="components",
        ),
    )

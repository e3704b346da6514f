"""What every section of the run report reads: one run's executions, summary and files."""

import dataclasses
import datetime
import os
from typing import Any

from ml_metadata.proto import metadata_store_pb2

from tfx_pipeline import metadata
from tfx_pipeline.reporting import run_summary


@dataclasses.dataclass(frozen=True)
class PipelineGraph:
    """The pipeline's nodes in order and its edges (upstream, downstream), when the caller knows them."""

    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]


@dataclasses.dataclass
class RunFacts:
    """One run, read once from MLMD, for every section."""

    store: Any
    pipeline_name: str
    run: metadata_store_pb2.Context
    executions: list[metadata.NodeExecution]
    summary: run_summary.RunSummary
    log_path: str | None = None
    failure: str | None = None  # the runner's one-line failure, when it knows one
    graph: PipelineGraph | None = None
    live_max_auc_drop: float | None = None  # None: the Evaluator's max_auc_drop

    @property
    def by_node(self) -> dict[str, metadata.NodeExecution]:
        return {execution.node_id: execution for execution in self.executions}

    def outputs(self, node: str, key: str) -> list[metadata.Artifact]:
        execution = self.by_node.get(node)
        return execution.outputs.get(key, []) if execution else []

    def inputs(self, node: str, key: str) -> list[metadata.Artifact]:
        execution = self.by_node.get(node)
        return execution.inputs.get(key, []) if execution else []

    @property
    def started(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.run.create_time_since_epoch / 1000)

    @property
    def seconds(self) -> float:
        """From the run's creation to its last execution's last update."""
        if not self.executions:
            return 0.0
        last = max(e.execution.last_update_time_since_epoch for e in self.executions)
        return max(0.0, (last - self.run.create_time_since_epoch) / 1000)


def read_facts(
    store: Any,
    pipeline_name: str,
    run: metadata_store_pb2.Context,
    log_path: str | None = None,
    failure: str | None = None,
    graph: PipelineGraph | None = None,
) -> RunFacts:
    executions = metadata.run_executions(store, pipeline_name, run)
    return RunFacts(
        store=store,
        pipeline_name=pipeline_name,
        run=run,
        executions=executions,
        summary=run_summary.summarize(run.name, executions),
        log_path=log_path,
        failure=failure,
        graph=graph,
    )


def directory_bytes(path: str) -> int | None:
    """Total size of the files under a local directory; None when it is not local or not there."""
    if "://" in path or not os.path.isdir(path):
        return None
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )

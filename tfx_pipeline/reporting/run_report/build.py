"""The run report assembled: read the run once, render the six sections, write one HTML file."""

import dataclasses
import datetime
import json
import pathlib
from typing import Any

from ml_metadata.proto import metadata_store_pb2

from tfx_pipeline.layout import OutputLayout
from tfx_pipeline.reporting.html import page
from tfx_pipeline.reporting.run_report import data, evaluation, pipeline, serving, training
from tfx_pipeline.reporting.run_report.facts import PipelineGraph, RunFacts, read_facts

NAVIGATION = (
    ("pipeline", "Pipeline"),
    ("data", "Data"),
    ("training", "Training"),
    ("evaluation", "Evaluation"),
    ("serving", "Serving"),
    ("lineage", "Lineage"),
)


def report_path(output_dir: pathlib.Path, run: metadata_store_pb2.Context) -> pathlib.Path:
    """reports/run-<YYYYmmdd-HHMMSS>.html, from the time the run started."""
    started = datetime.datetime.fromtimestamp(run.create_time_since_epoch / 1000)
    return OutputLayout(output_dir).reports_dir / f"run-{started:%Y%m%d-%H%M%S}.html"


def build_report(facts: RunFacts) -> str:
    """The whole page for one run."""
    summary = facts.summary
    outcome = (
        "FAILED"
        if facts.failure or any(e.state == "FAILED" for e in facts.executions)
        else "pushed"
        if summary.pushed_path and summary.push_note == ""
        else "unchanged model, nothing new pushed"
        if summary.pushed_path
        else "not blessed"
        if False in (summary.blessed, summary.infra_blessed)
        else "nothing pushed"
    )
    subtitle = (
        f"Pipeline '{facts.pipeline_name}', run {facts.run.name}, started "
        f"{facts.started:%Y-%m-%d %H:%M:%S}, {facts.seconds:.0f} s: {outcome}"
    )
    body = page.join(
        [
            pipeline.pipeline_section(facts),
            data.data_section(facts),
            training.training_section(facts),
            evaluation.evaluation_section(facts),
            serving.serving_section(facts),
            serving.lineage_section(facts),
        ]
    )
    return page.document(f"Run report: {facts.run.name}", body, subtitle=subtitle, nav=NAVIGATION)


def write_report(
    store: Any,
    output_dir: pathlib.Path,
    pipeline_name: str,
    run: metadata_store_pb2.Context,
    log_path: str | None = None,
    failure: str | None = None,
    graph: PipelineGraph | None = None,
    live_max_auc_drop: float | None = None,
) -> pathlib.Path:
    """Writes the run's report under `<output_dir>/reports/` (replacing an earlier one); its path.

    What only the runner knows (its log file, the failure it caught, the pipeline's graph, the
    live-quality drop limit it was given) is kept beside the report, so a report written again
    later from MLMD says the same.
    """
    path = report_path(output_dir, run)
    path.parent.mkdir(parents=True, exist_ok=True)
    runner_facts = path.with_suffix(".json")
    if log_path or failure or graph or live_max_auc_drop is not None:
        runner_facts.write_text(
            json.dumps(
                {
                    "log_path": log_path,
                    "failure": failure,
                    "graph": dataclasses.asdict(graph) if graph else None,
                    "live_max_auc_drop": live_max_auc_drop,
                },
                indent=1,
            )
        )
    elif runner_facts.exists():
        known = json.loads(runner_facts.read_text())
        log_path, failure = known.get("log_path"), known.get("failure")
        live_max_auc_drop = known.get("live_max_auc_drop")
        if known.get("graph"):
            graph = PipelineGraph(
                nodes=tuple(known["graph"]["nodes"]),
                edges=tuple(tuple(edge) for edge in known["graph"]["edges"]),
            )
    facts = read_facts(store, pipeline_name, run, log_path=log_path, failure=failure, graph=graph)
    facts.live_max_auc_drop = live_max_auc_drop
    temporary = path.with_suffix(".html.tmp")
    temporary.write_text(build_report(facts), encoding="utf-8")
    temporary.replace(path)
    return path

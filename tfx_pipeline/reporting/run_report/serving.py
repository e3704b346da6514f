"""Sections 5 and 6: what reached serving (or why nothing did), and the lineage that led there."""

import datetime
import os

from tfx_pipeline import metadata, node_ids
from tfx_pipeline.metadata import custom_property
from tfx_pipeline.reporting.html.page import Html, badge, join, key_values, section, table, tag
from tfx_pipeline.reporting.run_report.facts import RunFacts, directory_bytes

# The lineage, stage by stage: (stage, node or nodes that may produce it, output key).
LINEAGE = (
    ("span", node_ids.EXAMPLE_GEN, "examples"),
    ("statistics", node_ids.STATISTICS_GEN, "statistics"),
    ("schema", (node_ids.IMPORT_SCHEMA_GEN, node_ids.SCHEMA_GEN), "schema"),
    ("transform graph", node_ids.TRANSFORM, "transform_graph"),
    ("hyperparameters", node_ids.TUNER, "best_hyperparameters"),
    ("model", node_ids.TRAINER, "model"),
    ("evaluation", node_ids.EVALUATOR, "evaluation"),
    ("blessing", node_ids.EVALUATOR, "blessing"),
    ("infra blessing", node_ids.INFRA_VALIDATOR, "blessing"),
    ("pushed version", node_ids.PUSHER, "pushed_model"),
)
# Properties worth a glance in the lineage table.
SHOWN_PROPERTIES = ("span", "version", "blessed", "pushed", "pushed_version")


def serving_section(facts: RunFacts) -> Html:
    summary = facts.summary
    pairs = []
    if summary.infra_blessed is not None:
        pairs.append(
            (
                "infra validation",
                join(
                    [
                        badge(
                            "passed" if summary.infra_blessed else "FAILED",
                            "ok" if summary.infra_blessed else "fail",
                        ),
                        " ",
                        summary.infra,
                    ]
                ),
            )
        )
    pushed = facts.outputs(node_ids.PUSHER, "pushed_model")
    if summary.pushed_path:
        size = directory_bytes(summary.pushed_path)
        pushed_at = datetime.datetime.fromtimestamp(
            facts.by_node[node_ids.PUSHER].execution.last_update_time_since_epoch / 1000
        ).strftime("%Y-%m-%d %H:%M:%S")
        pairs += [
            ("pushed", join([badge("yes", "ok"), " ", summary.push_note])),
            ("version", str(custom_property(pushed[0], "pushed_version"))),
            ("path", tag("code", summary.pushed_path)),
            ("size", f"{size / 1e6:.1f} MB" if size is not None else "not local"),
            ("pushed at", pushed_at),
        ]
        card = os.path.join(summary.pushed_path, "assets.extra", "model_card.html")
        if os.path.exists(card):
            pairs.append(("model card", tag("a", card, href="file://" + card)))
    else:
        reason = summary.push_note
        if summary.blessed is False and summary.evaluation is not None:
            reason += ": " + "; ".join(summary.evaluation.blessing_reasons)
        pairs.append(("pushed", join([badge("nothing", "fail" if pushed else ""), " ", reason])))
    return section("serving", "5. Serving", key_values(pairs))


def _produced_by(facts: RunFacts, artifact_id: int) -> str:
    execution, _ = metadata.producer(facts.store, artifact_id)
    if execution is None:
        return "?"
    node = metadata.node_id(facts.store, execution.id, facts.pipeline_name)
    runs = [
        c.name
        for c in facts.store.get_contexts_by_execution(execution.id)
        if c.type in metadata.RUN_CONTEXT_TYPES
    ]
    run = runs[0] if runs else "?"
    return f"{node}, execution {execution.id}" + ("" if run == facts.run.name else f", run {run}")


def lineage_section(facts: RunFacts) -> Html:
    rows = []
    for stage, nodes, key in LINEAGE:
        nodes = nodes if isinstance(nodes, tuple) else (nodes,)
        artifacts = [a for node in nodes for a in facts.outputs(node, key)]
        if not artifacts and stage == "hyperparameters":
            artifacts = facts.inputs(node_ids.TRAINER, "hyperparameters")
        for artifact in artifacts:
            properties = ", ".join(
                f"{name}={custom_property(artifact, name)}"
                for name in SHOWN_PROPERTIES
                if custom_property(artifact, name) is not None
            )
            rows.append(
                [
                    stage,
                    str(artifact.id),
                    properties,
                    _produced_by(facts, artifact.id),
                    tag("code", artifact.uri),
                ]
            )
        if not artifacts:
            rows.append([stage, "-", "", "not produced in this run", ""])
    return section(
        "lineage",
        "6. Lineage",
        tag("p", "Each artifact's MLMD id, its producer, and where it is stored.", class_="note"),
        table(
            ["stage", "artifact id", "properties", "produced by", "URI"],
            rows,
            numeric=[1],
            table_id="lineage-table",
        ),
    )

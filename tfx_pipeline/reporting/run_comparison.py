"""Runs side by side: one line per run for the list, and two runs compared, as text and as HTML.

Everything comes from MLMD and the artifacts, through the same RunFacts the run report reads.
"""

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

from ml_metadata.proto import metadata_store_pb2

from tfx_pipeline import metadata, node_ids
from tfx_pipeline.metadata import custom_property
from tfx_pipeline.reporting.evaluation import format_estimate, overall_auc
from tfx_pipeline.reporting.html import page
from tfx_pipeline.reporting.run_report.data import SPLITS, read_statistics
from tfx_pipeline.reporting.run_report.facts import RunFacts, read_facts


@dataclasses.dataclass(frozen=True)
class RunLine:
    """One run in the list of runs."""

    run_id: str
    started: str
    spans: str
    rows: int | None
    ran: int
    cached: int
    failed: int
    hyperparameters: dict[str, object]
    auc: float | None
    blessed: bool | None
    pushed_version: str  # the version, "unchanged", or "-"
    seconds: float


def _spans(facts: RunFacts) -> str:
    return ",".join(
        str(custom_property(a, "span")) for a in facts.outputs(node_ids.EXAMPLE_GEN, "examples")
    )


def split_rows(facts: RunFacts) -> dict[str, int]:
    rows = {}
    for artifact in facts.outputs(node_ids.STATISTICS_GEN, "statistics"):
        for split in SPLITS:
            dataset = read_statistics(artifact.uri, split)
            if dataset is not None:
                rows[split] = dataset.num_examples
    return rows


def pushed_version(facts: RunFacts) -> str:
    pushed = facts.outputs(node_ids.PUSHER, "pushed_model")
    if not pushed or custom_property(pushed[0], "pushed") != 1:
        return "-"
    if facts.by_node[node_ids.PUSHER].state == "CACHED":
        return "unchanged"
    return str(custom_property(pushed[0], "pushed_version"))


def run_line(facts: RunFacts) -> RunLine:
    states = [execution.state for execution in facts.executions]
    evaluation = facts.outputs(node_ids.EVALUATOR, "evaluation")
    rows = split_rows(facts)
    return RunLine(
        run_id=facts.run.name,
        started=f"{facts.started:%Y-%m-%d %H:%M:%S}",
        spans=_spans(facts) or "-",
        rows=sum(rows.values()) if rows else None,
        ran=states.count("COMPLETE"),
        cached=states.count("CACHED"),
        failed=states.count("FAILED"),
        hyperparameters=facts.summary.hyperparameters or {},
        auc=overall_auc(evaluation[0].uri) if evaluation else None,
        blessed=facts.summary.blessed,
        pushed_version=pushed_version(facts),
        seconds=facts.seconds,
    )


def list_runs(store: Any, pipeline_name: str) -> list[RunLine]:
    """Every run of the pipeline, oldest first."""
    return [
        run_line(read_facts(store, pipeline_name, run))
        for run in metadata.run_contexts(store, pipeline_name)
    ]


def _value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def format_hyperparameters(values: dict[str, object]) -> str:
    return " ".join(f"{name}={_value(value)}" for name, value in sorted(values.items())) or "-"


def format_runs(lines: Sequence[RunLine]) -> Iterable[str]:
    header = (
        f"{'run':<28}{'started':<21}{'span':<6}{'rows':>8} {'ran/cached/failed':<18}"
        f"{'AUC':>7} {'blessed':<8}{'pushed':<11}{'seconds':>8}  hyperparameters"
    )
    yield header
    for line in lines:
        states = f"{line.ran}/{line.cached}/{line.failed}"
        yield (
            f"{line.run_id:<28}{line.started:<21}{line.spans:<6}{_value(line.rows):>8} "
            f"{states:<18}{_value(line.auc):>7} {_value(line.blessed):<8}"
            f"{line.pushed_version:<11}{line.seconds:>8.0f}  "
            f"{format_hyperparameters(line.hyperparameters)}"
        )


# --- two runs compared ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Two runs' facts in tables of (label, A, B) rows, each table titled."""

    first: RunFacts
    second: RunFacts
    tables: list[tuple[str, list[str], list[list[str]]]]


def _metric_rows(facts: RunFacts) -> dict[tuple[str, str], str]:
    evaluation = facts.summary.evaluation
    if evaluation is None:
        return {}
    found = {("overall", row.name): format_estimate(row.candidate) for row in evaluation.metrics}
    for row in evaluation.slice_metrics:
        found[(row.name, "AUC")] = (
            format_estimate(row.auc) + (f" ({row.example_count})" if row.example_count else "")
            if row.auc
            else "n/a"
        )
        found[(row.name, "verdict")] = row.verdict
    return found


def _feature_facts(facts: RunFacts) -> dict[str, str]:
    """Per feature of this span: its missing share, and its mean or most common value."""
    found = {}
    for artifact in facts.outputs(node_ids.STATISTICS_GEN, "statistics"):
        dataset = read_statistics(artifact.uri, "train")
        if dataset is None:
            continue
        for feature in dataset.features:
            name = ".".join(feature.path.step) or feature.name
            if feature.HasField("num_stats"):
                common = feature.num_stats.common_stats
                shown = f"mean {feature.num_stats.mean:.4g}"
            elif feature.HasField("string_stats"):
                common = feature.string_stats.common_stats
                top = feature.string_stats.top_values
                shown = f"{feature.string_stats.unique} values, top '{top[0].value}'" if top else ""
            else:
                continue
            total = common.num_missing + common.num_non_missing
            missing = common.num_missing / total if total else 0.0
            found[name] = f"{shown}; missing {missing:.1%}"
    return found


def _pairs(first: dict[Any, str], second: dict[Any, str], label: Any = str) -> list[list[str]]:
    keys = list(first) + [key for key in second if key not in first]
    return [
        [
            *label(key),
            first.get(key, "-"),
            second.get(key, "-"),
            "" if first.get(key) == second.get(key) else "changed",
        ]
        for key in keys
    ]


def compare(
    store: Any, pipeline_name: str, runs: Sequence[metadata_store_pb2.Context]
) -> Comparison:
    first, second = (read_facts(store, pipeline_name, run) for run in runs)
    overview = {}
    for facts in (first, second):
        line = run_line(facts)
        rows = split_rows(facts)
        overview[facts.run.id] = {
            "started": line.started,
            "seconds": f"{line.seconds:.0f}",
            "spans": line.spans,
            **{f"rows ({split})": f"{count:,}" for split, count in rows.items()},
            "components ran / cached / failed": f"{line.ran} / {line.cached} / {line.failed}",
            "overall AUC": _value(line.auc),
            "blessed": _value(line.blessed),
            "pushed version": line.pushed_version,
        }
    states = [
        {e.node_id: f"{e.state.lower()} {e.seconds:.1f} s" for e in facts.executions}
        for facts in (first, second)
    ]
    tables = [
        (
            "Overview",
            ["", "A", "B", ""],
            _pairs(overview[first.run.id], overview[second.run.id], lambda k: [k]),
        ),
        ("Components", ["component", "A", "B", ""], _pairs(*states, lambda k: [k])),
        (
            "Hyperparameters",
            ["hyperparameter", "A", "B", ""],
            _pairs(
                {k: _value(v) for k, v in (first.summary.hyperparameters or {}).items()},
                {k: _value(v) for k, v in (second.summary.hyperparameters or {}).items()},
                lambda k: [k],
            ),
        ),
        (
            "Metrics by slice",
            ["slice", "metric", "A", "B", ""],
            _pairs(_metric_rows(first), _metric_rows(second), lambda k: list(k)),
        ),
        (
            "Data (train split)",
            ["feature", "A", "B", ""],
            _pairs(_feature_facts(first), _feature_facts(second), lambda k: [k]),
        ),
    ]
    return Comparison(first=first, second=second, tables=tables)


def format_comparison(comparison: Comparison) -> Iterable[str]:
    yield f"A: run {comparison.first.run.name}"
    yield f"B: run {comparison.second.run.name}"
    for title, headers, rows in comparison.tables:
        yield ""
        yield f"{title}:"
        widths = [
            max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)
        ]
        for row in [headers, *rows]:
            yield (
                "  "
                + "  ".join(
                    str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )


def comparison_page(comparison: Comparison) -> str:
    first, second = comparison.first.run.name, comparison.second.run.name
    sections = []
    for index, (title, headers, rows) in enumerate(comparison.tables):
        sections.append(
            page.section(
                f"compare-{index}",
                title,
                page.table(
                    headers,
                    rows,
                    row_classes=["changed" if row[-1] else None for row in rows],
                ),
            )
        )
    return page.document(
        f"Runs compared: {first} and {second}",
        page.join(sections),
        subtitle=f"A = {first}, B = {second}; rows that differ are marked changed",
        nav=[(f"compare-{i}", title) for i, (title, _, _) in enumerate(comparison.tables)],
    )

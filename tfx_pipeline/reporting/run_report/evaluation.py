"""Section 4: evaluation. Every metric on every slice against the baseline, the verdicts, ROC, calibration."""

from tfx_pipeline import node_ids
from tfx_pipeline.reporting import evaluation_plots, live_quality
from tfx_pipeline.reporting.evaluation import (
    CHANGE_RANGE,
    INTERVAL_NOTE,
    RATE_RANGE,
    format_estimate,
    format_value,
)
from tfx_pipeline.reporting.html import charts
from tfx_pipeline.reporting.html.page import Html, badge, join, key_values, section, table, tag
from tfx_pipeline.reporting.run_report.facts import RunFacts
from tfx_pipeline.reporting.run_summary import RATE_METRICS

VERDICT_BADGES = {"pass": "ok", "FAIL": "fail"}


def _verdict(verdict: str) -> Html:
    return (
        badge(verdict, VERDICT_BADGES.get(verdict, "")) if verdict not in ("", "-") else Html("-")
    )


def live_quality_block(facts: RunFacts) -> list[Html]:
    """The served version on this run's span next to its evaluation AUC (reporting/live_quality.py)."""
    evaluation = facts.summary.evaluation
    live = live_quality.for_run(
        facts.store, facts.pipeline_name, facts.executions, evaluation, facts.live_max_auc_drop
    )
    if live is None:
        return []
    title = tag("h3", "Live quality of the served version")
    if not live.measured:
        return [title, tag("p", f"Not measured: {live.note}.", class_="note", id="live-quality")]
    verdict = live_quality.verdict(live)
    kind = "fail" if live.significant_drop else "ok" if verdict.startswith("no ") else ""
    scored = f"{live_quality.spans_text(live.spans)}: {live.example_count:,} eval rows"
    if live.measured_in_run is not None:
        scored += f" (from cache: measured in run {live.measured_in_run})"
    evaluated = (
        f"{format_estimate(live.evaluated_auc, within=RATE_RANGE)} on "
        f"{live_quality.spans_text(live.evaluated_spans)}"
        if live.evaluated_auc is not None
        else "-"
    )
    calibration = live.calibration
    rows = [
        ("served version", str(live.version)),
        ("scored", scored),
        ("live AUC", format_estimate(live.auc, within=RATE_RANGE)),
        ("evaluation AUC", evaluated),
        ("change", live.change.text(signed=True) if live.change is not None else "-"),
        ("verdict", badge(verdict, kind)),
        (
            "calibration",
            f"mean prediction {calibration.mean_prediction:.3f}, observed positive rate "
            f"{calibration.observed_rate:.3f}, expected calibration error "
            f"{calibration.expected_calibration_error:.3f}"
            if calibration is not None
            else "-",
        ),
    ]
    note = (
        "The baseline of this evaluation is the served version, and this span is newer than "
        "every span it was trained or evaluated on: its AUC here is its quality on newly "
        "labelled data. A drop is significant when the whole 95% interval of the change "
        "(from the two jackknife standard errors) lies below minus the limit."
    )
    return [title, tag("div", key_values(rows), id="live-quality"), tag("p", note, class_="note")]


def evaluation_section(facts: RunFacts) -> Html:
    evaluation = facts.summary.evaluation
    if evaluation is None:
        return section(
            "evaluation", "4. Evaluation", tag("p", "The Evaluator did not run.", class_="note")
        )
    blessed = facts.summary.blessed
    verdict = (
        badge("BLESSED", "ok")
        if blessed
        else badge("NOT BLESSED", "fail")
        if blessed is False
        else badge("no blessing", "")
    )
    parts = [tag("p", join([verdict, " ", INTERVAL_NOTE]))]
    if blessed is False:
        parts.append(
            tag(
                "ul",
                join(tag("li", reason) for reason in evaluation.blessing_reasons),
                id="reasons",
            )
        )
    overall_rows = [
        [
            row.name,
            format_estimate(row.candidate, within=RATE_RANGE if row.name in RATE_METRICS else None),
            format_estimate(row.baseline, within=RATE_RANGE if row.name in RATE_METRICS else None),
            row.threshold or "-",
        ]
        for row in evaluation.metrics
    ]
    if evaluation.auc_change is not None:
        overall_rows.append(
            [
                "AUC change",
                format_estimate(evaluation.auc_change, signed=True, within=CHANGE_RANGE),
                "",
                "",
            ]
        )
    parts += [
        tag("h3", "Overall slice"),
        table(["metric", "candidate", "baseline", "threshold"], overall_rows, table_id="overall"),
    ]
    if not evaluation.has_baseline:
        parts.append(
            tag("p", "No earlier blessed model: no baseline to compare with.", class_="note")
        )
    parts += live_quality_block(facts)
    if evaluation.slice_metrics:
        parts += [
            tag("h3", "AUC by slice"),
            table(
                ["slice", "examples", "AUC", "baseline AUC", "change", "verdict", "note"],
                [
                    [
                        row.name,
                        f"{row.example_count:,}" if row.example_count else "",
                        format_estimate(row.auc, within=RATE_RANGE) if row.auc else "n/a",
                        format_estimate(row.baseline_auc, within=RATE_RANGE)
                        if row.baseline_auc
                        else "-",
                        format_estimate(row.auc_change, signed=True, within=CHANGE_RANGE)
                        if row.auc_change
                        else "-",
                        _verdict(row.verdict),
                        row.note,
                    ]
                    for row in evaluation.slice_metrics
                ],
                numeric=[1],
                row_classes=[
                    "fail" if row.verdict == "FAIL" else None for row in evaluation.slice_metrics
                ],
                table_id="slices",
            ),
        ]
    if evaluation.rows:
        parts.append(
            tag(
                "details",
                join(
                    [
                        tag(
                            "summary",
                            f"Every metric on every slice ({len(evaluation.rows)} values)",
                        ),
                        table(
                            ["slice", "metric", "candidate", "baseline", "threshold", "verdict"],
                            [
                                [
                                    name,
                                    metric,
                                    format_value(candidate),
                                    format_value(baseline),
                                    threshold or "-",
                                    _verdict(verdict),
                                ]
                                for name, metric, candidate, baseline, threshold, verdict in evaluation.rows
                            ],
                            numeric=[2, 3],
                            table_id="all-metrics",
                        ),
                    ]
                ),
            )
        )
    uri = facts.outputs(node_ids.EVALUATOR, "evaluation")
    plots = evaluation_plots.read_plots(uri[0].uri).get("overall") if uri else None
    if plots is not None:
        parts.append(
            tag(
                "div",
                join(
                    [
                        tag("div", charts.roc_curve(plots.roc, auc=plots.auc), class_="card"),
                        tag("div", charts.calibration_plot(plots.calibration), class_="card"),
                    ]
                ),
                class_="grid",
                id="plots",
            )
        )
    else:
        parts.append(tag("p", "No ROC or calibration plot was recorded.", class_="note"))
    return section("evaluation", "4. Evaluation", *parts)

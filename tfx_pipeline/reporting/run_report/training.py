"""Section 3: training. The hyperparameter search, the values the Trainer used, its curves."""

from tfx_pipeline import node_ids
from tfx_pipeline.reporting import training as training_lib
from tfx_pipeline.reporting.html import charts
from tfx_pipeline.reporting.html.page import Html, join, section, table, tag
from tfx_pipeline.reporting.run_report.facts import RunFacts


def _value(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def trials_part(facts: RunFacts) -> list[Html]:
    results = facts.outputs(node_ids.TUNER, "tuner_results")
    if not results:
        return []
    trials = training_lib.read_trials(results[0].uri)
    if not trials:
        return [tag("p", "The Tuner recorded no trials.", class_="note")]
    names = sorted({name for trial in trials for name in trial.values})
    best = max((t for t in trials if t.score is not None), key=lambda t: t.score, default=None)
    rows = [
        [
            str(trial.number),
            *(_value(trial.values.get(name, "")) for name in names),
            f"{trial.score:.4f}" if trial.score is not None else "-",
            "best" if trial is best else (trial.status or ""),
        ]
        for trial in trials
    ]
    scored = [(float(t.number), t.score) for t in trials if t.score is not None]
    parts = [
        tag("h3", f"Hyperparameter search ({len(trials)} trials)"),
        table(["trial", *names, "score", ""], rows, numeric=[len(names) + 1], table_id="trials"),
    ]
    if len(scored) > 1:
        parts.append(charts.line_chart([("trial score", scored)], "Trial scores", "trial", "score"))
    return parts


def curves_part(facts: RunFacts) -> list[Html]:
    runs = facts.outputs(node_ids.TRAINER, "model_run")
    history = training_lib.read_training_history(runs[0].uri) if runs else None
    if history is None:
        return [tag("p", "No training curve was recorded for this model.", class_="note")]
    charts_found = []
    # Loss and AUC first: what the Trainer minimises and what the Evaluator judges.
    first = {"loss": 0, "auc": 1}
    names = [name for name in history.metrics if not name.startswith("val_")]
    for metric in sorted(names, key=lambda name: (first.get(name, 2), name)):
        series = [
            (metric, list(zip(map(float, history.steps), history.metrics[metric], strict=False)))
        ]
        if f"val_{metric}" in history.metrics:
            series.append(
                (
                    f"val_{metric}",
                    list(
                        zip(
                            map(float, history.steps),
                            history.metrics[f"val_{metric}"],
                            strict=False,
                        )
                    ),
                )
            )
        charts_found.append(
            tag("div", charts.line_chart(series, metric, "training step", metric), class_="card")
        )
    return [tag("h3", "Training curves"), tag("div", join(charts_found), class_="grid")]


def training_section(facts: RunFacts) -> Html:
    summary = facts.summary
    if node_ids.TRAINER not in facts.by_node:
        return section(
            "training", "3. Training", tag("p", "The Trainer did not run.", class_="note")
        )
    chosen = summary.hyperparameters or {}
    return section(
        "training",
        "3. Training",
        *trials_part(facts),
        tag("h3", "Hyperparameters used"),
        tag("p", summary.hyperparameters_origin or "model defaults"),
        table(
            ["hyperparameter", "value"],
            [[name, _value(value)] for name, value in sorted(chosen.items())],
            table_id="hyperparameters",
        ),
        *curves_part(facts),
    )

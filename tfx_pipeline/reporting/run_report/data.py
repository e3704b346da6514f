"""Section 2: the data. Rows per split; per feature this span, the previous span and the training data.

Everything here comes from statistics TFDV already computed (StatisticsGen's output), so the
cost does not grow with the rows: a feature's chart is at most HISTOGRAM_BINS bins or TOP_VALUES
categories whatever the span's size.
"""

import dataclasses
import json
import math
import os

from tensorflow_metadata.proto.v0 import statistics_pb2

from tfx_pipeline import metadata, node_ids
from tfx_pipeline.components.data_gate.gate import read_anomalies, read_drift
from tfx_pipeline.drift import format_p
from tfx_pipeline.reporting.html import charts
from tfx_pipeline.reporting.html.page import Html, esc, join, section, table, tag
from tfx_pipeline.reporting.run_report.facts import RunFacts

HISTOGRAM_BINS = 20
TOP_VALUES = 8
SPLITS = ("train", "eval")
THIS_SPAN = "this span"
PREVIOUS_SPAN = "previous span"
TRAINING_DATA = "training data"
# How the gate names findings about the whole data set rather than one feature.
DATASET_NAMES = ("", "(dataset)", "dataset")


@dataclasses.dataclass
class FeatureCounts:
    """One feature in one data set: how often it is missing, and its value distribution."""

    examples: int = 0
    missing: int = 0
    buckets: list[tuple[float, float, float]] = dataclasses.field(default_factory=list)
    top: dict[str, float] = dataclasses.field(default_factory=dict)  # value -> count
    present: int = 0

    def merge(self, other: "FeatureCounts") -> None:
        self.examples += other.examples
        self.missing += other.missing
        self.present += other.present
        self.buckets += other.buckets
        for value, count in other.top.items():
            self.top[value] = self.top.get(value, 0.0) + count


def read_statistics(uri: str, split: str) -> statistics_pb2.DatasetFeatureStatistics | None:
    path = os.path.join(uri, f"Split-{split}", "FeatureStats.pb")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as handle:
        datasets = statistics_pb2.DatasetFeatureStatisticsList.FromString(handle.read()).datasets
    return datasets[0] if datasets else None


def feature_name(feature: statistics_pb2.FeatureNameStatistics) -> str:
    return ".".join(feature.path.step) if feature.path.step else feature.name


def feature_counts(
    dataset: statistics_pb2.DatasetFeatureStatistics,
) -> dict[str, FeatureCounts]:
    """Per feature: examples, missing, histogram buckets (numbers) or value counts (categories)."""
    found = {}
    for feature in dataset.features:
        counts = FeatureCounts(examples=dataset.num_examples)
        if feature.HasField("string_stats"):
            common = feature.string_stats.common_stats
            ranked = feature.string_stats.rank_histogram.buckets
            counts.top = {b.label: b.sample_count for b in ranked} or {
                v.value: v.frequency for v in feature.string_stats.top_values
            }
        elif feature.HasField("num_stats"):
            common = feature.num_stats.common_stats
            standard = [
                h
                for h in feature.num_stats.histograms
                if h.type == statistics_pb2.Histogram.STANDARD
            ]
            if standard:
                counts.buckets = [
                    (b.low_value, b.high_value, b.sample_count)
                    for b in standard[0].buckets
                    if math.isfinite(b.low_value) and math.isfinite(b.high_value)
                ]
        else:
            continue
        counts.missing = int(common.num_missing)
        counts.present = int(common.num_non_missing)
        found[feature_name(feature)] = counts
    return found


def statistics_counts(uri: str, splits: tuple[str, ...] = SPLITS) -> dict[str, FeatureCounts]:
    """The features of a statistics artifact, the given splits merged."""
    merged: dict[str, FeatureCounts] = {}
    for split in splits:
        dataset = read_statistics(uri, split)
        if dataset is None:
            continue
        for name, counts in feature_counts(dataset).items():
            merged.setdefault(name, FeatureCounts()).merge(counts)
    return merged


def rebin(
    series: list[list[tuple[float, float, float]]], bins: int = HISTOGRAM_BINS
) -> list[list[tuple[float, float, float]]]:
    """Histograms with different edges onto one set of equal-width bins, as shares.

    A bucket's count is spread evenly over its range (TFDV keeps no finer detail); a
    zero-width bucket (a constant value) goes wholly to the bin that holds it.
    """
    edges = [edge for buckets in series for low, high, _ in buckets for edge in (low, high)]
    if not edges:
        return [[] for _ in series]
    low, high = min(edges), max(edges)
    if high <= low:
        return [[(low, high, 1.0)] if buckets else [] for buckets in series]
    width = (high - low) / bins
    shares = []
    for buckets in series:
        counts = [0.0] * bins
        for bucket_low, bucket_high, count in buckets:
            if bucket_high <= bucket_low:
                counts[min(bins - 1, int((bucket_low - low) / width))] += count
                continue
            for index in range(bins):
                start, end = low + index * width, low + (index + 1) * width
                overlap = min(end, bucket_high) - max(start, bucket_low)
                if overlap > 0:
                    counts[index] += count * overlap / (bucket_high - bucket_low)
        total = sum(counts)
        shares.append(
            [
                (low + index * width, low + (index + 1) * width, count / total)
                for index, count in enumerate(counts)
            ]
            if total
            else []
        )
    return shares


def top_shares(
    series: list[FeatureCounts], top: int = TOP_VALUES
) -> tuple[list[str], list[list[float]]]:
    """The most common values (of the first series first) and each series' share of them."""
    order: list[str] = []
    for counts in series:
        for value, _ in sorted(counts.top.items(), key=lambda item: (-item[1], item[0])):
            if value not in order:
                order.append(value)
            if len(order) >= top:
                break
        if len(order) >= top:
            break
    shares = [
        [
            (counts.top[value] / counts.present)
            if counts.present and value in counts.top
            else math.nan
            for value in order
        ]
        for counts in series
    ]
    return order, shares


def training_statistics(facts: RunFacts) -> tuple[list[str], dict[str, FeatureCounts]] | None:
    """The train split of every span the Trainer read, merged; None when it read only this span."""
    examples = facts.inputs(node_ids.TRAINER, "examples")
    this_span = {a.id for a in facts.outputs(node_ids.EXAMPLE_GEN, "examples")}
    if not examples or {a.id for a in examples} <= this_span:
        return None
    merged: dict[str, FeatureCounts] = {}
    spans = []
    for artifact in examples:
        statistics = metadata.statistics_of(facts.store, artifact.id)
        if statistics is None:
            continue
        spans.append(str(metadata.custom_property(artifact, "span")))
        for name, counts in statistics_counts(statistics.uri, ("train",)).items():
            merged.setdefault(name, FeatureCounts()).merge(counts)
    return (spans, merged) if merged else None


def gate_report(facts: RunFacts) -> tuple[list[dict], list[dict] | None]:
    """The data gate's findings and drift measurements (also when the gate failed the run)."""
    reports = facts.outputs(node_ids.DATA_GATE, "report")
    folders = [reports[0].uri] if reports else []
    gate = facts.by_node.get(node_ids.DATA_GATE)
    examples = facts.outputs(node_ids.EXAMPLE_GEN, "examples")
    if gate is not None and examples:
        # TFX deletes a failed execution's outputs; the gate keeps a copy by execution id.
        root = os.path.dirname(os.path.dirname(os.path.dirname(examples[0].uri)))
        folders.append(os.path.join(root, node_ids.DATA_GATE, "reports", str(gate.execution.id)))
    for folder in folders:
        path = os.path.join(folder, "report.json")
        if os.path.exists(path):
            with open(path) as handle:
                return json.load(handle)["findings"], read_drift(folder)
    return [], None


def drift_by_feature(drift: list[dict] | None) -> dict[str, list[str]]:
    """Each feature's drift against the previous span: distance, threshold, significance."""
    found: dict[str, list[str]] = {}
    for comparison in drift or []:
        verdict = (
            "drifted"
            if comparison["moved"]
            else ("significant" if comparison["significant"] else "not significant")
        )
        text = (
            f"{comparison['distance']} {comparison['value']:.3f} "
            f"(threshold {comparison['threshold']:g}, p {format_p(comparison['p_value'])}): "
            f"{verdict}"
        )
        if comparison["moved"] and comparison["changes"]:
            text += "; " + ", ".join(
                f"{c['label']} {c['reference_share']:.1%} -> {c['sample_share']:.1%}"
                for c in comparison["changes"]
            )
        found.setdefault(comparison["feature"], []).append(text)
    return found


def rows_table(facts: RunFacts) -> Html:
    rows = []
    for artifact in facts.outputs(node_ids.STATISTICS_GEN, "statistics"):
        for split in SPLITS:
            dataset = read_statistics(artifact.uri, split)
            if dataset is not None:
                rows.append([split, f"{dataset.num_examples:,}"])
    spans = ", ".join(
        str(metadata.custom_property(a, "span"))
        for a in facts.outputs(node_ids.EXAMPLE_GEN, "examples")
    )
    if not rows:
        return tag("p", "No statistics: the run stopped before StatisticsGen.", class_="note")
    return join(
        [
            tag("p", f"Span {spans or '?'}"),
            table(["split", "rows"], rows, numeric=[1], table_id="split-rows"),
        ]
    )


def feature_chart(name: str, series: list[tuple[str, FeatureCounts]]) -> Html:
    if any(counts.top for _, counts in series):
        categories, shares = top_shares([counts for _, counts in series])
        return charts.category_bars(
            categories,
            [(label, share) for (label, _), share in zip(series, shares, strict=True)],
            title=name,
        )
    binned = rebin([counts.buckets for _, counts in series])
    return charts.histogram(
        [(label, buckets) for (label, _), buckets in zip(series, binned, strict=True) if buckets],
        title=name,
    )


def data_section(facts: RunFacts) -> Html:
    statistics = facts.outputs(node_ids.STATISTICS_GEN, "statistics")
    if not statistics:
        return section("data", "2. Data", rows_table(facts))
    this_span = statistics_counts(statistics[0].uri)
    previous = facts.inputs(node_ids.DATA_GATE, "previous_statistics")
    previous_counts = statistics_counts(previous[0].uri, ("train",)) if previous else {}
    training = training_statistics(facts)
    findings, drift = gate_report(facts)
    drifts = drift_by_feature(drift)
    anomalies: dict[str, list[str]] = {}
    for artifact in facts.outputs(node_ids.EXAMPLE_VALIDATOR, "anomalies"):
        for split, found in read_anomalies(artifact.uri).items():
            for feature, info in found.anomaly_info.items():
                anomalies.setdefault(feature, []).append(f"[{split}] {info.short_description}")
    verdicts: dict[str, list[str]] = {}
    for finding in findings:
        verdicts.setdefault(finding["feature"], []).append(
            f"{finding['action']}: {finding['kind']}"
        )

    notes = [f"Charts: {THIS_SPAN} (all splits)"]
    notes.append(f"{PREVIOUS_SPAN} (train split)" if previous_counts else "no previous span")
    if training:
        notes.append(f"{TRAINING_DATA}: train split of spans {', '.join(training[0])}")
    else:
        notes.append("the model trained on this span only")
    rows, row_classes, chart_cells = [], [], []
    # A column the span lacks has no statistics, but its findings still get a row.
    named = (set(verdicts) | set(anomalies)) - set(DATASET_NAMES)
    for name in sorted(set(this_span) | named):
        verdict = verdicts.get(name, [])
        if name not in this_span:
            rows.append(
                [
                    name,
                    "absent",
                    "100.0%",
                    "-",
                    "; ".join(anomalies.get(name, [])) or "none",
                    "; ".join(verdict) or "pass",
                ]
            )
            row_classes.append("fail" if any(v.startswith("fail") for v in verdict) else None)
            continue
        counts = this_span[name]
        missing = counts.missing / counts.examples if counts.examples else 0.0
        rows.append(
            [
                name,
                "categories" if counts.top else "numbers",
                f"{missing:.1%}",
                "; ".join(drifts.get(name, [])) or "-",
                "; ".join(anomalies.get(name, [])) or "none",
                "; ".join(verdict) or "pass",
            ]
        )
        row_classes.append("fail" if any(v.startswith("fail") for v in verdict) else None)
        series = [(THIS_SPAN, counts)]
        if name in previous_counts:
            series.append((PREVIOUS_SPAN, previous_counts[name]))
        if training and name in training[1]:
            series.append((TRAINING_DATA, training[1][name]))
        chart_cells.append(tag("div", feature_chart(name, series), class_="card"))
    dataset_notes = [
        f"[dataset] {f['kind']}: {f['description']} ({f['action']})"
        for f in findings
        if f["feature"] in DATASET_NAMES
    ]
    return section(
        "data",
        "2. Data",
        rows_table(facts),
        tag("h3", "Features"),
        table(
            ["feature", "kind", "missing", "drift vs previous span", "anomalies", "policy verdict"],
            rows,
            numeric=[2],
            row_classes=row_classes,
            table_id="features",
        ),
        *(tag("p", esc(note), class_="note") for note in dataset_notes),
        tag("p", "; ".join(notes) + ". Shares of each data set's rows.", class_="note"),
        tag("div", join(chart_cells), class_="grid"),
    )

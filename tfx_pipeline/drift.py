"""Drift and skew that do not cry wolf: a distance, its significance at these sample sizes, what moved.

A distance alone cannot tell a shift from sampling noise: the same Jensen-Shannon divergence is
noise between two windows of 100 rows and a real move between two of 100,000. So every check
here reports three things about one feature, a reference side (training data, the previous span,
the previous window) against a sample side:

- the practical distance: L-infinity between category shares, or Jensen-Shannon divergence
  (base 2, in [0, 1]) between the shares of numeric bins;
- its significance: Pearson's chi-square test of homogeneity on the same bins' counts, both
  sides as samples (bins pooled until every expected count is at least 5, so the chi-square
  approximation holds for windows of 100 rows);
- what moved most: the values or value ranges whose share changed most, with both shares.

A check moves only when the shift is both significant (p below its share of the false-alarm
budget) and larger than the practical threshold. Significance keeps small windows quiet, the
threshold keeps huge ones from alerting on shifts too small to matter. The false-alarm and
detection rates this gives are measured by `bench/drift_false_alarms.py` (docs/drift.md).

Numeric bins come from the reference: its quantile edges (TFDV's QUANTILES histogram, or the
deciles of raw values), plus a bin below and above its range, where tripled fares land. Missing
values are a bin of their own. Either side is raw values (exact counts) or a TFDV statistics
entry. A statistics sample (the data gate's new span) is known only per its own quantile bucket;
where a reference edge cuts one, its values are spread inside the bucket like the reference's,
which is what no shift means, so the test sees shifts at the sample's resolution and invents
none between.

No TFX, no TensorFlow: numpy, scipy and TFDV's statistics protos only.
"""

import dataclasses
from collections.abc import Iterable

import numpy as np
from scipy import stats as scipy_stats

CATEGORICAL = "categorical"
NUMERIC = "numeric"
L_INFINITY = "L-infinity"
JENSEN_SHANNON = "Jensen-Shannon"
DISTANCES = {CATEGORICAL: L_INFINITY, NUMERIC: JENSEN_SHANNON}

MISSING = "(missing)"
OTHER = "(other values)"
# Chi-square needs expected counts of about 5 per cell (Cochran's rule); smaller bins are pooled.
MIN_EXPECTED = 5.0
# Reference deciles when the reference is raw values (TFDV's default quantile buckets are 10).
QUANTILE_BINS = 10
# Changes listed per moved feature.
TOP_CHANGES = 3
# Simulated p-values (see chi_square_p_value): tables drawn, a fixed seed so a verdict repeats,
# and the band of asymptotic p-values, in multiples of the level, where they replace it.
SIMULATIONS = 20_000
SIMULATION_SEED = 20261201
SIMULATE_BELOW, SIMULATE_ABOVE = 1e-3, 10.0


@dataclasses.dataclass(frozen=True)
class Distribution:
    """One side of a comparison: how often each value or range occurred, and how many were missing.

    Categorical: `values` maps each value seen to its count (`unlisted` counts values the
    statistics did not list by name). Numeric: either the sorted raw `sorted_values`, or TFDV's
    quantile `buckets` (low, high, count), the first closed, the others (low, high], a bucket
    with low == high a point mass.
    """

    kind: str
    present: float
    missing: float = 0.0
    values: dict[str, float] = dataclasses.field(default_factory=dict)
    unlisted: float = 0.0
    buckets: tuple[tuple[float, float, float], ...] = ()
    sorted_values: np.ndarray | None = None

    def count_at_most(
        self, x: float, strict: bool = False, shape: "Distribution | None" = None
    ) -> float:
        """Numeric: how many values are <= x (< x when strict), exact for raw values and at
        bucket edges. Inside a bucket the values are spread like `shape` (the reference) spreads
        its own there, or evenly without it.

        Spreading like the reference is what no shift means. Evenly would be wrong for discrete
        values: taxi coordinates are a few hundred area centroids, a bucket's values often all
        sit on its upper edge, and an even spread invents a shift where there is none.
        """
        if self.sorted_values is not None:
            side = "left" if strict else "right"
            return float(np.searchsorted(self.sorted_values, x, side=side))
        total = 0.0
        for low, high, count in self.buckets:
            if high < x or (high == x and not (strict and low == high)):
                total += count
            elif low < x < high:
                total += count * self._share_below(x, strict, low, high, shape)
        return total

    @staticmethod
    def _share_below(
        x: float, strict: bool, low: float, high: float, shape: "Distribution | None"
    ) -> float:
        if shape is not None:
            start = shape.count_at_most(low)
            inside = shape.count_at_most(high) - start
            if inside > 0:
                return min(1.0, max(0.0, (shape.count_at_most(x, strict) - start) / inside))
        return (x - low) / (high - low)

    def edges(self) -> np.ndarray:
        """Numeric bin edges this side defines as a reference: its quantiles, unique, sorted."""
        if self.sorted_values is not None:
            if not len(self.sorted_values):
                return np.array([])
            quantiles = np.linspace(0, 1, QUANTILE_BINS + 1)
            return np.unique(np.quantile(self.sorted_values, quantiles, method="inverted_cdf"))
        filled = sorted(b for b in self.buckets if b[2] > 0)
        if not filled:
            return np.array([])
        if len(filled) <= QUANTILE_BINS:
            return np.unique(np.array([b[0] for b in filled] + [b[1] for b in filled], dtype=float))
        # A fine histogram (the Evaluator's 10,000 prediction buckets): its deciles, on bucket
        # edges, so that a bin's count stays exact and a small window does not scatter over
        # thousands of near-empty bins.
        cumulative = np.cumsum([b[2] for b in filled])
        targets = cumulative[-1] * np.linspace(0, 1, QUANTILE_BINS + 1)[1:-1]
        chosen = [filled[int(i)][1] for i in np.searchsorted(cumulative, targets)]
        return np.unique(np.array([filled[0][0], *chosen, filled[-1][1]], dtype=float))


def from_values(values: Iterable[object | None] | np.ndarray, kind: str) -> Distribution:
    """A side from raw values: None (or NaN for numbers) is a missing value. A float array (NaN
    for missing) or an object array (None for missing) is counted without a Python loop."""
    if kind == CATEGORICAL:
        array = np.asarray(values if isinstance(values, np.ndarray) else list(values), object)
        present = array[array != None]  # noqa: E711 - elementwise on an object array
        labels = [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in present]
        names, counts = np.unique(np.array(labels, dtype=object), return_counts=True)
        return Distribution(
            CATEGORICAL,
            present=float(len(present)),
            missing=float(len(array) - len(present)),
            values={str(n): float(c) for n, c in zip(names, counts, strict=True)},
        )
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        array = values.astype(float)
    else:
        array = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    present = np.sort(array[~np.isnan(array)])
    return Distribution(
        NUMERIC,
        present=float(len(present)),
        missing=float(len(array) - len(present)),
        sorted_values=present,
    )


def first_values(batch, names: Iterable[str]) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Each named column's first value per row of an Arrow RecordBatch of list columns (tfx_bsl's
    decoding of tf.Examples): float arrays (NaN where a row has no value) for numbers, object
    arrays (None) for text; a column the batch lacks is missing in every row."""
    import pyarrow as pa

    found = {}
    for name in names:
        index = batch.schema.get_field_index(name)
        if index < 0:
            found[name] = np.full(batch.num_rows, None, object)
            continue
        column = batch.column(index)
        offsets = column.offsets.to_numpy()
        flat = column.flatten()
        has_value = np.diff(offsets) > 0
        if pa.types.is_integer(flat.type) or pa.types.is_floating(flat.type):
            first = np.full(batch.num_rows, np.nan)
            listed = flat.to_numpy(zero_copy_only=False).astype(float)
        else:
            first = np.full(batch.num_rows, None, object)
            listed = np.array(flat.to_pylist(), object)
        first[has_value] = listed[offsets[:-1][has_value]]
        found[name] = first
    return found


def from_statistics(feature, kind: str | None = None) -> Distribution:  # noqa: ANN001
    """A side from one TFDV `FeatureNameStatistics` (string stats' rank histogram, numeric
    stats' quantiles histogram). `kind` defaults to the statistics' own."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    if feature.HasField("string_stats"):
        common = feature.string_stats.common_stats
        present, missing = _present_and_missing(common)
        listed = feature.string_stats.rank_histogram.buckets or [
            _Bucket(v.value, v.frequency) for v in feature.string_stats.top_values
        ]
        values = {b.label: float(b.sample_count) for b in listed}
        # Each row holds one value in this schema, so values and rows agree.
        unlisted = max(0.0, float(common.tot_num_values or present) - sum(values.values()))
        return Distribution(
            CATEGORICAL, present=present, missing=missing, values=values, unlisted=unlisted
        )
    common = feature.num_stats.common_stats
    quantiles = statistics_pb2.Histogram.QUANTILES
    histogram = next((h for h in feature.num_stats.histograms if h.type == quantiles), None)
    buckets = tuple(
        (b.low_value, b.high_value, b.sample_count)
        for b in (histogram.buckets if histogram else [])
    )
    if kind == CATEGORICAL:
        raise ValueError(f"{'.'.join(feature.path.step)} has numeric statistics, not categories")
    present, missing = _present_and_missing(common)
    return Distribution(NUMERIC, present=present, missing=missing, buckets=buckets)


def _present_and_missing(common) -> tuple[float, float]:  # noqa: ANN001 - CommonStatistics
    """Rows with a value, and rows without one. An empty CSV cell is a feature with no values,
    which TFDV counts as present; the request log and `from_values` count it as missing, and so
    does this (for features of at most one value per row, as every column here is)."""
    present, missing = float(common.num_non_missing), float(common.num_missing)
    if common.max_num_values <= 1 and common.tot_num_values < present:
        missing += present - common.tot_num_values
        present = float(common.tot_num_values)
    return present, missing


@dataclasses.dataclass(frozen=True)
class _Bucket:
    label: str
    sample_count: float


@dataclasses.dataclass(frozen=True)
class Change:
    """One value or range, with its share on each side (shares of all rows, missing included)."""

    label: str
    reference_share: float
    sample_share: float

    @property
    def delta(self) -> float:
        return self.sample_share - self.reference_share

    def text(self) -> str:
        return f"{self.label} {self.reference_share:.1%} -> {self.sample_share:.1%}"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One feature compared: the distance, its significance, and the verdict."""

    feature: str
    kind: str
    distance: float
    threshold: float
    p_value: float
    alpha: float
    reference_rows: int
    sample_rows: int
    changes: tuple[Change, ...]

    @property
    def distance_name(self) -> str:
        return DISTANCES[self.kind]

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    @property
    def over_threshold(self) -> bool:
        return self.distance > self.threshold

    @property
    def moved(self) -> bool:
        return self.significant and self.over_threshold

    def verdict(self) -> str:
        if self.moved:
            return "moved"
        if self.over_threshold:
            return "not significant"
        return "within threshold"

    def text(self) -> str:
        """E.g. 'fare: Jensen-Shannon 0.412 > 0.1, significant (p < 1e-12 at 250 vs 9,800 rows);
        moved most: [19.5, 27] 10.0% -> 1.2%, ...'."""
        relation = ">" if self.over_threshold else "<="
        significance = "significant" if self.significant else "not significant"
        line = (
            f"{self.feature}: {self.distance_name} {self.distance:.3f} {relation} "
            f"{self.threshold:g}, {significance} (p {format_p(self.p_value)} at "
            f"{self.sample_rows:,} vs {self.reference_rows:,} rows)"
        )
        if self.changes:
            line += "; moved most: " + ", ".join(c.text() for c in self.changes)
        return line

    def to_json(self) -> dict:
        return {
            "feature": self.feature,
            "kind": self.kind,
            "distance": self.distance_name,
            "value": self.distance,
            "threshold": self.threshold,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "significant": self.significant,
            "moved": self.moved,
            "reference_rows": self.reference_rows,
            "sample_rows": self.sample_rows,
            "changes": [dataclasses.asdict(c) for c in self.changes],
        }


def format_p(p_value: float) -> str:
    return "< 1e-12" if p_value < 1e-12 else f"= {p_value:.2g}"


def family_alpha(false_alarm_rate: float, checks: int) -> float:
    """Each check's significance level, so that all `checks` together raise a false alarm in at
    most `false_alarm_rate` of in-distribution windows (Bonferroni: it holds whatever the
    correlation between features)."""
    return false_alarm_rate / max(1, checks)


def _label(low: float, high: float, first: bool) -> str:
    if low == high:
        return f"{_number(low)}"
    return f"{'[' if first else '('}{_number(low)}, {_number(high)}]"


def _number(x: float) -> str:
    return f"{x:.6g}"


def _numeric_counts(reference: Distribution, sample: Distribution) -> tuple[list[str], np.ndarray]:
    """Counts per bin of the reference's quantile edges, both sides; bins named by their range."""
    edges = reference.edges()
    labels = [MISSING]
    rows = [[reference.missing], [sample.missing]]
    if len(edges) == 0:
        labels.append("values")
        for row, side in zip(rows, (reference, sample), strict=True):
            row.append(side.present)
        return labels, np.array(rows, dtype=float)
    for side, row in zip((reference, sample), rows, strict=True):
        shape = reference if side is sample else None
        below = side.count_at_most(edges[0], strict=True, shape=shape)
        previous = below
        row.append(below)
        for i, edge in enumerate(edges):
            if i == 0 and len(edges) > 1:
                continue
            at_most = side.count_at_most(edge, shape=shape)
            row.append(max(0.0, at_most - previous))
            previous = at_most
        row.append(max(0.0, side.present - previous))
    labels.append(f"< {_number(edges[0])}")
    if len(edges) == 1:
        labels.append(_number(edges[0]))
    else:
        labels += [_label(edges[i - 1], edges[i], i == 1) for i in range(1, len(edges))]
    labels.append(f"> {_number(edges[-1])}")
    return labels, np.array(rows, dtype=float)


def _categorical_counts(
    reference: Distribution, sample: Distribution
) -> tuple[list[str], np.ndarray]:
    names = sorted(set(reference.values) | set(sample.values))
    labels = [MISSING, *names, OTHER]
    rows = [
        [side.missing, *(side.values.get(n, 0.0) for n in names), side.unlisted]
        for side in (reference, sample)
    ]
    return labels, np.array(rows, dtype=float)


def _l_infinity(shares: np.ndarray) -> float:
    return float(np.max(np.abs(shares[0] - shares[1]))) if shares.size else 0.0


def _jensen_shannon(shares: np.ndarray) -> float:
    middle = shares.mean(axis=0)
    divergence = 0.0
    for side in shares:
        kept = side > 0
        divergence += 0.5 * float(np.sum(side[kept] * np.log2(side[kept] / middle[kept])))
    return max(0.0, min(1.0, divergence))


def _pooled(counts: np.ndarray, ordered: bool) -> np.ndarray:
    """Bins merged until every expected count under homogeneity is at least MIN_EXPECTED.

    Ordered (numeric) bins merge with a neighbour; unordered ones pool into one bin.
    """
    counts = counts[:, counts.sum(axis=0) > 0]
    if counts.shape[1] < 2:
        return counts
    row_share = counts.sum(axis=1) / counts.sum()

    def small(column: np.ndarray) -> bool:
        return bool(np.min(column.sum() * row_share) < MIN_EXPECTED)

    if not ordered:
        small_bins = [i for i in range(counts.shape[1]) if small(counts[:, i])]
        if not small_bins:
            return counts
        keep = [i for i in range(counts.shape[1]) if i not in small_bins]
        pooled = counts[:, small_bins].sum(axis=1, keepdims=True)
        merged = np.concatenate([counts[:, keep], pooled], axis=1)
        if merged.shape[1] > 1 and small(merged[:, -1]):
            # Still too small: fold it into the smallest kept bin.
            smallest = int(np.argmin(merged[:, :-1].sum(axis=0)))
            merged[:, smallest] += merged[:, -1]
            merged = merged[:, :-1]
        return merged
    columns = [counts[:, i].copy() for i in range(counts.shape[1])]
    merged: list[np.ndarray] = []
    for column in columns:
        if merged and small(merged[-1]):
            merged[-1] = merged[-1] + column
        else:
            merged.append(column)
    if len(merged) > 1 and small(merged[-1]):
        last = merged.pop()
        merged[-1] = merged[-1] + last
    return np.stack(merged, axis=1)


def _pearson(tables: np.ndarray) -> np.ndarray:
    """Pearson's chi-square statistic of each 2 x k table in `tables` (shape [..., 2, k])."""
    rows = tables.sum(axis=-1, keepdims=True)
    columns = tables.sum(axis=-2, keepdims=True)
    expected = rows * columns / np.maximum(rows.sum(axis=-2, keepdims=True), 1e-300)
    safe = np.where(expected > 0, expected, 1.0)
    return np.sum(np.where(expected > 0, (tables - expected) ** 2 / safe, 0.0), axis=(-2, -1))


def chi_square_p_value(counts: np.ndarray, ordered: bool, alpha: float | None = None) -> float:
    """P-value of Pearson's chi-square test that both rows of `counts` come from one distribution.

    The chi-square distribution's tail is too light for a few hundred rows at the small levels a
    shared false-alarm budget asks for (about 0.1%): 2.5 times too many alarms, measured. So near
    `alpha` the p-value is simulated instead: SIMULATIONS tables drawn under homogeneity (both
    rows from the pooled shares, with their own totals), the share as extreme as the observed one.
    Far from `alpha` either way the approximation cannot change the verdict and is kept.
    """
    table = _pooled(counts, ordered)
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return 1.0
    statistic = float(_pearson(table))
    asymptotic = float(scipy_stats.chi2.sf(statistic, table.shape[1] - 1))
    if alpha is None or not SIMULATE_BELOW * alpha <= asymptotic < SIMULATE_ABOVE * alpha:
        return asymptotic
    rng = np.random.default_rng(SIMULATION_SEED)
    shares = table.sum(axis=0) / table.sum()
    totals = np.maximum(np.rint(table.sum(axis=1)).astype(int), 1)
    simulated = np.stack([rng.multinomial(n, shares, size=SIMULATIONS) for n in totals], axis=1)
    extreme = int(np.sum(_pearson(simulated.astype(float)) >= statistic - 1e-9))
    return (1 + extreme) / (1 + SIMULATIONS)


def compare(
    feature: str,
    reference: Distribution,
    sample: Distribution,
    threshold: float,
    alpha: float,
) -> Comparison:
    """`sample` against `reference`: the distance, its p-value and the largest changes.

    Shares are of all rows, missing ones included, so a column going empty is a change too.
    """
    if reference.kind != sample.kind:
        raise ValueError(
            f"{feature}: cannot compare {reference.kind} values with {sample.kind} values"
        )
    kind = reference.kind
    if kind == NUMERIC:
        labels, counts = _numeric_counts(reference, sample)
    else:
        labels, counts = _categorical_counts(reference, sample)
    totals = counts.sum(axis=1, keepdims=True)
    if np.any(totals == 0):
        return Comparison(
            feature, kind, 0.0, threshold, 1.0, alpha, int(totals[0, 0]), int(totals[1, 0]), ()
        )
    shares = counts / totals
    distance = _l_infinity(shares) if kind == CATEGORICAL else _jensen_shannon(shares)
    p_value = chi_square_p_value(counts, ordered=kind == NUMERIC, alpha=alpha)
    order = np.argsort(-np.abs(shares[1] - shares[0]), kind="stable")
    changes = tuple(
        Change(labels[i], float(shares[0, i]), float(shares[1, i]))
        for i in order[:TOP_CHANGES]
        if abs(shares[1, i] - shares[0, i]) > 0
    )
    return Comparison(
        feature=feature,
        kind=kind,
        distance=distance,
        threshold=threshold,
        p_value=p_value,
        alpha=alpha,
        reference_rows=int(round(totals[0, 0])),
        sample_rows=int(round(totals[1, 0])),
        changes=changes,
    )


def statistics_by_feature(statistics) -> dict[str, object]:  # noqa: ANN001
    """FeatureNameStatistics of the first dataset, by feature name."""
    if not statistics.datasets:
        return {}
    return {".".join(f.path.step) or f.name: f for f in statistics.datasets[0].features}


def kind_of(feature_statistics) -> str:  # noqa: ANN001
    return CATEGORICAL if feature_statistics.HasField("string_stats") else NUMERIC


def compare_all(
    reference: dict[str, Distribution],
    sample: dict[str, Distribution],
    thresholds: dict[str, float],
    false_alarm_rate: float,
) -> list[Comparison]:
    """Every feature of `thresholds` present on both sides, the false-alarm budget shared among
    them; moved ones first, then by distance."""
    compared = [name for name in thresholds if name in reference and name in sample]
    alpha = family_alpha(false_alarm_rate, len(compared))
    result = [
        compare(name, reference[name], sample[name], thresholds[name], alpha) for name in compared
    ]
    return sorted(result, key=lambda c: (not c.moved, -c.distance))

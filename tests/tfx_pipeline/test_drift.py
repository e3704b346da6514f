"""Drift with significance: distances, the chi-square test's real false-alarm rate, what moved."""

import numpy as np
import pytest

from tfx_pipeline import drift

PAYMENT_SHARES = {"Cash": 0.62, "Credit Card": 0.36, "No Charge": 0.012, "Unknown": 0.006}


def payments(rng: np.random.Generator, size: int, shares=PAYMENT_SHARES) -> list[str]:
    names = list(shares)
    weights = np.array(list(shares.values()))
    return list(rng.choice(names, size=size, p=weights / weights.sum()))


def fares(rng: np.random.Generator, size: int, scale: float = 1.0) -> list[float]:
    # Heavy-tailed and rounded to cents, like the taxi fares.
    return list(np.round(rng.lognormal(2.2, 0.7, size) * scale, 2))


def test_tfdv_quantile_statistics_and_raw_values_bin_alike():
    """A reference read from TFDV's statistics and the same rows as raw values give the same
    counts per bin, ties (whole hours) included: TFDV's quantile buckets are (low, high] with
    real counts, the first one closed."""
    import pandas as pd
    import tensorflow_data_validation as tfdv

    rng = np.random.default_rng(1)
    hours = rng.choice(24, size=5000, p=np.arange(1, 25) / np.arange(1, 25).sum())
    frame = pd.DataFrame({"hour": hours, "fare": fares(rng, 5000)})
    statistics = drift.statistics_by_feature(tfdv.generate_statistics_from_dataframe(frame))
    for name in ("hour", "fare"):
        from_statistics = drift.from_statistics(statistics[name])
        raw = drift.from_values(frame[name].tolist(), drift.NUMERIC)
        same = drift.compare(name, from_statistics, raw, threshold=0.01, alpha=0.01)
        assert same.distance < 1e-3 and same.p_value > 0.99, same.text()
        assert not same.moved


@pytest.mark.parametrize("size", [100, 1000])
def test_the_false_alarm_rate_is_what_the_significance_level_says(size):
    """Measured with a fixed seed: 400 pairs of samples from one distribution. Categories with
    rare values and heavy-tailed numbers, where a chi-square test without pooling over-alarms.
    Measured (this seed): at p < 0.05, 3.5% and 5.75% (sizes 100 and 1000) for categories, 4.5%
    and 5.0% for numbers; at p < 0.001, 0.5%, 0%, 0% and 0.25%. (In 3,000 pairs at 100 rows
    and level 0.001, where the p-value is simulated: 0.13% for categories, 0.1% for numbers.)"""
    rng = np.random.default_rng(size)
    rates = {}
    for kind in (drift.CATEGORICAL, drift.NUMERIC):
        p_values = []
        for _ in range(400):
            draw = payments if kind == drift.CATEGORICAL else fares
            reference = drift.from_values(draw(rng, 2000), kind)
            sample = drift.from_values(draw(rng, size), kind)
            # At the level the checks use: p-values near it are simulated, the rest asymptotic.
            p_values.append(drift.compare("x", reference, sample, 0.0, 0.001).p_value)
        p_values = np.array(p_values)
        rates[kind] = (np.mean(p_values < 0.05), np.mean(p_values < 0.001))
    for kind, (at_5_percent, at_one_in_a_thousand) in rates.items():
        assert 0.015 <= at_5_percent <= 0.085, (kind, rates)
        assert at_one_in_a_thousand <= 0.01, (kind, rates)


def test_a_real_shift_is_significant_and_named_with_both_shares():
    rng = np.random.default_rng(3)
    reference = drift.from_values(payments(rng, 5000), drift.CATEGORICAL)
    doubled = {**PAYMENT_SHARES, "Credit Card": 0.72, "Cash": 0.26}
    sample = drift.from_values(payments(rng, 1000, doubled), drift.CATEGORICAL)
    comparison = drift.compare("payment_type", reference, sample, threshold=0.05, alpha=0.001)
    assert comparison.moved and comparison.p_value < 1e-12
    assert comparison.distance == pytest.approx(0.36, abs=0.05)
    names = [change.label for change in comparison.changes[:2]]
    assert sorted(names) == ["Cash", "Credit Card"]
    credit = next(c for c in comparison.changes if c.label == "Credit Card")
    assert credit.reference_share == pytest.approx(0.36, abs=0.03)
    assert credit.sample_share == pytest.approx(0.72, abs=0.05)
    assert "moved most: " in comparison.text() and "Credit Card 3" in comparison.text()


def test_a_big_distance_on_a_few_rows_is_not_significant_so_not_moved():
    rng = np.random.default_rng(4)
    reference = drift.from_values(fares(rng, 5000), drift.NUMERIC)
    sample = drift.from_values(fares(rng, 12, scale=1.3), drift.NUMERIC)
    comparison = drift.compare("fare", reference, sample, threshold=0.04, alpha=0.001)
    assert comparison.over_threshold and not comparison.significant
    assert not comparison.moved and comparison.verdict() == "not significant"
    assert ", not significant (p = " in comparison.text()


def test_values_beyond_the_reference_range_and_a_new_category_are_named():
    reference = drift.from_values([i / 100 for i in range(1001)], drift.NUMERIC)
    beyond = drift.from_values([20 + i / 100 for i in range(500)], drift.NUMERIC)
    comparison = drift.compare("fare", reference, beyond, threshold=0.04, alpha=0.001)
    assert comparison.moved and comparison.distance == pytest.approx(1.0)
    assert comparison.changes[0].text() == "> 10 0.0% -> 100.0%"

    known = drift.from_values(["A"] * 600 + ["B"] * 400, drift.CATEGORICAL)
    with_new = drift.from_values(["A"] * 540 + ["B"] * 360 + ["New Cab"] * 100, drift.CATEGORICAL)
    comparison = drift.compare("company", known, with_new, threshold=0.05, alpha=0.001)
    assert comparison.moved and comparison.changes[0].text() == "New Cab 0.0% -> 10.0%"


def test_a_column_gone_empty_moves_as_missing_values():
    reference = drift.from_values([1.0, 2.0, 3.0] * 100, drift.NUMERIC)
    empty = drift.from_values([None] * 300, drift.NUMERIC)
    comparison = drift.compare("trip_miles", reference, empty, threshold=0.04, alpha=0.001)
    assert comparison.moved
    assert comparison.changes[0].text() == "(missing) 0.0% -> 100.0%"


def test_a_fine_histogram_is_binned_by_its_deciles():
    """The Evaluator's 10,000 prediction buckets: bins stay few and on bucket edges."""
    edges = np.linspace(0, 1, 10_001)
    counts = np.random.default_rng(6).integers(0, 5, 10_000)
    buckets = tuple(
        (float(lo), float(hi), float(n))
        for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True)
    )
    fine = drift.Distribution(drift.NUMERIC, present=float(counts.sum()), buckets=buckets)
    chosen = fine.edges()
    assert 2 <= len(chosen) <= drift.QUANTILE_BINS + 1
    assert set(np.round(chosen, 6)) <= set(np.round(edges, 6))


def test_the_false_alarm_budget_is_shared_by_the_checks():
    assert drift.family_alpha(0.01, 14) == pytest.approx(0.01 / 14)
    reference = {"a": drift.from_values([1.0, 2.0] * 50, drift.NUMERIC)}
    compared = drift.compare_all(reference, dict(reference), {"a": 0.04, "b": 0.04}, 0.01)
    # Only features on both sides are compared, and only they share the budget.
    assert [(c.feature, c.alpha) for c in compared] == [("a", 0.01)]


def test_comparing_numbers_with_categories_names_the_feature():
    with pytest.raises(ValueError, match="fare: cannot compare numeric values with categorical"):
        drift.compare(
            "fare",
            drift.from_values([1.0], drift.NUMERIC),
            drift.from_values(["a"], drift.CATEGORICAL),
            0.1,
            0.01,
        )


def test_discrete_values_against_statistics_keep_the_false_alarm_rate():
    """The data gate compares a new span's values with the previous span's TFDV statistics.
    Coordinates are a few hundred area centroids. Read from its own statistics instead, a small
    span is known only per quantile bucket and alarmed far too often (15% at p < 0.05 in 200
    spans of 100 rows, measured); from its values: none in 40 spans at the gate's level, and a
    real move (5 km north) caught every time."""
    import pandas as pd
    import tensorflow_data_validation as tfdv

    rng = np.random.default_rng(8)
    centroids = np.round(41.7 + rng.random(60) * 0.3, 4)
    weights = rng.pareto(1.2, 60) + 0.05
    weights /= weights.sum()
    frame = pd.DataFrame({"latitude": rng.choice(centroids, 8000, p=weights)})
    (feature,) = tfdv.generate_statistics_from_dataframe(frame).datasets[0].features
    reference = drift.from_statistics(feature)
    alarms = moved = 0
    p_values = []
    for _ in range(40):
        span = rng.choice(centroids, 100, p=weights)
        same = drift.compare(
            "latitude", reference, drift.from_values(span, drift.NUMERIC), 0.04, 0.001
        )
        alarms += same.moved
        p_values.append(same.p_value)
        north = drift.from_values(span + 0.045, drift.NUMERIC)
        moved += drift.compare("latitude", reference, north, 0.04, 0.001).moved
    assert alarms == 0 and moved == 40, (alarms, moved)
    assert np.mean(np.array(p_values) < 0.05) <= 0.15, p_values


def test_an_empty_cell_is_missing_in_statistics_and_in_values_alike():
    """ExampleGen writes an empty CSV cell as a feature with no values, which TFDV counts as
    present; the request log and the gate's values count it as missing. Read alike, the same
    rows compare as equal (the e2e monitor alarmed on company before)."""
    import pyarrow as pa
    from tensorflow_data_validation.statistics import stats_impl, stats_options

    cells = [[b"A"], [], [b"B"], None, [b"A"], []] * 50
    batch = pa.RecordBatch.from_arrays([pa.array(cells, pa.list_(pa.binary()))], ["company"])
    computed = stats_impl.generate_statistics_in_memory(batch, stats_options.StatsOptions())
    statistics = drift.statistics_by_feature(computed)
    read = drift.from_statistics(statistics["company"])
    assert (read.present, read.missing) == (150, 150)
    values = drift.from_values([cell[0] if cell else None for cell in cells], drift.CATEGORICAL)
    same = drift.compare("company", read, values, 0.05, 0.01)
    assert same.distance == 0 and not same.changes

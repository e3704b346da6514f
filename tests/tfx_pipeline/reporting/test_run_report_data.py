"""The data section's arithmetic: histograms with different edges on one scale, top values."""

import math

import pytest

from tfx_pipeline.reporting.run_report.data import FeatureCounts, rebin, top_shares


def test_rebinning_spreads_each_bucket_over_the_bins_it_covers():
    # One bucket [0, 10) of 10 rows and one [10, 20) of 30 rows, onto 4 bins of width 5.
    (shares,) = rebin([[(0.0, 10.0, 10.0), (10.0, 20.0, 30.0)]], bins=4)
    assert [(low, high) for low, high, _ in shares] == [(0, 5), (5, 10), (10, 15), (15, 20)]
    assert [share for _, _, share in shares] == pytest.approx([0.125, 0.125, 0.375, 0.375])


def test_series_with_different_ranges_share_one_scale():
    narrow, wide = rebin([[(0.0, 1.0, 5.0)], [(0.0, 4.0, 8.0)]], bins=4)
    assert [high for _, high, _ in narrow] == [high for _, high, _ in wide] == [1, 2, 3, 4]
    assert [share for _, _, share in narrow] == pytest.approx([1.0, 0.0, 0.0, 0.0])
    assert [share for _, _, share in wide] == pytest.approx([0.25] * 4)


def test_a_constant_feature_keeps_its_single_value():
    (shares,) = rebin([[(3.0, 3.0, 12.0)]])
    assert shares == [(3.0, 3.0, 1.0)]
    constant, spread = rebin([[(3.0, 3.0, 12.0)], [(0.0, 4.0, 4.0)]], bins=4)
    assert [share for _, _, share in constant] == [0.0, 0.0, 0.0, 1.0]
    assert sum(share for _, _, share in spread) == pytest.approx(1.0)


def test_an_empty_series_stays_empty():
    assert rebin([[], [(0.0, 1.0, 2.0)]], bins=2)[0] == []
    assert rebin([[]]) == [[]]


def test_top_values_follow_the_first_series_and_mark_values_another_lacks():
    this_span = FeatureCounts(present=100, top={"Cash": 60, "Credit Card": 30, "Dispute": 10})
    previous = FeatureCounts(present=50, top={"Credit Card": 25, "Cash": 20, "Mobile": 5})
    values, (first, second) = top_shares([this_span, previous], top=4)
    assert values == ["Cash", "Credit Card", "Dispute", "Mobile"]
    assert first[:3] == [0.6, 0.3, 0.1] and math.isnan(first[3])
    assert second[0] == 0.4 and second[1] == 0.5 and math.isnan(second[2]) and second[3] == 0.1


def test_every_drift_measurement_is_shown_with_its_threshold_and_significance():
    from tfx_pipeline import drift
    from tfx_pipeline.reporting.run_report.data import drift_by_feature

    steady = drift.compare(
        "fare",
        drift.from_values([float(i % 50) for i in range(1000)], drift.NUMERIC),
        drift.from_values([float(i % 50) for i in range(3, 1003)], drift.NUMERIC),
        threshold=0.1,
        alpha=0.001,
    )
    moved = drift.compare(
        "payment_type",
        drift.from_values(["Cash"] * 700 + ["Credit Card"] * 300, drift.CATEGORICAL),
        drift.from_values(["Cash"] * 400 + ["Credit Card"] * 600, drift.CATEGORICAL),
        threshold=0.05,
        alpha=0.001,
    )
    shown = drift_by_feature([steady.to_json(), moved.to_json()])
    assert shown["fare"] == [
        f"Jensen-Shannon {steady.distance:.3f} (threshold 0.1, p = {steady.p_value:.2g}): "
        "not significant"
    ]
    (text,) = shown["payment_type"]
    assert text.startswith("L-infinity 0.300 (threshold 0.05, p < 1e-12): drifted; ")
    assert "Cash 70.0% -> 40.0%" in text and "Credit Card 30.0% -> 60.0%" in text
    assert drift_by_feature(None) == {}

"""The data gate's drift check: a copy of the previous span is not drift, a real move is, named."""

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DATA_ROOT, SCHEMA_PATH
from tfx_pipeline import inputs
from tfx_pipeline.components.data_gate import gate


def statistics(frame):
    import tensorflow_data_validation as tfdv

    return tfdv.generate_statistics_from_dataframe(frame, n_jobs=1)


def values(frame) -> dict:
    """Columns as `gate.span_values` reads a span's examples."""
    found = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind in "if":
            found[name] = column.to_numpy(dtype=float)
        else:
            found[name] = np.array([None if v != v else v for v in column], dtype=object)
    return found


@pytest.fixture(scope="module")
def span():
    return pd.read_csv(DATA_ROOT / "span-2" / "data.csv")


@pytest.fixture(scope="module")
def schema():
    return inputs.read_schema(SCHEMA_PATH)


def test_the_same_rows_split_differently_are_not_drift(span, schema):
    """Reported by a user: a copy of the previous span, split differently, always warned
    'trip_seconds: Jensen-Shannon 0.12 > 0.1' with TFDV's comparator."""
    rng = np.random.default_rng(2)
    previous = span[rng.random(len(span)) < 2 / 3]
    copy = span[rng.random(len(span)) < 2 / 3]
    comparisons = gate.drift_comparisons(None, statistics(previous), schema, values=values(copy))
    compared = {c.feature for c in comparisons}
    assert {"trip_seconds", "fare", "payment_type", "company", "pickup_latitude"} <= compared
    assert not [c.text() for c in comparisons if c.moved]
    findings = gate.drift_findings(comparisons, {"default": "fail"})
    assert findings == []


def test_a_real_move_is_a_finding_naming_the_feature_and_what_moved(span, schema):
    previous = span.iloc[::2]
    moved = span.iloc[1::2].copy()
    moved["fare"] = moved["fare"] * 3
    comparisons = gate.drift_comparisons(None, statistics(previous), schema, values=values(moved))
    (finding,) = gate.drift_findings(comparisons, {"default": "warn"})
    assert (finding.split, finding.feature) == (gate.DRIFT_LABEL, "fare")
    assert finding.kind == "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH" and finding.action == "warn"
    assert "significant (p < 1e-12" in finding.description
    assert "moved most: " in finding.description


def test_without_values_the_spans_statistics_are_compared(span, schema):
    previous, current = span.iloc[::2], span.iloc[1::2]
    comparisons = gate.drift_comparisons(statistics(current), statistics(previous), schema)
    assert {c.feature for c in comparisons} == set(gate.drift_thresholds(schema))

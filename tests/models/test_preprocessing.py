"""preprocessing_fn run for real through tft_beam on hand-made rows, checking the values."""

import math

import numpy as np
import pytest

from models import features

BASE_ROW = {
    "fare": 10.0,
    "tips": 3.0,
    "trip_miles": 1.0,
    "trip_seconds": 600,
    "pickup_latitude": 41.88,
    "pickup_longitude": -87.63,
    "dropoff_latitude": 41.90,
    "dropoff_longitude": -87.62,
    "trip_start_hour": 5,
    "trip_start_day": 1,
    "trip_start_month": 3,
    "trip_start_timestamp": 1420070400,
    "pickup_community_area": 8,
    "dropoff_community_area": 32,
    "payment_type": "Credit Card",
    "company": "Flash Cab",
}


def instance(raw_feature_spec, **overrides):
    """A raw row in TFT's instance-dict form; an override of None makes the value missing."""
    row = {**BASE_ROW, **overrides}
    result = {}
    for key, spec in raw_feature_spec.items():
        value = row.get(key)
        if value is None:
            result[key] = []
        elif isinstance(value, str):
            result[key] = [value.encode()]
        else:
            result[key] = [spec.dtype.as_numpy_dtype(value)]
    return result


def analyze_and_transform(rows, raw_feature_spec, tmp_path_factory):
    """preprocessing_fn through tft_beam on `rows`: (transformed rows, TFTransformOutput)."""
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    from models import preprocessing

    metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec(raw_feature_spec)
    )
    output_dir = str(tmp_path_factory.mktemp("tft"))
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tmp"))):
        (outputs, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing.preprocessing_fn
        )
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    return outputs, tft.TFTransformOutput(output_dir)


@pytest.fixture(scope="module")
def transformed(raw_feature_spec, tmp_path_factory):
    rows = [
        instance(raw_feature_spec),
        # No tip, missing trip_seconds and dropoff point, unknown company, bad community area.
        instance(
            raw_feature_spec,
            fare=20.0,
            tips=0.0,
            trip_seconds=None,
            dropoff_latitude=None,
            dropoff_longitude=None,
            company=None,
            pickup_community_area=99,
        ),
        # Free ride: no fare and no tip is not a big tip; an impossible hour.
        instance(raw_feature_spec, fare=0.0, tips=0.0, trip_seconds=1200, trip_start_hour=30),
        instance(raw_feature_spec, fare=40.0, tips=8.01, trip_seconds=300, payment_type="Cash"),
    ]
    return analyze_and_transform(rows, raw_feature_spec, tmp_path_factory)


def column(outputs, key):
    return np.array([row[key] for row in outputs])


def vocabulary(tft_output, key):
    """The vocabulary Transform wrote for raw column `key`, as strings."""
    return [
        token.decode() if isinstance(token, bytes) else token
        for token in tft_output.vocabulary_by_name(features.vocabulary_name(key))
    ]


def test_label_is_tip_over_twenty_percent_of_fare(transformed):
    outputs, _ = transformed
    np.testing.assert_array_equal(column(outputs, features.LABEL_KEY), [1, 0, 0, 1])


def test_numerics_are_log_z_scored_over_present_values_and_missing_is_zero(transformed):
    outputs, _ = transformed
    present = np.log1p([600.0, 1200.0, 300.0])  # the second row has no trip_seconds
    z_scores = (present - present.mean()) / present.std()
    expected = [z_scores[0], 0.0, z_scores[1], z_scores[2]]
    np.testing.assert_allclose(
        column(outputs, features.transformed_name("trip_seconds")), expected, rtol=1e-4, atol=1e-6
    )
    fares = column(outputs, features.transformed_name("fare"))
    assert abs(fares.mean()) < 1e-5 and math.isclose(fares.std(), 1.0, rel_tol=1e-4)


def test_missing_coordinates_get_their_own_bucket(transformed):
    outputs, _ = transformed
    buckets = column(outputs, features.transformed_name("dropoff_latitude"))
    assert buckets[1] == features.BUCKET_COUNT
    assert all(0 <= b < features.BUCKET_COUNT for i, b in enumerate(buckets) if i != 1)


def test_out_of_range_categories_map_to_the_extra_index(transformed):
    outputs, _ = transformed
    areas = column(outputs, features.transformed_name("pickup_community_area"))
    np.testing.assert_array_equal(areas, [8, 78, 8, 8])
    hours = column(outputs, features.transformed_name("trip_start_hour"))
    np.testing.assert_array_equal(hours, [5, 5, 24, 5])


def test_vocabulary_gives_missing_strings_their_own_token(transformed):
    outputs, tft_output = transformed
    company = vocabulary(tft_output, "company")
    companies = column(outputs, features.transformed_name("company"))
    assert company[companies[1]] == features.MISSING_STRING
    assert company[companies[0]] == "Flash Cab"
    payment = vocabulary(tft_output, "payment_type")
    payments = column(outputs, features.transformed_name("payment_type"))
    assert payment[payments[3]] == "Cash"


def test_vocabulary_ranks_by_frequency_then_reverse_order_and_keeps_the_top_k(
    raw_feature_spec, tmp_path_factory
):
    """The vocabulary is exact while a column has at most top_k distinct values (the taxi data
    has 8 payment types and 62 companies); beyond that the most frequent values stay in."""
    companies = ["Flash Cab"] * 6 + ["Blue Ribbon"] * 4 + ["Checker"] * 4 + ["Zip"]
    top_k = features.VOCABULARY_FEATURES["payment_type"]
    payments = ["Cash"] * 30 + ["Credit Card"] * 20 + [f"Rare {i}" for i in range(top_k)]
    rows = [
        instance(raw_feature_spec, company=companies[i % len(companies)], payment_type=payment)
        for i, payment in enumerate(payments)
    ]
    _, tft_output = analyze_and_transform(rows, raw_feature_spec, tmp_path_factory)
    # 60 rows cycle through the 15 companies: counts 24, 16, 16, 4. Ties: reverse order.
    assert vocabulary(tft_output, "company") == ["Flash Cab", "Checker", "Blue Ribbon", "Zip"]
    # 12 distinct payment types, top_k of them kept, the two frequent ones first.
    payment = vocabulary(tft_output, "payment_type")
    assert len(payment) == top_k and payment[:2] == ["Cash", "Credit Card"]


def test_every_model_input_is_produced(transformed):
    outputs, tft_output = transformed
    spec = tft_output.transformed_feature_spec()
    for name in (*features.model_input_names(), features.LABEL_KEY):
        assert name in outputs[0]
        assert name in spec


def test_a_span_in_the_analyzer_cache_is_never_read_again(raw_feature_spec):
    """Every analyzer reads raw data only, so a cached span has all it needs (rolling windows).

    An analyzer fed by another analyzer's output (say, a z-score of mean-imputed values) has a
    cache key that changes with the data, which makes Transform re-read every span of the window.
    """
    from tensorflow_transform import impl_helper
    from tensorflow_transform.beam import analysis_graph_builder, analyzer_cache

    from models import preprocessing

    specs = impl_helper.get_type_specs_from_feature_specs(raw_feature_spec)
    spans = [analyzer_cache.DatasetKey(f"span-{n}") for n in (1, 2)]
    entries = analysis_graph_builder.get_analysis_cache_entry_keys(
        preprocessing.preprocessing_fn, specs, spans, force_tf_compat_v1=False
    )
    # One entry for all numeric columns, one for all coordinates, one per vocabulary: every
    # entry is loaded for every span of the window, so one analyzer per column would cost more.
    assert len(entries) == 2 + len(features.VOCABULARY_FEATURES)
    # Stand-ins for the cached accumulators: only which entries exist matters here.
    cache = {
        span: analyzer_cache.DatasetCache({entry: object() for entry in entries}, None)
        for span in spans
    }
    to_read = analysis_graph_builder.get_analysis_dataset_keys(
        preprocessing.preprocessing_fn, specs, spans, cache, force_tf_compat_v1=False
    )
    assert set(to_read) == set()
    # And with span 2 new, only span 2 is read.
    to_read = analysis_graph_builder.get_analysis_dataset_keys(
        preprocessing.preprocessing_fn, specs, spans, {spans[0]: cache[spans[0]]}, False
    )
    assert set(to_read) == {spans[1]}


def test_a_required_column_keeps_every_value_including_zero():
    import tensorflow as tf

    from models import preprocessing

    dense = preprocessing._as_sparse_column(tf.constant([[0.0], [2.5], [0.0]]))
    sparse = preprocessing._as_sparse_column(
        tf.SparseTensor(indices=[[1, 0]], values=tf.constant([7], tf.int64), dense_shape=[3, 1])
    )
    assert dense.indices.numpy().tolist() == [[0, 0], [1, 0], [2, 0]]
    assert dense.values.numpy().tolist() == [0.0, 2.5, 0.0]
    assert sparse.indices.numpy().tolist() == [[1, 0]] and sparse.values.dtype == tf.float32
    assert dense.dense_shape.numpy().tolist() == sparse.dense_shape.numpy().tolist() == [3, 1]

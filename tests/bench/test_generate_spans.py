"""The span generator: deterministic, the row count asked for, values the curated schema accepts."""

import generate_spans
import pandas as pd
import pytest

from tests.conftest import DATA_ROOT, SCHEMA_PATH

ROWS = 3000


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("spans")
    generate_spans.generate(root, ROWS, spans=2, seed=5, rows_per_file=1000)
    return root


def read_span(root, span):
    files = sorted((root / f"span-{span}").glob("*.csv"))
    return pd.concat(
        [pd.read_csv(path, keep_default_na=False, na_values=[""]) for path in files],
        ignore_index=True,
    )


def test_each_span_has_the_row_count_split_over_files(generated):
    for span in (1, 2):
        files = sorted((generated / f"span-{span}").glob("*.csv"))
        assert [p.name for p in files] == ["data-00000.csv", "data-00001.csv", "data-00002.csv"]
        assert len(read_span(generated, span)) == ROWS


def test_same_arguments_write_the_same_bytes_and_spans_differ(generated, tmp_path):
    generate_spans.generate(tmp_path, ROWS, first_span=2, seed=5, rows_per_file=1000)
    for name in ("data-00000.csv", "data-00002.csv"):
        assert (tmp_path / "span-2" / name).read_bytes() == (
            generated / "span-2" / name
        ).read_bytes()
    assert not read_span(generated, 1).equals(read_span(generated, 2))
    generate_spans.generate(tmp_path / "other-seed", ROWS, first_span=2, seed=6)
    assert not read_span(tmp_path / "other-seed", 2).equals(read_span(generated, 2))


def test_numbers_stay_in_schema_ranges_and_categories_are_unchanged(generated):
    source = generate_spans.read_source(DATA_ROOT)
    ranges = generate_spans.schema_ranges(SCHEMA_PATH)
    data = read_span(generated, 1)
    assert list(data.columns) == list(source.columns)
    for column, (low, high) in ranges.items():
        present = data[column].dropna()
        assert present.between(low, high).all(), column
    for column in ("payment_type", "company", "trip_start_hour", "pickup_community_area"):
        assert set(data[column].dropna()) <= set(source[column].dropna()), column
    # Jitter moved the continuous values, and missing cells stayed missing at a similar rate.
    assert not set(data["fare"]).issubset(set(source["fare"]))
    for column in ("pickup_latitude", "company", "trip_seconds"):
        assert abs(data[column].isna().mean() - source[column].isna().mean()) < 0.03, column


def test_the_label_is_kept_because_fare_and_tips_move_together(generated):
    data = read_span(generated, 1)
    source = generate_spans.read_source(DATA_ROOT)
    label_rate = (data["tips"] > 0.2 * data["fare"]).mean()
    source_rate = (source["tips"] > 0.2 * source["fare"]).mean()
    assert abs(label_rate - source_rate) < 0.03


def test_integer_columns_are_written_as_integers(generated):
    text = (generated / "span-1" / "data-00000.csv").read_text().splitlines()
    header = text[0].split(",")
    area = header.index("pickup_community_area")
    seconds = header.index("trip_seconds")
    cells = [line.split(",") for line in text[1:200] if line.count(",") == len(header) - 1]
    assert cells
    assert not any("." in row[area] or "." in row[seconds] for row in cells)


def test_generated_span_validates_against_the_curated_schema(generated, schema):
    import tensorflow_data_validation as tfdv

    # Read as the pipeline reads CSV: types inferred from the cells, empty cells missing.
    statistics = tfdv.generate_statistics_from_csv(str(generated / "span-1" / "*.csv"))
    anomalies = tfdv.validate_statistics(statistics, schema)
    assert dict(anomalies.anomaly_info) == {}


def test_cli_refuses_to_overwrite_a_span_and_bad_row_counts(generated, capsys):
    assert generate_spans.main(["--out", str(generated), "--rows", "10"]) == 2
    assert "already exist" in capsys.readouterr().err
    assert generate_spans.main(["--out", str(generated), "--rows", "0", "--first-span", "9"]) == 2
    assert "--rows must be at least 1" in capsys.readouterr().err

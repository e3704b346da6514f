"""Shared fixtures: small raw samples from the bundled spans and a real Transform output."""

import os

# Before TensorFlow loads anywhere: TFT, TFMA and Keras Tuner need Keras 2 (tf_keras).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import csv  # noqa: E402
import pathlib  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA_ROOT = REPO_ROOT / "data" / "taxi"
SCHEMA_PATH = REPO_ROOT / "data" / "schema" / "schema.pbtxt"


def write_sample_spans(data_root: pathlib.Path, rows_per_span: dict[int, int]) -> pathlib.Path:
    """`data_root/span-N/data.csv` holding the header and first rows of each bundled span."""
    for span, rows in rows_per_span.items():
        lines = (DATA_ROOT / f"span-{span}" / "data.csv").read_text().splitlines(keepends=True)
        (data_root / f"span-{span}").mkdir(parents=True)
        (data_root / f"span-{span}" / "data.csv").write_text("".join(lines[: rows + 1]))
    return data_root


def read_csv_rows(path: pathlib.Path, limit: int | None = None) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows[:limit] if limit else rows


@pytest.fixture(scope="session")
def schema():
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    return text_format.Parse(SCHEMA_PATH.read_text(), schema_pb2.Schema())


@pytest.fixture(scope="session")
def raw_feature_spec(schema):
    from tensorflow_transform.tf_metadata import schema_utils

    return schema_utils.schema_as_feature_spec(schema).feature_spec


def csv_row_to_instance(row: dict[str, str], raw_feature_spec) -> dict[str, list]:
    """A CSV row as the dict of lists TFT's instance_dict format expects (missing = [])."""
    import tensorflow as tf

    instance = {}
    for key, spec in raw_feature_spec.items():
        text = row.get(key, "")
        if text == "":
            instance[key] = []
        elif spec.dtype == tf.string:
            instance[key] = [text.encode()]
        elif spec.dtype == tf.int64:
            instance[key] = [int(float(text))]
        else:
            instance[key] = [float(text)]
    return instance


@pytest.fixture(scope="session")
def transform_output_dir(tmp_path_factory, raw_feature_spec):
    """Runs the real preprocessing_fn with tft_beam on 400 bundled rows; returns the output dir."""
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    from models import preprocessing

    rows = read_csv_rows(DATA_ROOT / "span-2" / "data.csv", limit=400)
    instances = [csv_row_to_instance(row, raw_feature_spec) for row in rows]
    metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec(raw_feature_spec)
    )
    output_dir = tmp_path_factory.mktemp("tft_output")
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tft_tmp"))):
        _, transform_fn = (instances, metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing.preprocessing_fn
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(output_dir))
    # TFX's Transform also keeps the raw schema beside the graph; serving exports read it.
    metadata_io.write_metadata(metadata, str(output_dir / tft.TFTransformOutput.RAW_METADATA_DIR))
    return str(output_dir)


@pytest.fixture(scope="session")
def tf_transform_output(transform_output_dir):
    import tensorflow_transform as tft

    return tft.TFTransformOutput(transform_output_dir)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium for tests that open HTML reports (tests/browser.py renders with it)."""
    from tests.browser import find_chromium

    path = find_chromium()
    if path is None:
        reason = "no Chromium to open reports in (install Debian's chromium package)"
        if os.environ.get("CI_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{reason}; CI_REQUIRE_CHROMIUM=1, so the browser tests must run")
        pytest.skip(reason)
    return path

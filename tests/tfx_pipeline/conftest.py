"""A PipelineConfig on the bundled data with every other setting at its default."""

import pytest

from tests.conftest import DATA_ROOT, SCHEMA_PATH
from tfx_pipeline import config as config_lib


@pytest.fixture
def config(tmp_path):
    return config_lib.PipelineConfig(
        pipeline_name="taxi-test",
        pipeline_root=str(tmp_path / "root"),
        data_root=str(DATA_ROOT),
        serving_model_dir=str(tmp_path / "serving" / "taxi"),
        metadata_path=str(tmp_path / "metadata.sqlite"),
        schema_path=str(SCHEMA_PATH),
        module_fingerprint="0123456789abcdef",
    )

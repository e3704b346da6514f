"""PipelineConfig: every bad value named at once, the defaults table, the module fingerprint."""

import dataclasses

import pytest

from tfx_pipeline import config as config_lib
from tfx_pipeline.problems import ConfigProblems


def test_module_fingerprint_tracks_the_models_source():
    first = config_lib.module_fingerprint()
    assert first == config_lib.module_fingerprint()
    assert len(first) == 16


def test_config_rejects_every_bad_value_at_once(config):
    with pytest.raises(ValueError) as error:
        dataclasses.replace(config, train_steps=0, min_auc=1.5, pipeline_name="bad name!")
    message = str(error.value)
    assert "train_steps" in message and "min_auc" in message and "pipeline_name" in message


def test_a_window_cannot_use_portable_resolvers(config):
    with pytest.raises(ValueError, match="training_window_spans above 1 needs"):
        dataclasses.replace(config, training_window_spans=3, portable_resolvers=True)
    with pytest.raises(ValueError, match="training_window_spans must be at least 1"):
        dataclasses.replace(config, training_window_spans=0)
    assert isinstance(
        dataclasses.replace(config, portable_resolvers=True), config_lib.PipelineConfig
    )


def test_defaults_are_read_from_the_config_fields():
    assert config_lib.default("train_steps") == 1000
    assert config_lib.default("min_auc") == 0.90
    with pytest.raises(KeyError, match="has no default"):
        config_lib.default("pipeline_root")


def test_every_problem_is_a_separate_entry(config):
    with pytest.raises(ConfigProblems) as error:
        dataclasses.replace(config, eval_steps=0, anomaly_policy_json='{"default": "maybe"}')
    assert len(error.value.problems) == 2
    assert all(p.startswith("invalid pipeline config: ") for p in error.value.problems)
    assert "anomaly_policy_json" in error.value.problems[1]

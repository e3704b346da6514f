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
    assert config_lib.default("train_steps") == 500
    assert config_lib.default("min_auc") == 0.90
    with pytest.raises(KeyError, match="has no default"):
        config_lib.default("pipeline_root")


def test_every_problem_is_a_separate_entry(config):
    with pytest.raises(ConfigProblems) as error:
        dataclasses.replace(config, eval_steps=0, anomaly_policy_json='{"default": "maybe"}')
    assert len(error.value.problems) == 2
    assert all(p.startswith("invalid pipeline config: ") for p in error.value.problems)
    assert "anomaly_policy_json" in error.value.problems[1]


def test_blessing_rules_are_refused_together_with_the_rest(config):
    from tfx_pipeline.components.gated_evaluator.rules import SliceGap

    with pytest.raises(ConfigProblems) as error:
        dataclasses.replace(
            config,
            eval_steps=0,
            min_slice_auc=1.5,
            min_slice_examples=0,
            gated_slice_features=("payment_type=Cash",),
            max_slice_auc_gaps=(SliceGap("payment_type", "Cash", "Cash", 2.0),),
        )
    message = str(error.value)
    for name in ("eval_steps", "min_slice_auc", "min_slice_examples", "payment_type=Cash"):
        assert name in message
    assert "compares a slice with itself" in message and "MAX_GAP must be within" in message


def test_blessing_defaults_gate_payment_type_slices_of_200_examples():
    rules = config_lib.PipelineConfig(
        pipeline_name="p",
        pipeline_root="/r",
        data_root="/d",
        serving_model_dir="/s/taxi",
        metadata_path=None,
        schema_path=None,
        module_fingerprint="0",
    ).blessing_rules()
    assert rules.slice_features == ("payment_type",)
    assert (rules.min_slice_examples, rules.min_slice_class_examples) == (200, 20)
    assert (rules.min_slice_auc, rules.max_slice_auc_drop) == (0.5, 0.05)
    assert (rules.min_auc, rules.max_auc_drop, rules.slice_gaps) == (0.9, 0.01, ())

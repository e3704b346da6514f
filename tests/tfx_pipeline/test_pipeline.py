"""The DAG without running it: component ids, key edges, variants, the window, eval config, compilation."""

import dataclasses

import pytest
from tfx.dsl.compiler import compiler

from tfx_pipeline import config as config_lib
from tfx_pipeline import pipeline as pipeline_lib

# Every node of the default pipeline (Tuner on, curated schema).
COMPONENT_IDS = (
    "CsvExampleGen",
    "ImportSchemaGen",
    "StatisticsGen",
    "ExampleValidator",
    "previous_span_statistics_resolver",
    "DataGate",
    "Transform",
    "Tuner",
    "Trainer",
    "latest_blessed_model_resolver",
    "Evaluator",
    "Pusher",
)


def upstream_ids(pipeline, component_id):
    component = next(c for c in pipeline.components if c.id == component_id)
    return {node.id for node in component.upstream_nodes}


def test_component_ids_in_a_valid_run_order(config):
    components = pipeline_lib.create_pipeline(config).components
    ids = [c.id for c in components]
    assert sorted(ids) == sorted(COMPONENT_IDS)
    for component in components:
        for upstream in component.upstream_nodes:
            assert ids.index(upstream.id) < ids.index(component.id), (upstream.id, component.id)


def test_key_edges(config):
    pipeline = pipeline_lib.create_pipeline(config)
    # Transform waits for the data gate: refused data never reaches training.
    assert upstream_ids(pipeline, "Transform") == {"CsvExampleGen", "ImportSchemaGen", "DataGate"}
    assert upstream_ids(pipeline, "ExampleValidator") == {"StatisticsGen", "ImportSchemaGen"}
    assert upstream_ids(pipeline, "DataGate") == {
        "ExampleValidator",
        "StatisticsGen",
        "ImportSchemaGen",
        "previous_span_statistics_resolver",
    }
    assert upstream_ids(pipeline, "previous_span_statistics_resolver") == {"CsvExampleGen"}
    # The Trainer reads raw examples and applies Transform's graph to them as it reads.
    assert upstream_ids(pipeline, "Trainer") == {
        "CsvExampleGen",
        "Transform",
        "ImportSchemaGen",
        "Tuner",
    }
    assert upstream_ids(pipeline, "Evaluator") == {
        "CsvExampleGen",
        "Trainer",
        "latest_blessed_model_resolver",
    }
    assert upstream_ids(pipeline, "Pusher") == {"Trainer", "Evaluator"}


def test_reusing_hyperparameters_replaces_the_tuner_with_a_resolver(config):
    pipeline = pipeline_lib.create_pipeline(dataclasses.replace(config, run_tuner=False))
    ids = [c.id for c in pipeline.components]
    assert "Tuner" not in ids
    assert upstream_ids(pipeline, "Trainer") == {
        "CsvExampleGen",
        "Transform",
        "ImportSchemaGen",
        "latest_hyperparameters_resolver",
    }


def test_inferred_schema_variant_uses_schema_gen(config):
    pipeline = pipeline_lib.create_pipeline(dataclasses.replace(config, schema_path=None))
    assert upstream_ids(pipeline, "SchemaGen") == {"StatisticsGen"}
    assert "ImportSchemaGen" not in [c.id for c in pipeline.components]


def test_module_code_is_found_by_dotted_path_and_fingerprinted(config):
    pipeline = pipeline_lib.create_pipeline(config)
    by_id = {c.id: c for c in pipeline.components}
    assert by_id["Transform"].exec_properties["preprocessing_fn"] == config_lib.PREPROCESSING_FN
    assert by_id["Trainer"].exec_properties["run_fn"] == config_lib.RUN_FN
    assert by_id["Tuner"].exec_properties["tuner_fn"] == config_lib.TUNER_FN
    for component_id in ("Transform", "Tuner", "Trainer"):
        assert (
            '"module_fingerprint": "0123456789abcdef"'
            in (by_id[component_id].exec_properties["custom_config"])
        )


def test_eval_config_gates_only_the_overall_slice(config):
    eval_config = pipeline_lib.eval_config(dataclasses.replace(config, min_auc=0.8))
    assert [list(s.feature_keys) for s in eval_config.slicing_specs] == [
        [],
        ["payment_type"],
        ["trip_start_day"],
    ]
    auc = next(m for m in eval_config.metrics_specs[0].metrics if m.class_name == "AUC")
    (per_slice,) = auc.per_slice_thresholds
    assert [list(s.feature_keys) for s in per_slice.slicing_specs] == [[]]
    assert per_slice.threshold.value_threshold.lower_bound.value == 0.8
    assert per_slice.threshold.change_threshold.absolute.value == pytest.approx(-0.01)


def test_pipeline_compiles_to_ir(config):
    ir = compiler.Compiler().compile(pipeline_lib.create_pipeline(config))
    assert ir.pipeline_info.id == "taxi-test"
    assert len(ir.nodes) == 12


def test_pusher_pushes_atomically(config):
    from tfx_pipeline.components.atomic_pusher.executor import Executor

    pusher = next(c for c in pipeline_lib.create_pipeline(config).components if c.id == "Pusher")
    assert pusher.executor_spec.executor_class is Executor


def test_a_window_above_one_span_feeds_transform_tuner_and_trainer(config):
    pipeline = pipeline_lib.create_pipeline(dataclasses.replace(config, training_window_spans=4))
    ids = [c.id for c in pipeline.components]
    assert ids.index("span_window_resolver") < ids.index("Transform")
    assert upstream_ids(pipeline, "span_window_resolver") == {"CsvExampleGen"}
    assert upstream_ids(pipeline, "Transform") == {
        "span_window_resolver",
        "latest_analyzer_cache_resolver",
        "ImportSchemaGen",
        "DataGate",
    }
    for node in ("Tuner", "Trainer"):
        assert "span_window_resolver" in upstream_ids(pipeline, node)
        assert "CsvExampleGen" not in upstream_ids(pipeline, node)
    # The Evaluator judges the model on the new span only, whatever the window.
    assert "span_window_resolver" not in upstream_ids(pipeline, "Evaluator")
    by_id = {c.id: c for c in pipeline.components}
    # Transform only analyzes: no transformed copy of the window is written.
    assert "transformed_examples" not in by_id["Transform"].outputs


def test_one_span_needs_no_resolver_and_no_cache(config):
    ids = [c.id for c in pipeline_lib.create_pipeline(config).components]
    assert "span_window_resolver" not in ids
    assert "latest_analyzer_cache_resolver" not in ids

"""The DAG without running it: component ids, key edges, variants, the window, eval config, compilation."""

import dataclasses

import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from tfx.dsl.compiler import compiler
from tfx.proto import infra_validator_pb2

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
    "InfraValidator",
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
    # The candidate is served beside the last blessed model, with requests from this span.
    assert upstream_ids(pipeline, "InfraValidator") == {
        "CsvExampleGen",
        "Trainer",
        "latest_blessed_model_resolver",
    }
    # Nothing reaches serving unless both the Evaluator and the InfraValidator blessed it.
    assert upstream_ids(pipeline, "Pusher") == {"Trainer", "Evaluator", "InfraValidator"}


def test_infra_validator_checks_both_signatures_and_makes_warmup_requests(config):
    by_id = {c.id: c for c in pipeline_lib.create_pipeline(config).components}
    properties = by_id["InfraValidator"].exec_properties
    request_spec = json_format.Parse(properties["request_spec"], infra_validator_pb2.RequestSpec())
    serving_spec = json_format.Parse(properties["serving_spec"], infra_validator_pb2.ServingSpec())
    assert list(request_spec.tensorflow_serving.signature_names) == [
        "serving_default",
        "serving_raw",
    ]
    assert request_spec.split_name == "eval"
    assert request_spec.num_examples == config.infra_examples
    assert request_spec.make_warmup
    assert serving_spec.model_name == "taxi"
    assert properties["server"] == "auto"
    assert properties["max_p99_increase"] == 0.5


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


def test_eval_config_computes_jackknife_intervals_and_leaves_judging_to_the_rules(config):
    from tfx_pipeline.components.gated_evaluator.rules import SliceGap

    gap = SliceGap("company", "Flash Cab", "Taxi Affiliation Services", 0.1)
    eval_config = pipeline_lib.eval_config(
        dataclasses.replace(
            config, gated_slice_features=("pickup_community_area",), max_slice_auc_gaps=(gap,)
        )
    )
    # Reported features, then gated ones and those of the gaps: every judged slice is computed.
    assert [list(s.feature_keys) for s in eval_config.slicing_specs] == [
        [],
        ["payment_type"],
        ["trip_start_day"],
        ["pickup_community_area"],
        ["company"],
    ]
    assert eval_config.options.compute_confidence_intervals.value
    assert eval_config.options.confidence_intervals.method == (
        tfma.ConfidenceIntervalOptions.JACKKNIFE
    )
    (cross,) = eval_config.cross_slicing_specs
    assert dict(cross.baseline_spec.feature_values) == {"company": "Flash Cab"}
    assert [dict(s.feature_values) for s in cross.slicing_specs] == [
        {"company": "Taxi Affiliation Services"}
    ]
    # TFMA's AUC computed with numpy (metrics/auc.py), and the metrics read off its histogram.
    assert [(m.class_name, m.module) for m in eval_config.metrics_specs[0].metrics] == [
        ("HistogramAUC", "tfx_pipeline.metrics.auc"),
        ("HistogramMetrics", "tfx_pipeline.metrics.histogram_metrics"),
    ]
    # No TFMA thresholds: they would judge point estimates (and TFX would bless by them).
    for metric in eval_config.metrics_specs[0].metrics:
        assert not metric.HasField("threshold") and not metric.per_slice_thresholds


def test_the_evaluator_carries_the_blessing_rules(config):
    from tfx_pipeline.components.gated_evaluator.executor import Executor
    from tfx_pipeline.components.gated_evaluator.rules import BlessingRules

    by_id = {c.id: c for c in pipeline_lib.create_pipeline(config).components}
    evaluator = by_id["Evaluator"]
    assert evaluator.executor_spec.executor_class is Executor
    rules = BlessingRules.from_json(evaluator.exec_properties["blessing_rules"])
    assert rules == config.blessing_rules()
    assert rules.slice_features == ("payment_type",) and rules.min_slice_examples == 200


def test_pipeline_compiles_to_ir(config):
    ir = compiler.Compiler().compile(pipeline_lib.create_pipeline(config))
    assert ir.pipeline_info.id == "taxi-test"
    assert len(ir.nodes) == len(COMPONENT_IDS)


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

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
    # ExampleGen parses each column as the curated schema declares.
    assert upstream_ids(pipeline, "CsvExampleGen") == {"ImportSchemaGen"}
    # Transform waits for the data gate: refused data never reaches training.
    assert upstream_ids(pipeline, "Transform") == {"CsvExampleGen", "ImportSchemaGen", "DataGate"}
    assert upstream_ids(pipeline, "ExampleValidator") == {"StatisticsGen", "ImportSchemaGen"}
    # The gate reads the new span's values (CsvExampleGen) for drift against the previous span.
    assert upstream_ids(pipeline, "DataGate") == {
        "CsvExampleGen",
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
    # Nothing reaches serving unless both the Evaluator and the InfraValidator blessed it; the
    # rest is what the model card reports (test_the_pusher_gets_what_the_model_card_reports).
    assert upstream_ids(pipeline, "Pusher") == {
        "Trainer",
        "Evaluator",
        "InfraValidator",
        "CsvExampleGen",
        "StatisticsGen",
        "ImportSchemaGen",
        "Tuner",
    }


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
    # The model card reports the hyperparameters the Trainer received, wherever they came from.
    assert input_producers(pipeline, "Pusher")["hyperparameters"] == (
        "latest_hyperparameters_resolver",
        "hyperparameters",
    )


def test_no_earlier_search_resolves_to_none_except_where_vertex_needs_tfxs_strategy(config):
    from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import (
        LatestArtifactStrategy,
    )

    from tfx_pipeline.resolvers.newest import NewestOrNoneStrategy

    def strategy(portable):
        pipeline = pipeline_lib.create_pipeline(
            dataclasses.replace(config, run_tuner=False, portable_resolvers=portable)
        )
        (node,) = [c for c in pipeline.components if c.id == "latest_hyperparameters_resolver"]
        return node.exec_properties["resolver_class"]

    assert strategy(portable=False) is NewestOrNoneStrategy
    assert strategy(portable=True) is LatestArtifactStrategy


def test_hyperparameters_from_an_earlier_search_are_imported_for_the_trainer(config):
    pipeline = pipeline_lib.create_pipeline(
        dataclasses.replace(config, run_tuner=False, hyperparameters_uri="/searches/8")
    )
    ids = [c.id for c in pipeline.components]
    assert "Tuner" not in ids and "latest_hyperparameters_resolver" not in ids
    assert input_producers(pipeline, "Trainer")["hyperparameters"] == (
        "hyperparameters_importer",
        "result",
    )
    importer = next(c for c in pipeline.components if c.id == "hyperparameters_importer")
    assert importer.exec_properties["artifact_uri"] == "/searches/8"


def test_inferred_schema_variant_uses_schema_gen(config):
    pipeline = pipeline_lib.create_pipeline(dataclasses.replace(config, schema_path=None))
    assert upstream_ids(pipeline, "SchemaGen") == {"StatisticsGen"}
    assert "ImportSchemaGen" not in [c.id for c in pipeline.components]
    # No schema exists before ExampleGen: it infers column types from the span.
    assert upstream_ids(pipeline, "CsvExampleGen") == set()


def test_tfx_csv_example_gen_variant_takes_no_schema(config):
    pipeline = pipeline_lib.create_pipeline(
        dataclasses.replace(config, arrow_csv_example_gen=False)
    )
    by_id = {c.id: c for c in pipeline.components}
    assert type(by_id["CsvExampleGen"]).__name__ == "CsvExampleGen"
    assert upstream_ids(pipeline, "CsvExampleGen") == set()


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
    # TFMA's AUC computed with numpy (metrics/auc.py), the metrics read off its histogram, and
    # the same histogram written as the report's ROC and calibration data.
    assert [(m.class_name, m.module) for m in eval_config.metrics_specs[0].metrics] == [
        ("HistogramAUC", "tfx_pipeline.metrics.auc"),
        ("HistogramMetrics", "tfx_pipeline.metrics.histogram_metrics"),
        ("HistogramPlots", "tfx_pipeline.metrics.histogram_plots"),
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


def input_producers(pipeline, component_id) -> dict[str, tuple[str, str]]:
    """Each input key of a node -> (producing node, its output key)."""
    component = next(c for c in pipeline.components if c.id == component_id)
    return {
        key: (channel.producer_component_id, channel.output_key)
        for key, channel in component.inputs.items()
    }


def test_the_pusher_gets_what_the_model_card_reports(config):
    pipeline = pipeline_lib.create_pipeline(config)
    assert input_producers(pipeline, "Pusher") == {
        "model": ("Trainer", "model"),
        "model_blessing": ("Evaluator", "blessing"),
        "infra_blessing": ("InfraValidator", "blessing"),
        "evaluation": ("Evaluator", "evaluation"),
        "hyperparameters": ("Tuner", "best_hyperparameters"),
        "statistics": ("StatisticsGen", "statistics"),
        "schema": ("ImportSchemaGen", "schema"),
        "examples": ("CsvExampleGen", "examples"),
    }
    trainer = input_producers(pipeline, "Trainer")
    assert input_producers(pipeline, "Pusher")["examples"] == trainer["examples"]
    pusher = next(c for c in pipeline.components if c.id == "Pusher")
    assert pusher.exec_properties["card_pipeline_name"] == "taxi-test"
    assert pusher.exec_properties["data_root"] == config.data_root


def test_the_vertex_pipeline_passes_the_model_card_inputs_to_the_pusher(config, tmp_path):
    from tfx_pipeline.runners import vertex

    job = vertex.compile_pipeline(
        dataclasses.replace(config, portable_resolvers=True),
        "us-docker.pkg.dev/project/ml/taxi:1",
        tmp_path / "pipeline.json",
    )
    pusher = job["pipelineSpec"]["root"]["dag"]["tasks"]["Pusher"]["inputs"]
    producers = {
        key: (
            spec["taskOutputArtifact"]["producerTask"],
            spec["taskOutputArtifact"]["outputArtifactKey"],
        )
        for key, spec in pusher["artifacts"].items()
    }
    assert producers == {
        "model": ("Trainer", "model"),
        "model_blessing": ("Evaluator", "blessing"),
        "infra_blessing": ("InfraValidator", "blessing"),
        "evaluation": ("Evaluator", "evaluation"),
        "hyperparameters": ("Tuner", "best_hyperparameters"),
        "statistics": ("StatisticsGen", "statistics"),
        "schema": ("ImportSchemaGen", "schema"),
        "examples": ("CsvExampleGen", "examples"),
    }
    pipeline_name = pusher["parameters"]["card_pipeline_name"]["runtimeValue"]["constantValue"]
    assert pipeline_name == {"stringValue": "taxi-test"}


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
    # The model card lists every span the Trainer read.
    assert input_producers(pipeline, "Pusher")["examples"] == ("span_window_resolver", "examples")
    # The Evaluator judges the model on the new span only, whatever the window.
    assert "span_window_resolver" not in upstream_ids(pipeline, "Evaluator")
    by_id = {c.id: c for c in pipeline.components}
    # Transform only analyzes: no transformed copy of the window is written.
    assert "transformed_examples" not in by_id["Transform"].outputs


def test_one_span_needs_no_resolver_and_no_cache(config):
    ids = [c.id for c in pipeline_lib.create_pipeline(config).components]
    assert "span_window_resolver" not in ids
    assert "latest_analyzer_cache_resolver" not in ids

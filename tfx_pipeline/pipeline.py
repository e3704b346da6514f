"""create_pipeline: the one TFX pipeline definition every runner (local, Vertex, Airflow) builds."""

import tensorflow_model_analysis as tfma

# The component modules rather than `tfx.v1`: `tfx.v1` also imports its Google Cloud extensions
# (google-cloud-aiplatform), about 4 s of every run's start-up that a local run never uses.
from tfx import components
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.base import base_node, executor_spec
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import example_gen_pb2, pusher_pb2, trainer_pb2
from tfx.types import Channel, standard_artifacts

from models import features
from tfx_pipeline import arrow_csv_example_gen, atomic_pusher, cloud, eval_metrics
from tfx_pipeline import config as config_lib
from tfx_pipeline.baseline import LatestBlessedBaselineStrategy
from tfx_pipeline.data_gate import DataGate
from tfx_pipeline.previous_statistics import PreviousSpanStatisticsStrategy
from tfx_pipeline.span_window import SpanWindowStrategy

# Component ids: stable names that MLMD history, caching and the summary rely on.
EXAMPLE_GEN = "CsvExampleGen"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_GEN = "SchemaGen"
IMPORT_SCHEMA_GEN = "ImportSchemaGen"
EXAMPLE_VALIDATOR = "ExampleValidator"
DATA_GATE = "DataGate"
PREVIOUS_STATISTICS_RESOLVER = "previous_span_statistics_resolver"
SPAN_WINDOW_RESOLVER = "span_window_resolver"
ANALYZER_CACHE_RESOLVER = "latest_analyzer_cache_resolver"
TRANSFORM = "Transform"
TUNER = "Tuner"
HYPERPARAMETERS_RESOLVER = "latest_hyperparameters_resolver"
TRAINER = "Trainer"
BASELINE_RESOLVER = "latest_blessed_model_resolver"
EVALUATOR = "Evaluator"
PUSHER = "Pusher"
VERTEX_ENDPOINT_PUSHER = "VertexEndpointPusher"

SPAN_PATTERN = "span-{SPAN}/*"


def eval_config(config: config_lib.PipelineConfig) -> tfma.EvalConfig:
    """TFMA config: metrics on the overall slice and per slice feature, thresholds on overall only."""
    overall = tfma.SlicingSpec()
    auc_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": config.min_auc}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -config.max_auc_drop},
        ),
    )
    metrics = [
        tfma.MetricConfig(
            class_name="AUC",
            # Thresholds apply to every slice unless scoped; small slices are too noisy to gate on.
            per_slice_thresholds=[
                tfma.PerSliceMetricThreshold(slicing_specs=[overall], threshold=auc_threshold)
            ],
        ),
        # Example count, accuracy, precision and recall at 0.5, calibration and mean label (which
        # tells a one-class slice, where AUC is undefined, from a bad one), all derived from
        # AUC's histogram: TFMA's own metrics would add three more per-example combiners.
        tfma.MetricConfig(
            class_name=eval_metrics.HistogramMetrics.__name__, module=eval_metrics.__name__
        ),
    ]
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=features.SERVING_EXAMPLES_SIGNATURE,
                label_key=features.LABEL_KEY,
                preprocessing_function_names=[features.TRANSFORM_SIGNATURE],
            )
        ],
        slicing_specs=[overall]
        + [tfma.SlicingSpec(feature_keys=[key]) for key in config.slice_features],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )


def create_pipeline(config: config_lib.PipelineConfig) -> tfx_pipeline.Pipeline:
    """Builds the pipeline: ingest, validate, transform, tune, train, evaluate, push.

    Args:
      config: paths, steps, thresholds and Beam arguments; nothing is read from elsewhere.

    Returns:
      A TFX pipeline (`tfx.v1.dsl.Pipeline`) that any TFX orchestrator can run.
    """
    # The Arrow executor writes the same examples as CsvExampleGen's, several times faster.
    example_gen_class = (
        arrow_csv_example_gen.ArrowCsvExampleGen
        if config.arrow_csv_example_gen
        else components.CsvExampleGen
    )
    example_gen = example_gen_class(
        input_base=config.data_root,
        input_config=example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="single_split", pattern=SPAN_PATTERN)]
        ),
        output_config=example_gen_pb2.Output(
            split_config=example_gen_pb2.SplitConfig(
                splits=[
                    example_gen_pb2.SplitConfig.Split(
                        name="train", hash_buckets=config.train_hash_buckets
                    ),
                    example_gen_pb2.SplitConfig.Split(
                        name="eval", hash_buckets=config.eval_hash_buckets
                    ),
                ]
            )
        ),
    ).with_id(EXAMPLE_GEN)

    statistics_gen = components.StatisticsGen(examples=example_gen.outputs["examples"]).with_id(
        STATISTICS_GEN
    )

    if config.schema_path:
        schema_gen = ImportSchemaGen(schema_file=config.schema_path).with_id(IMPORT_SCHEMA_GEN)
    else:
        schema_gen = components.SchemaGen(
            statistics=statistics_gen.outputs["statistics"], infer_feature_shape=False
        ).with_id(SCHEMA_GEN)
    schema = schema_gen.outputs["schema"]

    example_validator = components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema
    ).with_id(EXAMPLE_VALIDATOR)

    if config.portable_resolvers:
        # The newest statistics of an earlier run; resolved before this run's StatisticsGen
        # starts, so it can never be this span's own. Not lineage-aware: a rerun of the same
        # span compares the span with itself, which finds no drift.
        previous_statistics = Resolver(
            strategy_class=LatestArtifactStrategy,
            statistics=Channel(type=standard_artifacts.ExampleStatistics),
        ).with_id(PREVIOUS_STATISTICS_RESOLVER)
        statistics_gen.add_upstream_node(previous_statistics)
    else:
        previous_statistics = Resolver(
            strategy_class=PreviousSpanStatisticsStrategy,
            current_examples=example_gen.outputs["examples"],
            statistics=Channel(type=standard_artifacts.ExampleStatistics),
        ).with_id(PREVIOUS_STATISTICS_RESOLVER)

    data_gate = DataGate(
        anomalies=example_validator.outputs["anomalies"],
        statistics=statistics_gen.outputs["statistics"],
        schema=schema,
        previous_statistics=previous_statistics.outputs["statistics"],
        policy=config.anomaly_policy_json,
    ).with_id(DATA_GATE)

    window_nodes = []
    training_examples = example_gen.outputs["examples"]
    analyzer_cache = None
    if config.training_window_spans > 1:
        span_window = Resolver(
            strategy_class=SpanWindowStrategy,
            config={"num_spans": config.training_window_spans},
            current_examples=example_gen.outputs["examples"],
            examples=Channel(type=standard_artifacts.Examples),
        ).with_id(SPAN_WINDOW_RESOLVER)
        # Analysis results per span from the previous Transform: only the new span is analyzed.
        cache_resolver = Resolver(
            strategy_class=LatestArtifactStrategy,
            cache=Channel(type=standard_artifacts.TransformCache),
        ).with_id(ANALYZER_CACHE_RESOLVER)
        window_nodes = [span_window, cache_resolver]
        training_examples = span_window.outputs["examples"]
        analyzer_cache = cache_resolver.outputs["cache"]

    transform = components.Transform(
        examples=training_examples,
        schema=schema,
        preprocessing_fn=config_lib.PREPROCESSING_FN,
        custom_config=config.module_custom_config(),
        # StatisticsGen already describes the raw data; Transform's own statistics go unused.
        disable_statistics=True,
        # Analysis only: the Tuner and Trainer apply the graph to raw examples as they read
        # them (models/model.py), so no transformed copy of every span is written.
        materialize=False,
        analyzer_cache=analyzer_cache,
    ).with_id(TRANSFORM)
    # Nothing downstream of the data may run on data the gate refused.
    transform.add_upstream_node(data_gate)

    tuner_class, trainer_class = components.Tuner, components.Trainer
    tuner_config = trainer_config = config.module_custom_config()
    if config.vertex_training:
        tuner_class, trainer_class, tuner_config, trainer_config = vertex_training_components(
            config
        )

    if config.run_tuner:
        tuner = tuner_class(
            tuner_fn=config_lib.TUNER_FN,
            examples=training_examples,
            transform_graph=transform.outputs["transform_graph"],
            schema=schema,
            train_args=trainer_pb2.TrainArgs(num_steps=config.tuner_train_steps),
            eval_args=trainer_pb2.EvalArgs(num_steps=config.tuner_eval_steps),
            custom_config=tuner_config,
        ).with_id(TUNER)
        hyperparameters_node = tuner
        hyperparameters = tuner.outputs["best_hyperparameters"]
    else:
        hyperparameters_node = Resolver(
            strategy_class=LatestArtifactStrategy,
            hyperparameters=Channel(type=standard_artifacts.HyperParameters),
        ).with_id(HYPERPARAMETERS_RESOLVER)
        hyperparameters = hyperparameters_node.outputs["hyperparameters"]

    trainer = trainer_class(
        run_fn=config_lib.RUN_FN,
        examples=training_examples,
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        hyperparameters=hyperparameters,
        train_args=trainer_pb2.TrainArgs(num_steps=config.train_steps),
        eval_args=trainer_pb2.EvalArgs(num_steps=config.eval_steps),
        custom_config=trainer_config,
    ).with_id(TRAINER)

    if config.portable_resolvers:
        # TFX's stock strategy: a cached Trainer's model is its own baseline. The Pusher still
        # refuses to push a model identical to a version already served.
        baseline_resolver = Resolver(
            strategy_class=LatestBlessedModelStrategy,
            model=Channel(type=standard_artifacts.Model),
            model_blessing=Channel(type=standard_artifacts.ModelBlessing),
        ).with_id(BASELINE_RESOLVER)
    else:
        baseline_resolver = Resolver(
            strategy_class=LatestBlessedBaselineStrategy,
            candidate=trainer.outputs["model"],
            model=Channel(type=standard_artifacts.Model),
            model_blessing=Channel(type=standard_artifacts.ModelBlessing),
        ).with_id(BASELINE_RESOLVER)

    evaluator = components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        eval_config=eval_config(config),
    ).with_id(EVALUATOR)

    pusher = components.Pusher(
        # Versions appear complete or not at all, and an unchanged model is never pushed twice.
        custom_executor_spec=executor_spec.ExecutorClassSpec(atomic_pusher.Executor),
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(
                base_directory=config.serving_model_dir
            )
        ),
    ).with_id(PUSHER)

    nodes = [
        example_gen,
        statistics_gen,
        schema_gen,
        example_validator,
        previous_statistics,
        data_gate,
        *window_nodes,
        transform,
        hyperparameters_node,
        trainer,
        baseline_resolver,
        evaluator,
        pusher,
    ]
    if config.vertex_endpoint:
        nodes.append(vertex_endpoint_pusher(config.vertex_endpoint, trainer, evaluator))

    metadata_connection_config = (
        metadata.sqlite_metadata_connection_config(config.metadata_path)
        if config.metadata_path
        else None
    )
    return tfx_pipeline.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=nodes,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_pipeline_args),
    )


def vertex_training_components(config: config_lib.PipelineConfig) -> tuple[type, type, dict, dict]:
    """Tuner and Trainer classes that run as Vertex AI custom jobs, with their custom_config.

    Imported here, not at the top: the Google Cloud extensions load google-cloud-aiplatform,
    seconds of start-up that local runs never need.
    """
    from tfx.extensions.google_cloud_ai_platform import constants as vertex_constants
    from tfx.extensions.google_cloud_ai_platform.trainer import executor as trainer_executor
    from tfx.extensions.google_cloud_ai_platform.trainer.component import Trainer
    from tfx.extensions.google_cloud_ai_platform.tuner import executor as tuner_executor
    from tfx.extensions.google_cloud_ai_platform.tuner.component import Tuner

    training = config.vertex_training
    assert training is not None
    vertex = {
        vertex_constants.ENABLE_VERTEX_KEY: True,
        vertex_constants.VERTEX_REGION_KEY: training.region,
    }
    trainer_config = {
        **config.module_custom_config(),
        **vertex,
        trainer_executor.TRAINING_ARGS_KEY: training.custom_job_spec(),
    }
    tuner_config = {
        **config.module_custom_config(),
        **vertex,
        tuner_executor.TUNING_ARGS_KEY: training.custom_job_spec(),
        # Trials write their progress where every worker can see it.
        tuner_executor.REMOTE_TRIALS_WORKING_DIR_KEY: f"{config.pipeline_root}/tuner_trials",
    }
    return Tuner, Trainer, tuner_config, trainer_config


def vertex_endpoint_pusher(
    endpoint: cloud.VertexEndpoint,
    trainer: base_node.BaseNode,
    evaluator: base_node.BaseNode,
) -> base_node.BaseNode:
    """A second Pusher that deploys the blessed model to a Vertex AI endpoint."""
    from tfx.extensions.google_cloud_ai_platform import constants as vertex_constants
    from tfx.extensions.google_cloud_ai_platform.pusher.component import Pusher

    return Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        custom_config={
            vertex_constants.ENABLE_VERTEX_KEY: True,
            vertex_constants.VERTEX_REGION_KEY: endpoint.region,
            vertex_constants.VERTEX_CONTAINER_IMAGE_URI_KEY: endpoint.serving_image,
            vertex_constants.SERVING_ARGS_KEY: endpoint.serving_args(),
        },
    ).with_id(VERTEX_ENDPOINT_PUSHER)

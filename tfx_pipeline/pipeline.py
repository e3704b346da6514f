"""create_pipeline: the one TFX pipeline definition every runner (local, Vertex, Airflow) builds.

It composes four named stages, each returning its nodes and what later stages read:

  ingest_and_validate  ExampleGen, StatisticsGen, the schema, ExampleValidator and the DataGate
  training_window      the examples Transform and training read: this span, or a rolling window
  tune_and_train       Transform, the Tuner (or the latest search), the Trainer
  evaluate_and_push    the baseline, the Evaluator (TFMA), the InfraValidator and the Pusher(s)

The resolver family (lineage-aware, or portable for Vertex) is chosen once, in create_pipeline.
"""

import dataclasses

import tensorflow_model_analysis as tfma

# The component modules rather than `tfx.v1`: `tfx.v1` also imports its Google Cloud extensions
# (google-cloud-aiplatform), about 4 s of every run's start-up that a local run never uses.
from tfx import components
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.base import base_node
from tfx.dsl.components.common.importer import Importer
from tfx.orchestration import metadata as tfx_metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import example_gen_pb2, infra_validator_pb2, pusher_pb2, trainer_pb2
from tfx.types import Channel, standard_artifacts

from models import features
from tfx_pipeline import cloud, layout, node_ids
from tfx_pipeline import config as config_lib
from tfx_pipeline.components.arrow_csv_example_gen.component import ArrowCsvExampleGen
from tfx_pipeline.components.atomic_pusher.component import Pusher as AtomicPusher
from tfx_pipeline.components.data_gate.component import DataGate
from tfx_pipeline.components.gated_evaluator.component import GatedEvaluator
from tfx_pipeline.components.infra_validator.component import InfraValidator
from tfx_pipeline.metrics import auc, histogram_metrics, histogram_plots
from tfx_pipeline.resolvers import families
from tfx_pipeline.resolvers.families import ResolverFamily


@dataclasses.dataclass(frozen=True)
class Ingested:
    """The new span, described and checked: nothing downstream runs unless the gate passed."""

    nodes: list[base_node.BaseNode]
    example_gen: base_node.BaseNode
    examples: Channel  # this run's span, as ExampleGen wrote it
    statistics: Channel  # this run's span, as StatisticsGen described it
    schema: Channel
    data_gate: base_node.BaseNode


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What Transform, the Tuner and the Trainer read."""

    nodes: list[base_node.BaseNode]
    examples: Channel
    analyzer_cache: Channel | None  # Transform's per-span analysis from its previous run


@dataclasses.dataclass(frozen=True)
class Trained:
    """The transform graph's and the model's producers."""

    nodes: list[base_node.BaseNode]
    trainer: base_node.BaseNode
    model: Channel
    examples: Channel  # what the Trainer read
    hyperparameters: Channel  # what the Trainer received


def eval_config(config: config_lib.PipelineConfig) -> tfma.EvalConfig:
    """TFMA config: what to compute (metrics with jackknife intervals per slice), not thresholds.

    The GatedEvaluator judges the blessing rules itself, on these intervals: TFMA's thresholds
    would compare point estimates only.
    """
    rules = config.blessing_rules()
    slice_features = list(config.slice_features)
    slice_features += [f for f in rules.gated_features() if f not in slice_features]
    metrics = [
        # TFMA's AUC, the same value computed with numpy: TFMA's own takes 35 ms per slice,
        # model and jackknife sample (metrics/auc.py).
        tfma.MetricConfig(class_name=auc.HistogramAUC.__name__, module=auc.__name__),
        # Example count, accuracy, precision and recall at 0.5, calibration and mean label (which
        # tells a one-class slice, where AUC is undefined, from a bad one), all derived from
        # AUC's histogram: TFMA's own metrics would add three more per-example combiners.
        tfma.MetricConfig(
            class_name=histogram_metrics.HistogramMetrics.__name__,
            module=histogram_metrics.__name__,
        ),
        # The same histogram written as a plot, the ROC and calibration charts' data; once per
        # slice and model, not per jackknife sample as TFMA's own plots (metrics/histogram_plots.py).
        tfma.MetricConfig(
            class_name=histogram_plots.HistogramPlots.__name__, module=histogram_plots.__name__
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
        slicing_specs=[tfma.SlicingSpec()]
        + [tfma.SlicingSpec(feature_keys=[key]) for key in slice_features],
        # Each slice gap as TFMA's cross-slice metric, AUC(first) - AUC(second), which the
        # jackknife gives an interval like any other metric.
        cross_slicing_specs=[
            tfma.CrossSlicingSpec(
                baseline_spec=tfma.SlicingSpec(feature_values={gap.feature: gap.first}),
                slicing_specs=[tfma.SlicingSpec(feature_values={gap.feature: gap.second})],
            )
            for gap in rules.slice_gaps
        ],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
        options=tfma.Options(
            compute_confidence_intervals={"value": True},
            confidence_intervals=tfma.ConfidenceIntervalOptions(
                method=tfma.ConfidenceIntervalOptions.JACKKNIFE
            ),
        ),
    )


def create_pipeline(config: config_lib.PipelineConfig) -> tfx_pipeline.Pipeline:
    """Builds the pipeline: ingest, validate, transform, tune, train, evaluate, push.

    Args:
      config: paths, steps, thresholds and Beam arguments; nothing is read from elsewhere.

    Returns:
      A TFX pipeline (`tfx.v1.dsl.Pipeline`) that any TFX orchestrator can run.
    """
    resolvers = families.family(portable=config.portable_resolvers)
    ingested = ingest_and_validate(config, resolvers)
    training_data = training_window(config, resolvers, ingested)
    trained = tune_and_train(config, resolvers, ingested, training_data)
    pushing = evaluate_and_push(config, resolvers, ingested, trained)

    metadata_connection_config = (
        tfx_metadata.sqlite_metadata_connection_config(config.metadata_path)
        if config.metadata_path
        else None
    )
    return tfx_pipeline.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=[*ingested.nodes, *training_data.nodes, *trained.nodes, *pushing],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_pipeline_args),
    )


def ingest_and_validate(config: config_lib.PipelineConfig, resolvers: ResolverFamily) -> Ingested:
    """ExampleGen on the latest span, its statistics and schema checks, and the DataGate."""
    # The curated schema comes first: ExampleGen parses each column as it declares. An inferred
    # schema (SchemaGen) needs ExampleGen's statistics, so then ExampleGen infers types itself.
    curated_schema_gen = (
        ImportSchemaGen(schema_file=config.schema_path).with_id(node_ids.IMPORT_SCHEMA_GEN)
        if config.schema_path
        else None
    )
    example_gen = example_gen_node(
        config, curated_schema_gen.outputs["schema"] if curated_schema_gen else None
    )

    statistics_gen = components.StatisticsGen(examples=example_gen.outputs["examples"]).with_id(
        node_ids.STATISTICS_GEN
    )

    schema_gen = curated_schema_gen or components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=False
    ).with_id(node_ids.SCHEMA_GEN)
    schema = schema_gen.outputs["schema"]

    example_validator = components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema
    ).with_id(node_ids.EXAMPLE_VALIDATOR)

    previous_statistics = resolvers.previous_statistics(example_gen, statistics_gen)
    data_gate = DataGate(
        anomalies=example_validator.outputs["anomalies"],
        statistics=statistics_gen.outputs["statistics"],
        schema=schema,
        previous_statistics=previous_statistics.outputs["statistics"],
        policy=config.anomaly_policy_json,
        examples=example_gen.outputs["examples"],
    ).with_id(node_ids.DATA_GATE)

    return Ingested(
        nodes=[
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            previous_statistics,
            data_gate,
        ],
        example_gen=example_gen,
        examples=example_gen.outputs["examples"],
        statistics=statistics_gen.outputs["statistics"],
        schema=schema,
        data_gate=data_gate,
    )


def example_gen_node(
    config: config_lib.PipelineConfig, curated_schema: Channel | None
) -> base_node.BaseNode:
    """ExampleGen on the latest span, split into train and eval by hash.

    The Arrow executor (the default) writes the same examples as CsvExampleGen's, several times
    faster, and parses the columns the curated schema types as it declares; TFX's own executor
    (`arrow_csv_example_gen=False`) takes no schema and infers every column's type per span.
    """
    split_config = example_gen_pb2.SplitConfig(
        splits=[
            example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=config.train_hash_buckets),
            example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=config.eval_hash_buckets),
        ]
    )
    arguments = {
        "input_base": config.data_root,
        "input_config": example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="single_split", pattern=layout.SPAN_PATTERN)]
        ),
        "output_config": example_gen_pb2.Output(split_config=split_config),
    }
    if not config.arrow_csv_example_gen:
        return components.CsvExampleGen(**arguments).with_id(node_ids.EXAMPLE_GEN)
    return ArrowCsvExampleGen(**arguments, schema=curated_schema).with_id(node_ids.EXAMPLE_GEN)


def training_window(
    config: config_lib.PipelineConfig, resolvers: ResolverFamily, ingested: Ingested
) -> TrainingData:
    """This span alone, or the newest `training_window_spans` accepted spans with their cache."""
    if config.training_window_spans == 1:
        return TrainingData(nodes=[], examples=ingested.examples, analyzer_cache=None)
    span_window = resolvers.span_window(ingested.example_gen, config.training_window_spans)
    cache = resolvers.analyzer_cache()
    return TrainingData(
        nodes=[span_window, cache],
        examples=span_window.outputs["examples"],
        analyzer_cache=cache.outputs["cache"],
    )


def tune_and_train(
    config: config_lib.PipelineConfig,
    resolvers: ResolverFamily,
    ingested: Ingested,
    training_data: TrainingData,
) -> Trained:
    """Transform (analysis only), hyperparameters (searched or reused), and the Trainer."""
    transform = components.Transform(
        examples=training_data.examples,
        schema=ingested.schema,
        preprocessing_fn=config_lib.PREPROCESSING_FN,
        custom_config=config.module_custom_config(),
        # StatisticsGen already describes the raw data; Transform's own statistics go unused.
        disable_statistics=True,
        # Analysis only: the Tuner and Trainer apply the graph to raw examples as they read
        # them (models/model.py), so no transformed copy of every span is written.
        materialize=False,
        analyzer_cache=training_data.analyzer_cache,
    ).with_id(node_ids.TRANSFORM)
    # Nothing downstream of the data may run on data the gate refused.
    transform.add_upstream_node(ingested.data_gate)

    tuner_class, trainer_class = components.Tuner, components.Trainer
    tuner_config = trainer_config = config.module_custom_config()
    if config.vertex_training:
        tuner_class, trainer_class, tuner_config, trainer_config = vertex_training_components(
            config
        )

    if config.run_tuner:
        hyperparameters_node = tuner_class(
            tuner_fn=config_lib.TUNER_FN,
            examples=training_data.examples,
            transform_graph=transform.outputs["transform_graph"],
            schema=ingested.schema,
            train_args=trainer_pb2.TrainArgs(num_steps=config.tuner_train_steps),
            eval_args=trainer_pb2.EvalArgs(num_steps=config.tuner_eval_steps),
            custom_config=tuner_config,
        ).with_id(node_ids.TUNER)
        hyperparameters = hyperparameters_node.outputs["best_hyperparameters"]
    elif config.hyperparameters_uri:
        hyperparameters_node = Importer(
            source_uri=config.hyperparameters_uri,
            artifact_type=standard_artifacts.HyperParameters,
        ).with_id(node_ids.HYPERPARAMETERS_IMPORTER)
        hyperparameters = hyperparameters_node.outputs["result"]
    else:
        hyperparameters_node = resolvers.hyperparameters()
        hyperparameters = hyperparameters_node.outputs["hyperparameters"]

    trainer = trainer_class(
        run_fn=config_lib.RUN_FN,
        examples=training_data.examples,
        transform_graph=transform.outputs["transform_graph"],
        schema=ingested.schema,
        hyperparameters=hyperparameters,
        train_args=trainer_pb2.TrainArgs(num_steps=config.train_steps),
        eval_args=trainer_pb2.EvalArgs(num_steps=config.eval_steps),
        custom_config=trainer_config,
    ).with_id(node_ids.TRAINER)
    return Trained(
        nodes=[transform, hyperparameters_node, trainer],
        trainer=trainer,
        model=trainer.outputs["model"],
        examples=training_data.examples,
        hyperparameters=hyperparameters,
    )


def evaluate_and_push(
    config: config_lib.PipelineConfig,
    resolvers: ResolverFamily,
    ingested: Ingested,
    trained: Trained,
) -> list[base_node.BaseNode]:
    """The baseline, TFMA's Evaluator on this span's eval split, and the blessed model's push."""
    baseline = resolvers.baseline(trained.trainer)
    # TFX's Evaluator, blessing by our rules judged on TFMA's confidence intervals.
    evaluator = GatedEvaluator(
        examples=ingested.examples,
        model=trained.model,
        baseline_model=baseline.outputs["model"],
        eval_config=eval_config(config),
        blessing_rules=config.blessing_rules(),
    ).with_id(node_ids.EVALUATOR)

    infra_validator = infra_validation(config, ingested, trained, baseline.outputs["model"])

    pusher = AtomicPusher(
        # Versions appear complete or not at all, and an unchanged model is never pushed twice;
        # the pushed copy is the infra-validated one, with its warmup requests.
        model=trained.model,
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validator.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(
                base_directory=config.serving_model_dir
            )
        ),
        # What each version's model card reports, as inputs so lineage shows them.
        card_pipeline_name=config.pipeline_name,
        data_root=config.data_root,
        evaluation=evaluator.outputs["evaluation"],
        hyperparameters=trained.hyperparameters,
        statistics=ingested.statistics,
        schema=ingested.schema,
        examples=trained.examples,
    ).with_id(node_ids.PUSHER)

    nodes = [baseline, evaluator, infra_validator, pusher]
    if config.vertex_endpoint:
        nodes.append(
            vertex_endpoint_pusher(
                config.vertex_endpoint, trained.model, evaluator, infra_validator
            )
        )
    return nodes


def infra_validation(
    config: config_lib.PipelineConfig,
    ingested: Ingested,
    trained: Trained,
    baseline_model: Channel,
) -> base_node.BaseNode:
    """The candidate served by a real model server: it loads, answers right, fast, and warm."""
    return InfraValidator(
        model=trained.model,
        examples=ingested.examples,
        baseline_model=baseline_model,
        serving_spec=infra_validator_pb2.ServingSpec(
            tensorflow_serving=infra_validator_pb2.TensorFlowServing(),
            model_name=config.model_name,
        ),
        request_spec=infra_validator_pb2.RequestSpec(
            tensorflow_serving=infra_validator_pb2.TensorFlowServingRequestSpec(
                signature_names=list(config_lib.INFRA_SIGNATURES)
            ),
            split_name="eval",
            num_examples=config.infra_examples,
            make_warmup=True,
        ),
        validation_spec=infra_validator_pb2.ValidationSpec(
            max_loading_time_seconds=config.infra_max_loading_seconds
        ),
        server=config.infra_server,
        max_p99_increase=config.infra_max_p99_increase,
    ).with_id(node_ids.INFRA_VALIDATOR)


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
    model: Channel,
    evaluator: base_node.BaseNode,
    infra_validator: base_node.BaseNode,
) -> base_node.BaseNode:
    """A second Pusher that deploys the blessed model to a Vertex AI endpoint."""
    from tfx.extensions.google_cloud_ai_platform import constants as vertex_constants
    from tfx.extensions.google_cloud_ai_platform.pusher.component import Pusher

    return Pusher(
        model=model,
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validator.outputs["blessing"],
        custom_config={
            vertex_constants.ENABLE_VERTEX_KEY: True,
            vertex_constants.VERTEX_REGION_KEY: endpoint.region,
            vertex_constants.VERTEX_CONTAINER_IMAGE_URI_KEY: endpoint.serving_image,
            vertex_constants.SERVING_ARGS_KEY: endpoint.serving_args(),
        },
    ).with_id(node_ids.VERTEX_ENDPOINT_PUSHER)

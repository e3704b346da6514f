"""Component ids: stable names that MLMD history, caching, the run summary and the operator tools rely on.

Changing one starts that component's history and cache afresh, so they never change casually.
"""

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
HYPERPARAMETERS_IMPORTER = "hyperparameters_importer"
TRAINER = "Trainer"
BASELINE_RESOLVER = "latest_blessed_model_resolver"
EVALUATOR = "Evaluator"
INFRA_VALIDATOR = "InfraValidator"
PUSHER = "Pusher"
VERTEX_ENDPOINT_PUSHER = "VertexEndpointPusher"

# The components that run Beam pipelines, with the pipeline's Beam args: what Dataflow and
# `--beam-runner portable` run on SDK workers.
BEAM_COMPONENTS = (EXAMPLE_GEN, STATISTICS_GEN, TRANSFORM, EVALUATOR)

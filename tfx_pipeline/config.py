"""PipelineConfig: every path, step count, threshold and Beam argument the pipeline factory takes.

Its field defaults are the one table of defaults: every runner's flags and settings read them
with `default(name)` rather than restating them.
"""

import dataclasses
import hashlib
import json
import pathlib

import models
from tfx_pipeline import cloud
from tfx_pipeline.components.data_gate.policy import validate_policy
from tfx_pipeline.problems import ConfigProblems, raise_if_any

# Module code TFX loads by dotted path; the project is installed into the environment.
PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
TUNER_FN = "models.tuner.tuner_fn"
RUN_FN = "models.model.run_fn"

# The served model's name: <serving-dir>/<MODEL_NAME>/<version>/.
MODEL_NAME = "taxi"
# Each orchestrator's pipeline name (MLMD pipeline context): their histories never mix.
LOCAL_PIPELINE_NAME = "taxi"
VERTEX_PIPELINE_NAME = "taxi-vertex"
AIRFLOW_PIPELINE_NAME = "taxi_airflow"


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Everything `create_pipeline` needs; runners build one from their flags.

    Attributes:
      pipeline_name: MLMD pipeline name; runs with the same name share cache and history.
      pipeline_root: where component outputs (artifacts) are written.
      data_root: folder holding `span-N/` folders of CSV files; the latest span is ingested.
      serving_model_dir: TF Serving model base path, `<serving_dir>/<model_name>`.
      metadata_path: SQLite MLMD file, or None where the orchestrator provides MLMD.
      schema_path: curated schema.pbtxt for ImportSchemaGen, or None to infer with SchemaGen.
      run_tuner: True searches hyperparameters; False reuses the latest ones in MLMD.
      module_fingerprint: hash of models/ source; part of the cache key of module-code steps.
      anomaly_policy_json: the DataGate policy (see components/data_gate/policy.py) as JSON text.
      beam_pipeline_args: Beam flags for every Beam-based component (e.g. Dataflow's, from
        `cloud.DataflowSettings.beam_pipeline_args()`).
      portable_resolvers: use only the resolver strategies Kubeflow Pipelines v2 (Vertex AI
        Pipelines) can compile: TFX's LatestArtifactStrategy and LatestBlessedModelStrategy
        instead of our lineage-following ones (see `pipeline.create_pipeline`).
      vertex_training: run the Tuner and the Trainer as Vertex AI custom jobs.
      vertex_endpoint: also deploy each blessed model to a Vertex AI endpoint.
      arrow_csv_example_gen: ExampleGen parses CSV with Arrow and encodes examples in C++
        (components/arrow_csv_example_gen/); False uses TFX's own CSV executor (same examples,
        slower).
      training_window_spans: Transform, the Tuner and the Trainer read the newest this many
        spans that passed the data gate (1: only the ingested span); Transform reuses its
        analyzer cache for the older ones. Above 1 it needs a lineage-following resolver, so
        not with `portable_resolvers`.
    """

    pipeline_name: str
    pipeline_root: str
    data_root: str
    serving_model_dir: str
    metadata_path: str | None
    schema_path: str | None
    module_fingerprint: str
    anomaly_policy_json: str = '{"default": "fail"}'
    run_tuner: bool = True
    tuner_trials: int = 3
    tuner_train_steps: int = 300
    tuner_eval_steps: int = 50
    train_steps: int = 1000
    eval_steps: int = 100
    batch_size: int = 128
    seed: int = 42
    train_hash_buckets: int = 3
    eval_hash_buckets: int = 1
    min_auc: float = 0.90
    max_auc_drop: float = 0.01
    slice_features: tuple[str, ...] = ("payment_type", "trip_start_day")
    beam_pipeline_args: tuple[str, ...] = ()
    enable_cache: bool = True
    portable_resolvers: bool = False
    vertex_training: cloud.VertexTraining | None = None
    vertex_endpoint: cloud.VertexEndpoint | None = None
    arrow_csv_example_gen: bool = True
    training_window_spans: int = 1

    def __post_init__(self) -> None:
        problems = []
        for name in (
            "tuner_trials",
            "tuner_train_steps",
            "tuner_eval_steps",
            "train_steps",
            "eval_steps",
            "batch_size",
            "train_hash_buckets",
            "eval_hash_buckets",
            "training_window_spans",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.min_auc <= 1.0:
            problems.append(f"min_auc must be within [0, 1], got {self.min_auc}")
        if not 0.0 <= self.max_auc_drop <= 1.0:
            problems.append(f"max_auc_drop must be within [0, 1], got {self.max_auc_drop}")
        if not self.pipeline_name.replace("-", "").replace("_", "").isalnum():
            problems.append(
                f"pipeline_name may hold letters, digits, '-' and '_' only, got {self.pipeline_name!r}"
            )
        if self.training_window_spans > 1 and self.portable_resolvers:
            problems.append(
                "training_window_spans above 1 needs the lineage-following span window "
                "resolver, which portable_resolvers (Vertex AI Pipelines) cannot compile"
            )
        try:
            validate_policy(json.loads(self.anomaly_policy_json))
        except ConfigProblems as error:
            problems += [f"anomaly_policy_json: {problem}" for problem in error.problems]
        except json.JSONDecodeError as error:
            problems.append(f"anomaly_policy_json is not JSON: {error}")
        raise_if_any(problems, "invalid pipeline config")

    def module_custom_config(self) -> dict[str, object]:
        """custom_config for Transform, Tuner and Trainer: settings the module code reads."""
        return {
            "module_fingerprint": self.module_fingerprint,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "tuner_trials": self.tuner_trials,
        }


def default(name: str) -> object:
    """The default of PipelineConfig field `name`: what a runner uses when not told otherwise."""
    field = PipelineConfig.__dataclass_fields__[name]
    if field.default is dataclasses.MISSING:
        raise KeyError(f"PipelineConfig.{name} has no default")
    return field.default


def module_fingerprint() -> str:
    """SHA-256 over the source of the `models` package.

    TFX loads module code by dotted path, so the code itself is not part of any cache key;
    putting this hash into custom_config makes an edit to models/ rerun the steps that run it.
    """
    digest = hashlib.sha256()
    package_dir = pathlib.Path(models.__file__).parent
    for path in sorted(package_dir.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]

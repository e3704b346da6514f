"""PipelineConfig: every path, step count, threshold and Beam argument the pipeline factory takes.

Its field defaults are the one table of defaults: every runner's flags and settings read them
with `default(name)` rather than restating them.
"""

import dataclasses
import hashlib
import json
import pathlib

import models
from models import features
from tfx_pipeline import cloud
from tfx_pipeline.components.data_gate.policy import validate_policy
from tfx_pipeline.components.gated_evaluator.rules import BlessingRules, SliceGap
from tfx_pipeline.components.infra_validator.servers import AUTO as AUTO_SERVER
from tfx_pipeline.components.infra_validator.servers import CHOICES as INFRA_SERVERS
from tfx_pipeline.components.infra_validator.servers import MAX_WARMUP_RECORDS
from tfx_pipeline.problems import ConfigProblems, raise_if_any

# Module code TFX loads by dotted path; the project is installed into the environment.
PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
TUNER_FN = "models.tuner.tuner_fn"
RUN_FN = "models.model.run_fn"

# Infra validation calls these signatures.
INFRA_SIGNATURES = (features.SERVING_EXAMPLES_SIGNATURE, features.SERVING_RAW_SIGNATURE)

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
      hyperparameters_uri: with run_tuner False, a folder holding an earlier search's
        best_hyperparameters.txt (e.g. another output dir's Tuner output), imported for the
        Trainer instead of the latest search in MLMD.
      module_fingerprint: hash of models/ source; part of the cache key of module-code steps.
      anomaly_policy_json: the DataGate policy (see components/data_gate/policy.py) as JSON text.
      beam_pipeline_args: Beam flags for every Beam-based component (e.g. Dataflow's, from
        `cloud.DataflowSettings.beam_pipeline_args()`).
      portable_resolvers: use only the resolver strategies Kubeflow Pipelines v2 (Vertex AI
        Pipelines) can compile: TFX's LatestArtifactStrategy and LatestBlessedModelStrategy
        instead of our lineage-following ones (see `pipeline.create_pipeline`).
      min_auc: blessing floor on the overall slice's AUC point estimate.
      max_auc_drop: no regression: blessing fails when the whole 95% interval of the overall
        AUC change against the last blessed model lies below -max_auc_drop (a drop within
        the noise passes).
      slice_features: features whose slices TFMA reports (gated ones are added).
      gated_slice_features: every slice of these features with at least `min_slice_examples`
        examples and both classes is gated by `min_slice_auc` and `max_slice_auc_drop`.
      min_slice_examples: smaller slices are reported ("too small to judge"), never gated.
      min_slice_class_examples: so are slices with fewer positives or negatives than this
        (the bundled data's Cash trips hold 2 recorded tips in 2460: AUC means nothing there).
      min_slice_auc: a gated slice fails when its whole AUC interval lies below this (0: off).
        0.5 fails only slices significantly worse than chance.
      max_slice_auc_drop: a gated slice fails when the whole interval of its AUC change against
        the last blessed model lies below -max_slice_auc_drop (1: off).
      max_slice_auc_gaps: AUC gaps between two slices of one feature that fail when their whole
        interval lies beyond the limit (see components/gated_evaluator/rules.py).
      live_max_auc_drop: live quality (reporting/live_quality.py): the served version's AUC on
        a new span is a significant drop when the whole 95% interval of (live AUC - its
        evaluation AUC) lies below -live_max_auc_drop; None uses max_auc_drop. Read by the
        runner's summary and notifications, not by the pipeline.
      vertex_training: run the Tuner and the Trainer as Vertex AI custom jobs.
      vertex_endpoint: also deploy each blessed model to a Vertex AI endpoint.
      arrow_csv_example_gen: ExampleGen parses CSV with Arrow and encodes examples in C++
        (components/arrow_csv_example_gen/); False uses TFX's own CSV executor (same examples,
        slower).
      training_window_spans: Transform, the Tuner and the Trainer read the newest this many
        spans that passed the data gate (1: only the ingested span); Transform reuses its
        analyzer cache for the older ones. Above 1 it needs a lineage-following resolver, so
        not with `portable_resolvers`.
      infra_server: the model server infra validation starts on the candidate: `auto` (TF
        Serving's `tensorflow_model_server` when it is on PATH, else `python -m serving`),
        `tensorflow_model_server` or `python`.
      infra_examples: eval-split rows infra validation sends through each checked signature;
        they also become the pushed model's warmup requests.
      infra_max_p99_increase: the candidate's p99 one-row predict latency may be at most this
        fraction above the last blessed model's, measured in the same server (0.5: 50% slower).
      infra_max_loading_seconds: how long the candidate may take to become AVAILABLE.
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
    hyperparameters_uri: str | None = None
    tuner_trials: int = 3
    tuner_train_steps: int = 300
    tuner_eval_steps: int = 50
    # Validation AUC peaks near 500 steps on the taxi spans and falls after: 500 steps scored
    # 0.9471-0.9486 on the 15k rows' eval split where 1,000 scored 0.9434-0.9450 (3 seeds each),
    # in half the training time.
    train_steps: int = 500
    eval_steps: int = 100
    batch_size: int = 128
    seed: int = 42
    train_hash_buckets: int = 3
    eval_hash_buckets: int = 1
    min_auc: float = 0.90
    max_auc_drop: float = 0.01
    slice_features: tuple[str, ...] = ("payment_type", "trip_start_day")
    gated_slice_features: tuple[str, ...] = ("payment_type",)
    min_slice_examples: int = 200
    min_slice_class_examples: int = 20
    min_slice_auc: float = 0.5
    max_slice_auc_drop: float = 0.05
    max_slice_auc_gaps: tuple[SliceGap, ...] = ()
    live_max_auc_drop: float | None = None
    beam_pipeline_args: tuple[str, ...] = ()
    enable_cache: bool = True
    portable_resolvers: bool = False
    vertex_training: cloud.VertexTraining | None = None
    vertex_endpoint: cloud.VertexEndpoint | None = None
    arrow_csv_example_gen: bool = True
    training_window_spans: int = 1
    infra_server: str = AUTO_SERVER
    infra_examples: int = 50
    infra_max_p99_increase: float = 0.5
    infra_max_loading_seconds: int = 300

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
            "infra_examples",
            "infra_max_loading_seconds",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        problems += self.blessing_rules().problems()
        if self.live_max_auc_drop is not None and not 0.0 <= self.live_max_auc_drop <= 1.0:
            problems.append(
                f"live_max_auc_drop must be within [0, 1], got {self.live_max_auc_drop}"
            )
        if self.infra_server not in INFRA_SERVERS:
            problems.append(
                f"infra_server must be one of {', '.join(INFRA_SERVERS)}, got {self.infra_server!r}"
            )
        if self.infra_examples * len(INFRA_SIGNATURES) > MAX_WARMUP_RECORDS:
            problems.append(
                f"infra_examples must be at most {MAX_WARMUP_RECORDS // len(INFRA_SIGNATURES)} "
                f"(each row is sent to {len(INFRA_SIGNATURES)} signatures and TF Serving replays "
                f"at most {MAX_WARMUP_RECORDS} warmup requests), got {self.infra_examples}"
            )
        if not self.infra_max_p99_increase >= 0.0:
            problems.append(
                f"infra_max_p99_increase must be at least 0, got {self.infra_max_p99_increase}"
            )
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

    @property
    def model_name(self) -> str:
        """The served model's name: the last folder of `serving_model_dir`."""
        return self.serving_model_dir.rstrip("/").rsplit("/", 1)[-1]

    def blessing_rules(self) -> BlessingRules:
        """What the GatedEvaluator blesses by (components/gated_evaluator/judge.py)."""
        return BlessingRules(
            min_auc=self.min_auc,
            max_auc_drop=self.max_auc_drop,
            slice_features=self.gated_slice_features,
            min_slice_examples=self.min_slice_examples,
            min_slice_class_examples=self.min_slice_class_examples,
            min_slice_auc=self.min_slice_auc,
            max_slice_auc_drop=self.max_slice_auc_drop,
            slice_gaps=self.max_slice_auc_gaps,
        )

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

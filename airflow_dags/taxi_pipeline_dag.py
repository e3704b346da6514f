"""Apache Airflow DAG: the taxi pipeline (the same `create_pipeline` factory) on Airflow 2.

One Airflow task per pipeline component, with the pipeline's dependencies, built by TFX's
AirflowDagRunner. Point Airflow's dags_folder at this folder (or copy this file into yours);
the project must be installed in Airflow's Python environment (`make setup` does that in .venv).

Settings come from the environment, read once when Airflow parses this file:
  TAXI_DATA_ROOT      folder of span-N/ CSV folders (default: data/taxi of this checkout)
  TAXI_OUTPUT_DIR     artifacts and MLMD (default: outputs/airflow of this checkout)
  TAXI_SERVING_DIR    TF Serving model root (default: $TAXI_OUTPUT_DIR/serving)
  TAXI_SCHEDULE       cron line or Airflow preset (default: @daily; "none" for manual runs only)
  TAXI_TUNE           1: search hyperparameters in every run; 0: reuse the latest (default: 1)
  TAXI_TRAIN_STEPS, TAXI_TUNER_TRIALS, TAXI_TUNER_STEPS   (defaults: 1000, 3, 300)
"""

import datetime
import os
import pathlib
from collections.abc import Mapping

# TFT, TFMA and Keras Tuner need Keras 2 (tf_keras); set before TensorFlow loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tfx.orchestration.airflow.airflow_dag_runner import (  # noqa: E402
    AirflowDagRunner,
    AirflowPipelineConfig,
)

from tfx_pipeline import config as config_lib  # noqa: E402
from tfx_pipeline import pipeline as pipeline_lib  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
PIPELINE_NAME = "taxi_airflow"

DEFAULT_ARGS = {
    "owner": "ml-platform",
    # One retry covers a transient failure (a busy disk, a killed worker); a data gate or a
    # blessing failure fails again and is reported, it is not retried into success.
    "retries": 1,
    "retry_delay": datetime.timedelta(minutes=5),
    "execution_timeout": datetime.timedelta(hours=2),
}


def env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name, str(default))
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def pipeline_config(environ: Mapping[str, str]) -> config_lib.PipelineConfig:
    """The pipeline's settings for Airflow from TAXI_* variables; raises ValueError naming them."""
    output_dir = pathlib.Path(environ.get("TAXI_OUTPUT_DIR", REPO_ROOT / "outputs" / "airflow"))
    serving_dir = pathlib.Path(environ.get("TAXI_SERVING_DIR", output_dir / "serving"))
    data_root = pathlib.Path(environ.get("TAXI_DATA_ROOT", REPO_ROOT / "data" / "taxi"))
    if not data_root.is_dir():
        raise ValueError(f"TAXI_DATA_ROOT {data_root} is not a folder of span-N/ folders")
    tune = environ.get("TAXI_TUNE", "1")
    if tune not in ("0", "1"):
        raise ValueError(f"TAXI_TUNE must be 0 or 1, got {tune!r}")
    return config_lib.PipelineConfig(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=str(output_dir / "pipeline_root"),
        data_root=str(data_root),
        serving_model_dir=str(serving_dir / "taxi"),
        metadata_path=str(output_dir / "metadata.sqlite"),
        schema_path=str(REPO_ROOT / "data" / "schema" / "schema.pbtxt"),
        module_fingerprint=config_lib.module_fingerprint(),
        anomaly_policy_json=(REPO_ROOT / "data" / "schema" / "anomaly_policy.json").read_text(),
        run_tuner=tune == "1",
        train_steps=env_int(environ, "TAXI_TRAIN_STEPS", 1000),
        tuner_trials=env_int(environ, "TAXI_TUNER_TRIALS", 3),
        tuner_train_steps=env_int(environ, "TAXI_TUNER_STEPS", 300),
    )


def dag_config(environ: Mapping[str, str]) -> dict[str, object]:
    """Arguments of airflow.models.DAG (TFX adds dag_id = the pipeline name)."""
    schedule = environ.get("TAXI_SCHEDULE", "@daily")
    return {
        "schedule": None if schedule.lower() == "none" else schedule,
        "start_date": datetime.datetime(2026, 1, 1),
        # A new span is ingested by the next run; replaying missed days would redo the same span.
        "catchup": False,
        # Runs share one MLMD database and serving directory: never two at once.
        "max_active_runs": 1,
        "dagrun_timeout": datetime.timedelta(hours=6),
        "default_args": DEFAULT_ARGS,
        "tags": ["tfx", "taxi"],
    }


DAG = AirflowDagRunner(AirflowPipelineConfig(airflow_dag_config=dag_config(os.environ))).run(
    pipeline_lib.create_pipeline(pipeline_config(os.environ))
)

"""Apache Airflow DAG: the taxi pipeline (the same `create_pipeline` factory) on Airflow 2.

One Airflow task per pipeline component, with the pipeline's dependencies, built by TFX's
AirflowDagRunner, and a last task that writes the run's HTML report. Point Airflow's dags_folder at this folder (or copy this file into yours);
the project must be installed in Airflow's Python environment (`make setup` does that in .venv).

Settings come from the environment, read once when Airflow parses this file
(tfx_pipeline/runners/airflow.py maps them onto PipelineConfig):
  TAXI_DATA_ROOT      folder of span-N/ CSV folders (default: data/taxi of this checkout)
  TAXI_OUTPUT_DIR     artifacts and MLMD (default: outputs/airflow of this checkout)
  TAXI_SERVING_DIR    TF Serving model root (default: $TAXI_OUTPUT_DIR/serving)
  TAXI_SCHEDULE       cron line or Airflow preset (default: @daily; "none" for manual runs only)
  TAXI_TUNE           1: search hyperparameters in every run; 0: reuse the latest (default: 1)
  TAXI_TRAIN_STEPS, TAXI_TUNER_TRIALS, TAXI_TUNER_STEPS   (defaults: PipelineConfig's)
"""

import os

# TFT, TFMA and Keras Tuner need Keras 2 (tf_keras); set before TensorFlow loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tfx.orchestration.airflow.airflow_dag_runner import (  # noqa: E402
    AirflowDagRunner,
    AirflowPipelineConfig,
)

from tfx_pipeline import pipeline as pipeline_lib  # noqa: E402
from tfx_pipeline.runners import airflow  # noqa: E402

CONFIG = airflow.pipeline_config(os.environ)
PIPELINE = pipeline_lib.create_pipeline(CONFIG)
DAG = AirflowDagRunner(
    AirflowPipelineConfig(airflow_dag_config=airflow.dag_config(os.environ))
).run(PIPELINE)
# After every component, failed or not (a teardown task: it never changes the run's state):
# <TAXI_OUTPUT_DIR>/reports/run-<time>.html.
airflow.add_report_task(DAG, PIPELINE, CONFIG)

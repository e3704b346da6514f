"""The Airflow runner's settings: TAXI_* environment variables mapped onto PipelineConfig and DAG args.

`airflow_dags/taxi_pipeline_dag.py` builds the DAG from these. A bad value raises ConfigProblems
naming every variable at fault, which Airflow shows as the DAG file's import error.
"""

import datetime
import pathlib
from collections.abc import Mapping
from typing import Any

from tfx_pipeline import config as config_lib
from tfx_pipeline import inputs, layout
from tfx_pipeline.problems import raise_if_any
from tfx_pipeline.runners import settings

PIPELINE_NAME = config_lib.AIRFLOW_PIPELINE_NAME
DEFAULT_OUTPUT_DIR = layout.DEFAULT_OUTPUT_DIR / "airflow"
DEFAULT_SCHEDULE = "@daily"

# Each TAXI_* whole-number variable and the PipelineConfig field (and default) it sets.
WHOLE_NUMBER_SETTINGS = {
    "TAXI_TRAIN_STEPS": "train_steps",
    "TAXI_TUNER_TRIALS": "tuner_trials",
    "TAXI_TUNER_STEPS": "tuner_train_steps",
}

DEFAULT_ARGS = {
    "owner": "ml-platform",
    # One retry covers a transient failure (a busy disk, a killed worker); a data gate or a
    # blessing failure fails again and is reported, it is not retried into success.
    "retries": 1,
    "retry_delay": datetime.timedelta(minutes=5),
    "execution_timeout": datetime.timedelta(hours=2),
}


def _whole_number(environ: Mapping[str, str], name: str, problems: list[str]) -> int:
    default = config_lib.default(WHOLE_NUMBER_SETTINGS[name])
    text = environ.get(name, str(default))
    try:
        value = int(text)
    except ValueError:
        problems.append(f"{name} must be a whole number, got {text!r}")
        return default
    if value < 1:
        problems.append(f"{name} must be at least 1, got {value}")
    return value


def pipeline_config(environ: Mapping[str, str]) -> config_lib.PipelineConfig:
    """The pipeline's settings from TAXI_* variables; raises ConfigProblems naming each bad one."""
    problems: list[str] = []
    output = layout.OutputLayout(pathlib.Path(environ.get("TAXI_OUTPUT_DIR", DEFAULT_OUTPUT_DIR)))
    serving_dir = pathlib.Path(environ.get("TAXI_SERVING_DIR", output.serving_dir))
    data_root = pathlib.Path(environ.get("TAXI_DATA_ROOT", layout.BUNDLED_DATA_ROOT))
    if not data_root.is_dir():
        problems.append(f"TAXI_DATA_ROOT {data_root} is not a folder of span-N/ folders")
    tune = environ.get("TAXI_TUNE", "1")
    if tune not in ("0", "1"):
        problems.append(f"TAXI_TUNE must be 0 or 1, got {tune!r}")
    steps = {
        field: _whole_number(environ, name, problems)
        for name, field in WHOLE_NUMBER_SETTINGS.items()
    }
    policy_json = settings.check_anomaly_policy(problems, layout.ANOMALY_POLICY)
    settings.collect(problems, lambda: inputs.read_schema(layout.CURATED_SCHEMA))
    blessing = settings.blessing_settings_from_env(environ, problems)
    raise_if_any(problems)
    return config_lib.PipelineConfig(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=str(output.pipeline_root),
        data_root=str(data_root),
        serving_model_dir=str(serving_dir / config_lib.MODEL_NAME),
        metadata_path=str(output.metadata_path),
        schema_path=str(layout.CURATED_SCHEMA),
        module_fingerprint=config_lib.module_fingerprint(),
        anomaly_policy_json=policy_json,
        run_tuner=tune == "1",
        **steps,
        **blessing,
    )


def dag_config(environ: Mapping[str, str]) -> dict[str, object]:
    """Arguments of airflow.models.DAG (TFX adds dag_id = the pipeline name)."""
    schedule = environ.get("TAXI_SCHEDULE", DEFAULT_SCHEDULE)
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


# The task that writes the run report: after every component, whether they succeeded or not.
REPORT_TASK_ID = "run_report"


def add_report_task(dag: Any, pipeline: Any, config: config_lib.PipelineConfig) -> None:
    """Adds the run-report task downstream of every component task, as a teardown task.

    A teardown runs once every upstream task is done, failed ones included, and Airflow leaves
    it out of the DAG run's state: a failed component still fails the run.
    """
    from airflow.operators.python import PythonOperator

    graph = {
        "nodes": [component.id for component in pipeline.components],
        "edges": [
            [upstream.id, component.id]
            for component in pipeline.components
            for upstream in component.upstream_nodes
        ],
    }
    component_tasks = list(dag.tasks)
    report = PythonOperator(
        task_id=REPORT_TASK_ID,
        python_callable=write_airflow_report,
        op_kwargs={
            "metadata_path": config.metadata_path,
            "pipeline_name": config.pipeline_name,
            "graph": graph,
        },
        retries=0,
        dag=dag,
    )
    report.as_teardown()
    report.set_upstream(component_tasks)


def write_airflow_report(
    metadata_path: str, pipeline_name: str, graph: dict, **context: Any
) -> str:
    """The report of this DAG run, from MLMD."""
    from tfx_pipeline import metadata
    from tfx_pipeline.reporting.run_report.build import write_report
    from tfx_pipeline.reporting.run_report.facts import PipelineGraph

    run_id = context["dag_run"].run_id
    store = metadata.open_store(metadata_path)
    # TFX's Airflow launcher names the run context <pipeline name>.<Airflow run id>.
    run = metadata.find_run(store, pipeline_name, f"{pipeline_name}.{run_id}")
    if run is None:
        print(f"No component of run {run_id} recorded anything in MLMD: no report.")
        return ""
    path = write_report(
        store,
        pathlib.Path(metadata_path).parent,
        pipeline_name,
        run,
        graph=PipelineGraph(tuple(graph["nodes"]), tuple(tuple(e) for e in graph["edges"])),
    )
    print(f"Report: {path}")
    return str(path)

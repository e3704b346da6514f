"""airflow_dags/: real Apache Airflow 2 loads the DAG, its graph is the pipeline's, bad settings are named.

Airflow runs in subprocesses with their own AIRFLOW_HOME and SQLite metadata database: importing
Airflow configures logging and settings process-wide, which must not leak into other tests.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import DATA_ROOT, REPO_ROOT
from tests.tfx_pipeline.test_pipeline import COMPONENT_IDS

DAGS_FOLDER = REPO_ROOT / "airflow_dags"
AIRFLOW = pathlib.Path(sys.executable).parent / "airflow"
DAG_ID = "taxi_airflow"

# Loads the DAG folder with Airflow's DagBag and prints what Airflow sees, as JSON.
DAGBAG_PROBE = """
import json, sys
from airflow.models import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
dag = bag.dags.get(sys.argv[2])
print(json.dumps({
    "import_errors": {str(k): v for k, v in bag.import_errors.items()},
    "dag_ids": sorted(bag.dags),
    "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks} if dag else {},
    "operators": sorted({type(t).__name__ for t in dag.tasks}) if dag else [],
    "retries": sorted({t.retries for t in dag.tasks if t.task_id != "run_report"}) if dag else [],
    "trigger_rules": {t.task_id: str(t.trigger_rule) for t in dag.tasks} if dag else {},
    "teardowns": sorted(t.task_id for t in dag.tasks if t.is_teardown) if dag else [],
    "schedule": str(dag.schedule_interval) if dag else None,
    "catchup": dag.catchup if dag else None,
    "max_active_runs": dag.max_active_runs if dag else None,
    "start_date": dag.start_date.isoformat() if dag else None,
}))
"""


def airflow_env(home: pathlib.Path, output_dir: pathlib.Path, **taxi) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TAXI_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_FOLDER),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        # TensorFlow and TFX take ~10 s to import on 2 cores; Airflow's default allows 30 s.
        AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="300",
        TAXI_OUTPUT_DIR=str(output_dir),
        **{f"TAXI_{key.upper()}": str(value) for key, value in taxi.items()},
    )
    return env


def run(command: list[str], env: dict[str, str], timeout: int = 600):
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("airflow")
    env = airflow_env(tmp_path / "home", tmp_path / "outputs", schedule="0 3 * * *")
    result = run([sys.executable, "-c", DAGBAG_PROBE, str(DAGS_FOLDER), DAG_ID], env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def pipeline_upstream() -> dict[str, list[str]]:
    """The pipeline's own DAG, from the factory with the Airflow runner's settings."""
    from tfx_pipeline import pipeline as pipeline_lib
    from tfx_pipeline.runners import airflow

    pipeline = pipeline_lib.create_pipeline(airflow.pipeline_config({}))
    return {node.id: sorted(up.id for up in node.upstream_nodes) for node in pipeline.components}


def test_airflow_loads_the_dag_without_import_errors(dagbag):
    assert dagbag["import_errors"] == {}
    assert dagbag["dag_ids"] == [DAG_ID]


def test_one_task_per_component_with_the_pipelines_dependencies(dagbag):
    from tfx_pipeline.runners.airflow import REPORT_TASK_ID

    upstream = dict(dagbag["upstream"])
    report_upstream = upstream.pop(REPORT_TASK_ID)
    assert set(upstream) == set(COMPONENT_IDS)
    assert upstream == pipeline_upstream()
    # The run report comes after every component, failed ones too, as a teardown: Airflow
    # leaves it out of the DAG run's state, so a failed component still fails the run.
    assert report_upstream == sorted(COMPONENT_IDS)
    assert dagbag["operators"] == ["AirflowComponent", "PythonOperator"]
    assert dagbag["trigger_rules"][REPORT_TASK_ID] == "all_done_setup_success"
    assert dagbag["teardowns"] == [REPORT_TASK_ID]


def test_schedule_and_default_args(dagbag):
    assert dagbag["schedule"] == "0 3 * * *"
    assert dagbag["catchup"] is False
    assert dagbag["max_active_runs"] == 1
    assert dagbag["retries"] == [1]
    assert dagbag["start_date"].startswith("2026-01-01")


def test_a_bad_setting_is_an_import_error_that_names_it(tmp_path):
    env = airflow_env(tmp_path / "home", tmp_path / "outputs", train_steps="many")
    result = run([sys.executable, "-c", DAGBAG_PROBE, str(DAGS_FOLDER), DAG_ID], env)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["dag_ids"] == []
    (error,) = report["import_errors"].values()
    assert "TAXI_TRAIN_STEPS must be a whole number, got 'many'" in error


def test_every_bad_setting_is_named_at_once():
    from tfx_pipeline.problems import ConfigProblems
    from tfx_pipeline.runners import airflow

    environ = {"TAXI_TRAIN_STEPS": "0", "TAXI_TUNE": "yes", "TAXI_DATA_ROOT": "/no/such/folder"}
    with pytest.raises(ConfigProblems) as error:
        airflow.pipeline_config(environ)
    assert error.value.problems == [
        "TAXI_DATA_ROOT /no/such/folder is not a folder of span-N/ folders",
        "TAXI_TUNE must be 0 or 1, got 'yes'",
        "TAXI_TRAIN_STEPS must be at least 1, got 0",
    ]


def test_defaults_are_the_pipeline_configs():
    from tfx_pipeline import config as config_lib
    from tfx_pipeline.runners import airflow

    config = airflow.pipeline_config({"TAXI_DATA_ROOT": str(DATA_ROOT)})
    for field in ("train_steps", "tuner_trials", "tuner_train_steps", "min_auc", "seed"):
        assert getattr(config, field) == config_lib.default(field), field
    assert config.pipeline_name == "taxi_airflow"


def test_blessing_settings_are_read_as_the_flags_are():
    from tfx_pipeline.problems import ConfigProblems
    from tfx_pipeline.runners import airflow

    config = airflow.pipeline_config(
        {
            "TAXI_DATA_ROOT": str(DATA_ROOT),
            "TAXI_MIN_AUC": "0.8",
            "TAXI_GATED_SLICE_FEATURES": "payment_type,trip_start_day",
            "TAXI_MIN_SLICE_AUC": "0.55",
            "TAXI_MAX_SLICE_AUC_GAPS": "payment_type:Credit Card:Cash:0.2;company:A:B:0.3",
        }
    )
    rules = config.blessing_rules()
    assert (rules.min_auc, rules.min_slice_auc) == (0.8, 0.55)
    assert rules.slice_features == ("payment_type", "trip_start_day")
    assert [gap.feature for gap in rules.slice_gaps] == ["payment_type", "company"]
    with pytest.raises(ConfigProblems) as error:
        airflow.pipeline_config(
            {
                "TAXI_DATA_ROOT": str(DATA_ROOT),
                "TAXI_MIN_SLICE_AUC": "high",
                "TAXI_MAX_SLICE_AUC_GAPS": "payment_type:Cash",
            }
        )
    assert [problem.split(":")[0] for problem in error.value.problems] == [
        "TAXI_MIN_SLICE_AUC",
        "TAXI_MAX_SLICE_AUC_GAPS",
    ]

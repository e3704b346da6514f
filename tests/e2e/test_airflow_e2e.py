"""The whole pipeline under `airflow dags test` (real Apache Airflow 2, SQLite, SequentialExecutor)."""

import pytest

from tests.conftest import write_sample_spans
from tests.e2e.test_e2e import SAMPLE_ROWS
from tests.tfx_pipeline.runners.test_airflow import AIRFLOW, DAG_ID, airflow_env, run
from tests.tfx_pipeline.test_pipeline import COMPONENT_IDS

pytestmark = pytest.mark.e2e


def test_airflow_runs_the_whole_pipeline_on_the_bundled_data(tmp_path):
    from tfx_pipeline.operations import history
    from tfx_pipeline.reporting import run_summary

    data_root = write_sample_spans(tmp_path / "data", SAMPLE_ROWS)
    output_dir = tmp_path / "outputs"
    env = airflow_env(
        tmp_path / "home",
        output_dir,
        data_root=data_root,
        schedule="none",
        train_steps=150,
        tuner_trials=1,
        tuner_steps=30,
    )
    run([str(AIRFLOW), "db", "migrate"], env)
    result = run([str(AIRFLOW), "dags", "test", DAG_ID, "2026-01-02"], env, timeout=900)
    assert "state=success" in result.stdout + result.stderr
    found = run_summary.summarize_run(str(output_dir / "metadata.sqlite"), DAG_ID)
    assert set(found.states) == set(COMPONENT_IDS)
    ran = {node: state for node, state in found.states.items() if "resolver" not in node}
    assert set(ran.values()) == {"COMPLETE"}, found.states
    assert found.blessed is True
    # The InfraValidator's model server runs as a child of the Airflow task.
    assert found.infra_blessed is True, found.infra
    assert found.spans and found.spans[0].startswith("span 2")
    (version,) = (output_dir / "serving" / "taxi").iterdir()
    assert (version / "saved_model.pb").is_file()
    assert (version / "assets.extra" / "tf_serving_warmup_requests").is_file()
    # Push history reads the legacy launcher's contexts too.
    (push,) = history.pushes(str(output_dir / "metadata.sqlite"), DAG_ID)
    assert (str(push.version), push.blessed, push.on_disk) == (version.name, True, "SERVED")
    # The last task wrote the run's report.
    (report,) = (output_dir / "reports").glob("run-*.html")
    page = report.read_text()
    assert found.run_id in page and 'id="lineage"' in page

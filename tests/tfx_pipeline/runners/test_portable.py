"""--beam-runner portable: code that works only in-process fails on its SDK workers; bad flag combinations are refused.

The worker test runs a user's pipeline file (user_pipeline.py) as `__main__`, as a user runs
theirs: each case on the DirectRunner in-process, where all of them work, then through a real
worker pool, where only the code the project's wheel ships, free of the driver's state, works;
and a worker killed in its job fails the job instead of leaving it waiting.
"""

import json
import pathlib
import re
import shutil
import subprocess
import sys
import threading

import pytest

import local_runner
from tests.conftest import DATA_ROOT, REPO_ROOT
from tfx_pipeline import node_ids
from tfx_pipeline.problems import EXIT_USAGE, ConfigProblems
from tfx_pipeline.runners import local, portable

USER_PIPELINE = pathlib.Path(__file__).with_name("user_pipeline.py")


def test_beam_components_names_every_beam_based_component(config):
    from tfx.dsl.components.base.base_beam_component import BaseBeamComponent

    from tfx_pipeline import pipeline as pipeline_lib

    components = pipeline_lib.create_pipeline(config).components
    beam_based = {c.id for c in components if isinstance(c, BaseBeamComponent)}
    assert beam_based == set(node_ids.BEAM_COMPONENTS)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """What each case of user_pipeline.py did on each runner."""
    folder = tmp_path_factory.mktemp("user_pipeline")
    shutil.copy(USER_PIPELINE, folder / "user_pipeline.py")
    (folder / "helpers.py").write_text("def double(value):\n    return 2 * value\n")
    (folder / "note.txt").write_text("beside the driver\n")
    result = subprocess.run(
        [sys.executable, "user_pipeline.py", str(folder)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    found["started_workers"] = portable.started_workers(folder / "beam-workers.log")
    found["driver_folder"] = str(folder)
    return found


def test_every_case_works_in_process(outcomes):
    direct = {case: outcomes[case]["direct"] for case in ("helper_module", "main_global")}
    assert direct == {
        "helper_module": {"ok": True, "output": "2"},
        "main_global": {"ok": True, "output": "3"},
    }
    seen = json.loads(outcomes["surroundings"]["direct"]["output"])
    assert seen["package"] == str(REPO_ROOT / "tfx_pipeline" / "__init__.py")
    assert seen["cwd"] == outcomes["driver_folder"]
    assert seen["note_readable"] and seen["driver_variable"] == "yes"


def test_workers_have_the_projects_wheel_and_none_of_the_drivers_state(outcomes):
    portable_run = outcomes["surroundings"]["portable"]
    assert portable_run["ok"], portable_run
    seen = json.loads(portable_run["output"])
    # The project comes from the wheel installed for the workers, not from this checkout.
    assert "site-packages" in seen["package"]
    assert not seen["package"].startswith(str(REPO_ROOT)), seen
    assert seen["cwd"] != outcomes["driver_folder"]
    assert not seen["note_readable"] and seen["driver_variable"] is None
    assert outcomes["started_workers"] == 4, "one SDK worker process per job"


def test_code_the_wheel_does_not_ship_fails_naming_the_module(outcomes):
    assert outcomes["helper_module"]["portable"] == {
        "ok": False,
        "error": "ModuleNotFoundError: No module named 'helpers'",
    }


def test_a_global_of_the_drivers_main_module_is_not_defined_on_a_worker(outcomes):
    failed = outcomes["main_global"]["portable"]
    assert not failed["ok"]
    assert failed["error"].startswith("NameError: name 'FACTOR' is not defined"), failed


def test_a_worker_that_dies_in_its_job_fails_the_job_instead_of_hanging_it(outcomes):
    failed = outcomes["worker_dies"]["portable"]
    assert not failed["ok"]
    assert re.match(
        r"WorkerPoolError: SDK worker \d+ \(pid \d+\) exited with status -9 before its job "
        r"ended; the pool's log: ",
        failed["error"],
    ), failed


def test_the_pools_news_of_a_dead_worker_is_waited_for_and_told_once(tmp_path):
    # Beam sometimes fails the dead worker's job by itself (the closed channel) before the pool,
    # checking every half second, has written its news: the driver waits for it.
    workers = portable.WorkerPoolProcess(tmp_path / "pool.log")
    workers._folder = tmp_path
    assert workers.failure() is None
    news = "SDK worker 3 (pid 9) exited with status -9 before its job ended"
    threading.Timer(0.3, (tmp_path / portable.WORKER_FAILED_FILE).write_text, [news]).start()
    died = workers.failure(wait_seconds=5)
    assert str(died) == f"{news}; the pool's log: {tmp_path / 'pool.log'}"
    assert workers.failure() is None, "a later job's failure is its own"


def test_worker_error_is_the_last_exception_of_the_traceback():
    text = (
        "Error processing instruction bundle_2. Original traceback is\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "    raise ValueError(message)\n"
        "ValueError: cannot parse CSV file a.csv: column fare is FLOAT but line 11 has 'x'\n"
    )
    assert portable.worker_error(text) == (
        "ValueError: cannot parse CSV file a.csv: column fare is FLOAT but line 11 has 'x'"
    )
    assert portable.worker_error("Pipeline job-1 failed in state FAILED: ValueError: x") is None


def test_the_wheel_is_built_from_what_pyproject_declares():
    names = {path.name for path in portable.project_sources()}
    assert names == {
        "pyproject.toml",
        "README.md",
        "models",
        "serving",
        "tfx_pipeline",
        "local_runner.py",
        "vertex_runner.py",
    }


def test_an_installed_copy_without_pyproject_is_refused(tmp_path):
    with pytest.raises(ConfigProblems, match="has no pyproject.toml"):
        portable.check_source_checkout(tmp_path)


def parse(*argv):
    return local.build_parser(description="").parse_args(list(argv))


def test_portable_beam_args_run_every_component_through_the_pool():
    pool = portable.WorkerPool(
        address="localhost:5",
        wheel=pathlib.Path("/w/p.whl"),
        log_path=pathlib.Path("l"),
        pid=1,
    )
    args = parse("--beam-runner", "portable", "--beam-workers", "2", "--beam-arg=--foo=1")
    assert local.beam_args(args, pool) == (
        "--runner=PortableRunner",
        "--job_endpoint=embed",
        "--environment_type=EXTERNAL",
        "--environment_config=localhost:5",
        "--direct_num_workers=2",
        "--extra_package=/w/p.whl",
        "--experiments=disable_logging_submission_environment",
        "--foo=1",
    )
    assert local.describe_beam(args, pool).startswith("PortableRunner, SDK worker processes")
    assert (
        local.describe_beam(parse(), None)
        == "DirectRunner in this process (in_memory, 1 worker(s))"
    )


def test_direct_runner_flags_with_portable_are_refused_together(capsys, tmp_path):
    output_dir = tmp_path / "outputs"
    code = local_runner.main(
        [
            "--data-root",
            str(DATA_ROOT),
            "--output-dir",
            str(output_dir),
            "--beam-runner",
            "portable",
            "--beam-mode",
            "multi_processing",
            "--beam-arg=--runner=DirectRunner",
        ]
    )
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "--beam-mode sets the DirectRunner's mode and does not apply with --beam-runner " in err
    assert "--beam-arg=--runner=DirectRunner conflicts with --beam-runner portable" in err
    assert not output_dir.exists(), "nothing may be written for a rejected run"

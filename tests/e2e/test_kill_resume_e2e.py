"""A run killed with SIGKILL during training leaves serving untouched; the next run finishes it.

The second run must reuse every component the killed run finished (from MLMD's cache) and push
exactly one complete version.
"""

import os
import re
import signal
import subprocess
import time

import pytest

from tests.conftest import write_sample_spans
from tests.e2e.test_e2e import (
    FAST_FLAGS,
    SAMPLE_ROWS,
    latest_run_states,
    run_pipeline,
    runner_command,
    runner_env,
    versions,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def workspace(tmp_path):
    write_sample_spans(tmp_path / "data", SAMPLE_ROWS)
    return tmp_path


def test_sigkill_during_training_then_rerun(workspace):
    command = runner_command(workspace, *FAST_FLAGS, "--train-steps", "20000", "--min-auc", "0.6")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=runner_env(),
        start_new_session=True,
    )  # fmt: skip
    seen = []
    for line in process.stdout:
        seen.append(line)
        if re.search(r"\] Tuner\s+ran", line):
            time.sleep(3)  # well inside the 20,000-step Trainer
            os.killpg(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(seen)
    assert versions(workspace) == []

    result = run_pipeline(workspace, "--min-auc", "0.6")
    assert result.returncode == 0, result.stdout + result.stderr
    states = latest_run_states(workspace)
    for node in ("CsvExampleGen", "StatisticsGen", "Transform"):
        assert states[node] == "CACHED", (node, states[node])
    assert states["Trainer"] == "COMPLETE" and states["Pusher"] == "COMPLETE"
    (version,) = versions(workspace)
    assert (workspace / "outputs" / "serving" / "taxi" / version / "saved_model.pb").exists()

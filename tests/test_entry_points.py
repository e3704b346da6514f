"""Every command a person is told to run answers `--help` with its usage and what it is for."""

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

# (command line after `python`, a phrase its help must contain)
COMMANDS = [
    (["local_runner.py"], "exit status"),
    (["vertex_runner.py"], "exit status"),
    (["-m", "tfx_pipeline.monitor"], "exit status"),
    (["-m", "tfx_pipeline.history"], "pushed version"),
    (["-m", "tfx_pipeline.report"], "--latest"),
    (["-m", "tfx_pipeline.runs"], "--compare"),
    (["-m", "tfx_pipeline.explain"], "came from cache"),
    (["-m", "serving"], "--rest_api_port"),
    (["-m", "serving.rollback"], "--reason"),
    (["-m", "serving.tf_serving"], "--serving_dir"),
    (["bench/pipeline_bench.py"], "usage:"),
    (["bench/serving_bench.py"], "usage:"),
    (["bench/scale_bench.py"], "usage:"),
    (["bench/template_bench.py"], "usage:"),
    (["bench/portable_bench.py"], "--pairs"),
    (["bench/infra_latency_false_alarms.py"], "usage:"),
    (["bench/generate_spans.py"], "--rows"),
    (["data/split_taxi_spans.py"], "usage:"),
]


@pytest.mark.parametrize(("command", "phrase"), COMMANDS, ids=[" ".join(c) for c, _ in COMMANDS])
def test_help_explains_the_command(command, phrase):
    result = subprocess.run(
        [sys.executable, *command, "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    assert text.startswith("usage:"), text[:200]
    assert phrase in text
    # A description below the usage line, not just the flags.
    description = text.split("\n\n")[1]
    assert not description.lstrip().startswith(("options:", "-")), description

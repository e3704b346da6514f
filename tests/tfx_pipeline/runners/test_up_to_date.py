"""The up-to-date check: an unchanged rerun prints the last run's summary, anything changed runs.

Each kind of change a run could read (flags, a named file's content, data, code, packages,
environment, MLMD, the served models) must make the next run go through TFX; a record that is
missing, damaged or from a failed run must too. The skip itself loads no TensorFlow.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.conftest import DATA_ROOT, REPO_ROOT
from tfx_pipeline import layout
from tfx_pipeline.runners import local, up_to_date
from tfx_pipeline.runners.exit_codes import EXIT_OK

SCRIPT = REPO_ROOT / "local_runner.py"
SUMMARY = ["Summary (run took 9 s)", "Blessed:         yes, every threshold passed"]


@pytest.fixture
def workspace(tmp_path):
    shutil.copytree(DATA_ROOT / "span-1", tmp_path / "data" / "span-1")
    shutil.copy(REPO_ROOT / "data" / "schema" / "schema.pbtxt", tmp_path / "schema.pbtxt")
    (tmp_path / "outputs" / "serving" / "taxi" / "1").mkdir(parents=True)
    (tmp_path / "outputs" / "serving" / "taxi" / "1" / "saved_model.pb").write_bytes(b"model")
    (tmp_path / "outputs" / "metadata.sqlite").write_bytes(b"mlmd")
    return tmp_path


def argv(workspace, *extra):
    return [
        "--data-root",
        str(workspace / "data"),
        "--output-dir",
        str(workspace / "outputs"),
        "--schema",
        str(workspace / "schema.pbtxt"),
        *extra,
    ]


def parse(*args):
    return local.build_parser(description="").parse_args(list(args))


def record_run(args, script=SCRIPT, exit_code=EXIT_OK):
    """What a successful run with `args` leaves: its inputs, the state now, its summary."""
    output = layout.OutputLayout(args.output_dir.resolve())
    up_to_date.write_record(
        output,
        up_to_date.Record(
            inputs=local.run_inputs(args, script),
            state=up_to_date.state_fingerprint(output, local.model_dir(args)),
            started="2026-12-02T07:30:12",
            exit_code=exit_code,
            summary=SUMMARY,
        ),
    )


def skipped(args, script=SCRIPT):
    return local.unchanged_since(args, local.run_inputs(args, script)) is not None


def test_an_unchanged_rerun_is_up_to_date(workspace):
    args = parse(*argv(workspace))
    record_run(args)
    assert skipped(args)
    assert skipped(parse(*argv(workspace, "--rerun"))) is False, "--rerun runs anyway"
    assert skipped(parse(*argv(workspace, "--no-cache"))) is False, "--no-cache reruns all"


def test_rerun_is_not_part_of_what_a_run_reads(workspace):
    record_run(parse(*argv(workspace, "--rerun")))
    assert skipped(parse(*argv(workspace)))


def _touch(path: pathlib.Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


CHANGES = {
    "a flag": lambda ws, env: ["--train-steps", "7"],
    "a data file touched": lambda ws, env: _touch(ws / "data" / "span-1" / "data.csv"),
    "a new span": lambda ws, env: shutil.copytree(ws / "data" / "span-1", ws / "data" / "span-2"),
    "the schema's content, same path and size": lambda ws, env: (ws / "schema.pbtxt").write_text(
        (ws / "schema.pbtxt").read_text().replace("INT", "XYZ", 1)
    ),
    "the runner script": lambda ws, env: (ws / "runner.py").write_text("# edited\n"),
    "a TensorFlow variable": lambda ws, env: env.setenv("TF_DETERMINISTIC_OPS", "1"),
    "an installed package": lambda ws, env: env.setattr(
        up_to_date, "installed_packages", lambda: ["numpy-2.0.0.dist-info"]
    ),
    "MLMD written": lambda ws, env: (ws / "outputs" / "metadata.sqlite").write_bytes(b"mlmd+"),
    "MLMD mid-transaction": lambda ws, env: (ws / "outputs" / "metadata.sqlite-journal").touch(),
    "a version pushed": lambda ws, env: (
        (ws / "outputs" / "serving" / "taxi" / "2").mkdir()
        or (ws / "outputs" / "serving" / "taxi" / "2" / "saved_model.pb").write_bytes(b"m")
    ),
    "a version rolled back": lambda ws, env: shutil.rmtree(ws / "outputs" / "serving" / "taxi"),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_any_change_runs_the_pipeline(workspace, monkeypatch, change):
    monkeypatch.delenv("TF_DETERMINISTIC_OPS", raising=False)
    script = workspace / "runner.py"
    script.write_text("# the runner\n")
    args = parse(*argv(workspace))
    record_run(args, script=script)
    assert skipped(args, script=script)
    flags = CHANGES[change](workspace, monkeypatch)  # a list: flags the next run adds
    flags = flags if isinstance(flags, list) else []
    assert not skipped(parse(*argv(workspace, *flags)), script=script), change


def test_changes_name_the_parts_that_differ(workspace, monkeypatch):
    args = parse(*argv(workspace))
    record_run(args)
    output = layout.OutputLayout(args.output_dir.resolve())
    record = up_to_date.read_record(output)
    (workspace / "outputs" / "metadata.sqlite").write_bytes(b"mlmd, another run")
    _touch(workspace / "data" / "span-1" / "data.csv")
    inputs = local.run_inputs(args, SCRIPT)
    state = up_to_date.state_fingerprint(output, workspace / "outputs" / "serving" / "taxi")
    assert up_to_date.changes(record, inputs, state) == ["data", "metadata"]
    assert up_to_date.changes(None, inputs, state) == list(up_to_date.PART_NAMES)


@pytest.mark.parametrize(
    "content",
    ["", "{not json", "[]", json.dumps({"version": 99}), json.dumps({"version": 1, "inputs": {}})],
    ids=["empty", "not json", "a list", "another version", "fields missing"],
)
def test_a_damaged_record_means_a_run(workspace, content):
    args = parse(*argv(workspace))
    record_run(args)
    (workspace / "outputs" / up_to_date.RECORD_FILE).write_text(content)
    assert up_to_date.read_record(layout.OutputLayout(workspace / "outputs")) is None
    assert not skipped(args)


def test_forget_removes_the_record_and_a_missing_one_is_fine(workspace):
    args = parse(*argv(workspace))
    record_run(args)
    output = layout.OutputLayout(workspace / "outputs")
    up_to_date.forget(output)
    up_to_date.forget(output)
    assert not skipped(args)
    assert [p.name for p in output.root.iterdir() if p.name.startswith(".last-run")] == []


def test_the_message_names_the_run_and_repeats_its_summary(workspace):
    args = parse(*argv(workspace))
    record_run(args)
    lines = up_to_date.describe(up_to_date.read_record(layout.OutputLayout(workspace / "outputs")))
    assert lines[0].startswith(
        "Up to date: nothing changed since the run started 2026-12-02 07:30:12"
    )
    assert "--rerun runs the pipeline anyway" in " ".join(lines)
    assert all(len(line) <= up_to_date.LINE_WIDTH for line in lines[: -len(SUMMARY)])
    assert lines[-len(SUMMARY) :] == SUMMARY


def test_an_up_to_date_run_exits_with_the_runs_status_and_loads_no_tensorflow(workspace):
    """local_runner.py as a user runs it, in its own interpreter: nothing heavy is imported."""
    args = parse(*argv(workspace))
    record_run(args, exit_code=EXIT_OK)
    code = (
        "import sys, local_runner\n"
        f"status = local_runner.main({argv(workspace)!r})\n"
        "heavy = sorted(m for m in ('tensorflow', 'tfx', 'apache_beam') if m in sys.modules)\n"
        "print('heavy:', heavy, 'status:', status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Up to date: nothing changed since the run started" in result.stdout
    assert "\n".join(SUMMARY) in result.stdout
    assert result.stdout.strip().endswith("heavy: [] status: 0"), result.stdout
    # Nothing was written: no log, no report, the record as it was.
    assert not (workspace / "outputs" / "logs").exists()


def test_watch_runs_go_through_the_pipeline(workspace, monkeypatch):
    """An alert reruns on unchanged data: the watch loop's runs pass --rerun."""
    from tfx_pipeline.operations import watch as watch_lib

    seen = []
    monkeypatch.setattr(watch_lib, "watch", lambda settings: seen.append(settings) or 0)
    args = parse(*argv(workspace, "--watch", "--max-runs", "1"))
    local.watch(args, argv(workspace, "--watch", "--max-runs", "1"), SCRIPT)
    assert seen[0].argv == [*argv(workspace), "--rerun"]


def test_symlinked_spans_are_followed_and_a_link_loop_ends(workspace):
    """A span folder that links elsewhere is read by ExampleGen: a change there must count."""
    elsewhere = workspace / "elsewhere" / "span-2"
    shutil.copytree(DATA_ROOT / "span-1", elsewhere)
    (workspace / "data" / "span-2").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "loop").symlink_to(elsewhere, target_is_directory=True)
    args = parse(*argv(workspace))
    record_run(args)
    assert skipped(args)
    _touch(elsewhere / "data.csv")
    assert not skipped(args)

"""Shared by the benchmarks: run a process tree measuring wall time and summed RSS, read MLMD."""

import logging
import os
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping

import psutil

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def machine() -> dict[str, object]:
    """What a result was measured on, recorded next to it."""
    return {
        "cpus": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "python": platform.python_version(),
    }


def load_average() -> float:
    """The 1-minute load average: other work on a shared machine skews every timing."""
    return round(os.getloadavg()[0], 2)


def measure(
    command: list[str],
    poll_seconds: float = 0.1,
    env: Mapping[str, str] | None = None,
    cwd: pathlib.Path | None = None,
) -> dict[str, object]:
    """Runs `command`, sampling the RSS of its whole process tree; returns wall, peak and exit.

    The peak is the largest sum of RSS over the process and all its children (Beam workers
    included) seen in one sample; the 1-minute load average is recorded before and after.
    `rss_timeline` holds (Unix time, GB) samples, at most one a second, to attribute memory to
    the component running at the time. `env` adds to (or overrides) this process's environment
    for the command; `cwd` is the folder it starts in (default: this process's).
    """
    load_before = load_average()
    # Output goes to a file, not a pipe: a chatty child must never block on a full pipe buffer.
    with tempfile.TemporaryFile(mode="w+") as output:
        started = time.monotonic()
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **env} if env else None,
            cwd=cwd,
        )
        root = psutil.Process(process.pid)
        peak = 0
        timeline: list[tuple[float, float]] = []
        second_peak, second = 0, int(time.time())
        while process.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in tree if p.is_running())
            except psutil.Error:
                rss = 0  # a child exited between listing and reading; the next sample catches up
            peak = max(peak, rss)
            if int(time.time()) != second:
                timeline.append((second, round(second_peak / 1e9, 3)))
                second_peak, second = 0, int(time.time())
            second_peak = max(second_peak, rss)
            time.sleep(poll_seconds)
        wall = time.monotonic() - started
        output.seek(0)
        console = output.read()
    return {
        "wall_s": round(wall, 2),
        "peak_rss_gb": round(peak / 1e9, 3),
        "report_s": report_seconds(console),
        "exit_status": process.returncode,
        "load_1m_before": load_before,
        "load_1m_after": load_average(),
        "console": console,
        "rss_timeline": timeline,
    }


def runner_command(
    data_root: pathlib.Path, output_dir: pathlib.Path, flags: list[str]
) -> list[str]:
    """local_runner.py as a user runs it: a fresh process on `data_root`, into `output_dir`."""
    return [
        sys.executable,
        str(REPO_ROOT / "local_runner.py"),
        "--data-root",
        str(data_root),
        "--output-dir",
        str(output_dir),
        *flags,
    ]


def report_seconds(console: str) -> float | None:
    """How long the run took to write its HTML report, as the runner's "Report:" line says."""
    found = re.search(r"^Report: .* \((\d+(?:\.\d+)?) s\)$", console, re.MULTILINE)
    return float(found.group(1)) if found else None


def quiet_tensorflow() -> None:
    """TensorFlow's own start-up and Python warnings off in this process (children inherit the level)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)  # google-api-core's Python notice


def eval_auc(output_dir: pathlib.Path, pipeline_name: str = "taxi") -> float | None:
    """The candidate's overall AUC of the latest run, read from MLMD and the Evaluator's output."""
    quiet_tensorflow()
    from tfx_pipeline.reporting import run_summary

    run = run_summary.summarize_run(str(output_dir / "metadata.sqlite"), pipeline_name)
    if run is None or run.evaluation is None:
        return None
    auc = next((row.candidate for row in run.evaluation.metrics if row.name == "AUC"), None)
    return round(auc.value, 4) if auc is not None else None


def component_peaks(
    windows: dict[str, tuple[float, float]], timeline: list[tuple[float, float]]
) -> dict[str, float]:
    """Peak GB of the process tree while each component ran (its MLMD start to end, inclusive)."""
    peaks = {}
    for node, (start, end) in windows.items():
        inside = [gb for second, gb in timeline if int(start) <= second <= end]
        if inside:
            peaks[node] = max(inside)
    return peaks


def component_figures(
    metadata_path: pathlib.Path, pipeline_name: str, timeline: list[tuple[float, float]]
) -> dict[str, dict[str, float]]:
    """Seconds and peak GB of every node of the latest run: its MLMD window, the RSS timeline."""
    from tfx_pipeline import metadata

    windows = metadata.latest_run_windows(str(metadata_path), pipeline_name)
    return {
        "components_s": {node: round(end - start, 1) for node, (start, end) in windows.items()},
        "components_peak_rss_gb": component_peaks(windows, timeline),
    }


def answered_up_to_date(console: str) -> bool:
    """Whether local_runner.py found nothing changed and repeated the last run's summary."""
    from tfx_pipeline.runners import up_to_date

    return up_to_date.HEADLINE in console

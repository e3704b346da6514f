"""Scale benchmark: the whole pipeline run cold at growing row counts, time and memory per size.

For every size a fresh span of that many rows is generated (bench/generate_spans.py) and
`local_runner.py` runs on it as a new process with an empty output folder, as a user would.
Recorded per size: wall time, peak RSS summed over the whole process tree (Beam workers
included), the 1-minute load average, per-component wall time from MLMD, exit status and AUC.
Writes JSON and, when matplotlib is installed, a PNG of time and memory against rows.

    .venv/bin/python bench/scale_bench.py                         # 15k, 100k, 1M rows
    .venv/bin/python bench/scale_bench.py --sizes 100000 -- --beam-mode multi_processing
    .venv/bin/python bench/scale_bench.py --incremental 10x100000  # + one span on a 1M history

Flags after `--` go to local_runner.py unchanged.
"""

import argparse
import json
import pathlib
import shutil
import statistics
import sys
import tempfile

import generate_spans
from runs import (
    REPO_ROOT,
    component_figures,
    eval_auc,
    load_average,
    machine,
    measure,
    runner_command,
)

DEFAULT_SIZES = (15_000, 100_000, 1_000_000)
TARGETS = {
    "wall_s_at_1m": 250.0,
    "peak_rss_gb_at_1m": 2.5,
    "new_span_fraction_of_cold_1m": 0.3,
}


def rows_list_arg(text: str) -> list[int]:
    """--sizes: comma-separated row counts."""
    return [rows_arg(part) for part in text.split(",")]


def generated_data(workspace: pathlib.Path, rows: int, seed: int) -> pathlib.Path:
    """<workspace>/data-<rows>: one span of `rows` generated rows, made once and then reused."""
    data_root = workspace / f"data-{rows}"
    if not data_root.exists():
        generate_spans.generate(data_root, rows, seed=seed)
    return data_root


def rows_arg(text: str) -> int:
    try:
        value = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a row count, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"a row count must be at least 1, got {value}")
    return value


def incremental_arg(text: str) -> tuple[int, int]:
    """'10x100000' -> (10 spans, 100000 rows each)."""
    spans, _, rows = text.partition("x")
    try:
        parsed = (int(spans), int(float(rows)))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected SPANSxROWS such as 10x100000, got {text!r}"
        ) from None
    if min(parsed) < 1:
        raise argparse.ArgumentTypeError(f"spans and rows must be at least 1, got {text!r}")
    return parsed


def run_measured(
    data_root: pathlib.Path, output_dir: pathlib.Path, flags: list[str]
) -> dict[str, object]:
    """One runner process, measured; adds AUC and per-component seconds from MLMD."""
    result = measure(runner_command(data_root, output_dir, flags))
    console = result.pop("console")
    timeline = result.pop("rss_timeline")
    if result["exit_status"] != 0:
        print(console, flush=True)
    result["eval_auc"] = eval_auc(output_dir)
    result.update(component_figures(output_dir / "metadata.sqlite", "taxi", timeline))
    return result


def cold_runs(
    workspace: pathlib.Path, sizes: list[int], seed: int, flags: list[str]
) -> dict[str, dict]:
    results = {}
    for rows in sizes:
        data_root = generated_data(workspace, rows, seed)
        output_dir = workspace / f"outputs-{rows}"
        shutil.rmtree(output_dir, ignore_errors=True)
        print(f"cold run at {rows} rows (load {load_average()}) ...", flush=True)
        result = run_measured(data_root, output_dir, flags)
        result["rows"] = rows
        results[str(rows)] = result
        print_result(f"{rows} rows", result)
    return results


def incremental_run(
    workspace: pathlib.Path, spans: int, rows: int, seed: int, flags: list[str], repeats: int
) -> dict[str, object]:
    """Builds a history of `spans` spans run one after another, then times one more span.

    The new span runs `repeats` times, each from the same history (a copy of its MLMD store and
    serving folder; MLMD points at the history's artifacts, which nothing writes to), and the
    median run is reported: on a shared machine one run can be 10-15% off.
    """
    data_root = workspace / f"rolling-{spans}x{rows}"
    output_dir = workspace / f"rolling-outputs-{spans}x{rows}"
    shutil.rmtree(data_root, ignore_errors=True)
    shutil.rmtree(output_dir, ignore_errors=True)
    history = []
    for span in range(1, spans + 1):
        generate_spans.generate(data_root, rows, first_span=span, seed=seed)
        print(f"history: span {span} of {spans} ({rows} rows) ...", flush=True)
        result = run_measured(data_root, output_dir, flags)
        print_result(f"span {span}", result)
        history.append(result)
    generate_spans.generate(data_root, rows, first_span=spans + 1, seed=seed)
    runs = []
    for attempt in range(1, repeats + 1):
        attempt_dir = workspace / f"{output_dir.name}-new-span-{attempt}"
        shutil.rmtree(attempt_dir, ignore_errors=True)
        attempt_dir.mkdir(parents=True)
        shutil.copy2(output_dir / "metadata.sqlite", attempt_dir / "metadata.sqlite")
        shutil.copytree(output_dir / "serving", attempt_dir / "serving")
        print(
            f"new span {spans + 1} on a {spans * rows}-row history "
            f"(run {attempt} of {repeats}) ...",
            flush=True,
        )
        result = run_measured(data_root, attempt_dir, flags)
        print_result("new span", result)
        runs.append(result)
    median_wall = statistics.median_low(run["wall_s"] for run in runs)
    return {
        "history_spans": spans,
        "rows_per_span": rows,
        "history": history,
        "new_span": next(run for run in runs if run["wall_s"] == median_wall),
        "new_span_walls_s": [run["wall_s"] for run in runs],
    }


def print_result(label: str, result: dict) -> None:
    parts = sorted(result["components_s"].items(), key=lambda item: -item[1])[:4]
    biggest = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in parts)
    print(
        f"  {label:<12} wall {result['wall_s']:7.1f} s   peak RSS {result['peak_rss_gb']:.2f} GB   "
        f"AUC {result['eval_auc']}   report {result.get('report_s')} s   "
        f"exit {result['exit_status']}   "
        f"load {result['load_1m_before']}->{result['load_1m_after']}\n"
        f"               biggest: {biggest}",
        flush=True,
    )


def per_row_costs(cold: dict[str, dict]) -> list[dict[str, float]]:
    """Marginal seconds and bytes per extra row between consecutive sizes."""
    ordered = sorted(cold.values(), key=lambda r: r["rows"])
    costs = []
    for small, large in zip(ordered, ordered[1:], strict=False):
        extra_rows = large["rows"] - small["rows"]
        costs.append(
            {
                "from_rows": small["rows"],
                "to_rows": large["rows"],
                "ms_per_1k_rows": round(1e6 * (large["wall_s"] - small["wall_s"]) / extra_rows, 2),
                "mb_per_100k_rows": round(
                    1e5 * 1e3 * (large["peak_rss_gb"] - small["peak_rss_gb"]) / extra_rows, 1
                ),
            }
        )
    return costs


def plot(report: dict, path: pathlib.Path) -> bool:
    """Time and peak memory against rows; False without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")  # files only; no display on a build machine
    from matplotlib import pyplot

    cold = sorted(report["cold"].values(), key=lambda r: r["rows"])
    rows = [r["rows"] for r in cold]
    figure, (time_axis, memory_axis) = pyplot.subplots(1, 2, figsize=(11, 4.2))
    time_axis.plot(rows, [r["wall_s"] for r in cold], "o-", label="this pipeline (Tuner on)")
    time_axis.axhline(TARGETS["wall_s_at_1m"], color="grey", linestyle=":", label="target at 1M")
    memory_axis.plot(rows, [r["peak_rss_gb"] for r in cold], "o-", label="this pipeline")
    memory_axis.axhline(
        TARGETS["peak_rss_gb_at_1m"], color="grey", linestyle=":", label="target at 1M"
    )
    for axis, label in (
        (time_axis, "wall time, cold (s)"),
        (memory_axis, "peak RSS, all processes (GB)"),
    ):
        axis.set_xscale("log")
        axis.set_xlabel("rows in the span")
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(f"Cold pipeline runs, {report['machine']['cpus']} cores")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=rows_list_arg,
        default=list(DEFAULT_SIZES),
        help="comma-separated row counts of the cold runs (default: 15000,100000,1000000)",
    )
    parser.add_argument(
        "--incremental",
        type=incremental_arg,
        default=None,
        metavar="SPANSxROWS",
        help="also build a history of SPANS spans of ROWS rows, one run each, and time one more "
        "span of ROWS rows (e.g. 10x100000); skipped by default, it takes SPANS+1 runs",
    )
    parser.add_argument(
        "--new-span-repeats",
        type=int,
        default=3,
        metavar="N",
        help="with --incremental: run the new span N times from the same history and report "
        "the median (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="data generator seed")
    parser.add_argument(
        "--workspace",
        type=pathlib.Path,
        default=None,
        help="where data and outputs go, kept for inspection (default: a new temporary folder, "
        "removed afterwards); generated data found here is reused",
    )
    parser.add_argument(
        "--out", type=pathlib.Path, default=REPO_ROOT / "bench" / "results" / "scale.json"
    )
    parser.add_argument("--no-cold", action="store_true", help="only the incremental scenario")
    args, runner_flags = parser.parse_known_args()
    if args.new_span_repeats < 1:
        parser.error(f"--new-span-repeats must be at least 1, got {args.new_span_repeats}")
    runner_flags = [flag for flag in runner_flags if flag != "--"]

    workspace = args.workspace or pathlib.Path(tempfile.mkdtemp(prefix="scale-bench-"))
    workspace.mkdir(parents=True, exist_ok=True)
    report: dict[str, object] = {
        "machine": machine(),
        "runner_flags": runner_flags,
        "targets": TARGETS,
        "cold": {},
    }
    try:
        if not args.no_cold:
            report["cold"] = cold_runs(workspace, args.sizes, args.seed, runner_flags)
            report["per_row_costs"] = per_row_costs(report["cold"])
        if args.incremental:
            spans, rows = args.incremental
            report["incremental"] = incremental = incremental_run(
                workspace, spans, rows, args.seed, runner_flags, args.new_span_repeats
            )
            cold_1m = report["cold"].get(str(1_000_000))
            if cold_1m and cold_1m["exit_status"] == 0:
                fraction = incremental["new_span"]["wall_s"] / cold_1m["wall_s"]
                incremental["new_span_fraction_of_cold_1m"] = round(fraction, 3)
                print(
                    f"new span / cold 1M: {fraction:.2f} (median of "
                    f"{len(incremental['new_span_walls_s'])} runs; target <= 0.3)"
                )
    finally:
        if args.workspace is None:
            shutil.rmtree(workspace, ignore_errors=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.out}")
    if report["cold"]:
        png = args.out.with_suffix(".png")
        if plot(report, png):
            print(f"plot:    {png}")
        else:
            print("plot skipped: matplotlib is not installed (it is in the dev extras)")
    failed = [r for r in report["cold"].values() if r["exit_status"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

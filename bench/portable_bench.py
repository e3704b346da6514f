"""What `--beam-runner portable` costs: cold runs on the DirectRunner and on the portable runner, interleaved.

For each size one span is generated (bench/generate_spans.py, as the scale benchmark does) and
`local_runner.py` runs cold on it (a fresh output folder each time) with the DirectRunner and with
`--beam-runner portable`, alternating which goes first from one pair to the next, so load on a
shared machine falls on both alike. Recorded per run: wall time, peak RSS of the whole process
tree (the worker pool and its SDK workers included), per-component seconds from MLMD, AUC, load
average, and for portable runs the SDK worker processes the pool started. The summary gives
portable / direct per size for the whole run and for the Beam components alone.

    .venv/bin/python bench/portable_bench.py                       # 15k and 100k rows, 1 pair
    .venv/bin/python bench/portable_bench.py --sizes 15000 --pairs 3
    .venv/bin/python bench/portable_bench.py -- --no-tune           # flags after -- go to the runner

Writes bench/results/portable.json.
"""

import argparse
import json
import pathlib
import shutil
import statistics
import sys
import tempfile

from runs import REPO_ROOT, load_average, machine
from scale_bench import generated_data, print_result, rows_list_arg, run_measured

from tfx_pipeline.node_ids import BEAM_COMPONENTS
from tfx_pipeline.runners import portable

DEFAULT_SIZES = (15_000, 100_000)
RUNNERS = {"direct": [], "portable": ["--beam-runner", "portable"]}


def started_workers(output_dir: pathlib.Path) -> int:
    """SDK worker processes the run's worker pool started (0 for the DirectRunner)."""
    return sum(
        portable.started_workers(log)
        for log in (output_dir / "logs").glob("run-*-beam-workers.log")
    )


def run_pair(
    data_root: pathlib.Path, workspace: pathlib.Path, rows: int, pair: int, flags: list[str]
) -> dict[str, dict]:
    """One cold run per runner; odd pairs start with the portable runner."""
    order = list(RUNNERS) if pair % 2 == 0 else list(reversed(RUNNERS))
    results = {}
    for runner in order:
        output_dir = workspace / f"outputs-{rows}-{runner}-{pair}"
        shutil.rmtree(output_dir, ignore_errors=True)
        print(f"{rows} rows, {runner}, pair {pair + 1} (load {load_average()}) ...", flush=True)
        result = run_measured(data_root, output_dir, [*RUNNERS[runner], *flags])
        result["beam_components_s"] = round(
            sum(result["components_s"].get(node, 0.0) for node in BEAM_COMPONENTS), 1
        )
        result["sdk_workers_started"] = started_workers(output_dir)
        print_result(runner, result)
        print(f"               Beam components: {result['beam_components_s']} s", flush=True)
        results[runner] = result
        shutil.rmtree(output_dir, ignore_errors=True)
    return results


def summarize(pairs: list[dict[str, dict]]) -> dict[str, object]:
    """Medians over the pairs, and portable / direct for the run and its Beam components."""

    def median(runner: str, key: str) -> float:
        return round(statistics.median(pair[runner][key] for pair in pairs), 2)

    summary: dict[str, object] = {
        "direct_wall_s": median("direct", "wall_s"),
        "portable_wall_s": median("portable", "wall_s"),
        "direct_beam_components_s": median("direct", "beam_components_s"),
        "portable_beam_components_s": median("portable", "beam_components_s"),
        "direct_peak_rss_gb": median("direct", "peak_rss_gb"),
        "portable_peak_rss_gb": median("portable", "peak_rss_gb"),
    }
    summary["wall_ratio"] = round(summary["portable_wall_s"] / summary["direct_wall_s"], 2)
    summary["beam_components_ratio"] = round(
        summary["portable_beam_components_s"] / summary["direct_beam_components_s"], 2
    )
    summary["per_component_s"] = {
        node: {
            runner: statistics.median(pair[runner]["components_s"].get(node, 0.0) for pair in pairs)
            for runner in RUNNERS
        }
        for node in BEAM_COMPONENTS
    }
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=rows_list_arg,
        default=list(DEFAULT_SIZES),
        help="comma-separated row counts (default: 15000,100000)",
    )
    parser.add_argument(
        "--pairs", type=int, default=1, help="runs per runner and size (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="data generator seed")
    parser.add_argument(
        "--workspace",
        type=pathlib.Path,
        default=None,
        help="where data and outputs go (default: a new temporary folder, removed afterwards); "
        "generated data found here is reused",
    )
    parser.add_argument(
        "--out", type=pathlib.Path, default=REPO_ROOT / "bench" / "results" / "portable.json"
    )
    args, runner_flags = parser.parse_known_args()
    if args.pairs < 1:
        parser.error(f"--pairs must be at least 1, got {args.pairs}")
    runner_flags = [flag for flag in runner_flags if flag != "--"]

    workspace = args.workspace or pathlib.Path(tempfile.mkdtemp(prefix="portable-bench-"))
    workspace.mkdir(parents=True, exist_ok=True)
    report: dict[str, object] = {"machine": machine(), "runner_flags": runner_flags, "sizes": {}}
    try:
        for rows in args.sizes:
            data_root = generated_data(workspace, rows, args.seed)
            pairs = [
                run_pair(data_root, workspace, rows, pair, runner_flags)
                for pair in range(args.pairs)
            ]
            summary = summarize(pairs)
            report["sizes"][str(rows)] = {"pairs": pairs, "summary": summary}
            print(
                f"{rows} rows: portable / direct = {summary['wall_ratio']}x the run "
                f"({summary['portable_wall_s']} s vs {summary['direct_wall_s']} s), "
                f"{summary['beam_components_ratio']}x the Beam components "
                f"({summary['portable_beam_components_s']} s vs "
                f"{summary['direct_beam_components_s']} s)",
                flush=True,
            )
    finally:
        if args.workspace is None:
            shutil.rmtree(workspace, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.out}")
    failed = [
        run
        for size in report["sizes"].values()
        for pair in size["pairs"]
        for run in pair.values()
        if run["exit_status"] != 0
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

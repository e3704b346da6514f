"""Times local_runner.py as a whole process: cold, fully cached, and with a new span added.

Each scenario runs the pipeline exactly as a user does (a fresh `python local_runner.py` process):
cold (a new output folder), cached (the same again: the runner finds nothing changed and repeats
the cold run's summary), cached_rerun (the same with --rerun: through TFX, every component from
its cache) and new_span (a resampled span added). It records wall time, peak RSS summed over the process and all its children (Beam workers
included), the run's exit status and the evaluation AUC from MLMD. Prints a table and writes JSON.

    .venv/bin/python bench/pipeline_bench.py [--out bench/results/pipeline.json] [runner flags...]
"""

import argparse
import json
import pathlib
import random
import shutil
import tempfile

from runs import REPO_ROOT, answered_up_to_date, eval_auc, machine, measure, runner_command

TARGETS = {"cold_s": 60.0, "cached_s": 10.0, "peak_rss_gb": 1.5, "auc": 0.93}
NEW_SPAN_ROWS = 8000
NEW_SPAN_SEED = 7


def add_resampled_span(data_root: pathlib.Path) -> pathlib.Path:
    """A new span of rows drawn (with a fixed seed) from the bundled spans: new data, same schema."""
    header, rows = None, []
    for span_file in sorted(data_root.glob("span-*/data.csv")):
        lines = span_file.read_text().splitlines(keepends=True)
        header = lines[0]
        rows.extend(lines[1:])
    numbers = [int(p.name.split("-")[1]) for p in data_root.glob("span-*")]
    new_span = data_root / f"span-{max(numbers) + 1}"
    new_span.mkdir()
    sample = random.Random(NEW_SPAN_SEED).choices(rows, k=NEW_SPAN_ROWS)
    (new_span / "data.csv").write_text(header + "".join(sample))
    return new_span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=pathlib.Path, default=REPO_ROOT / "bench" / "results" / "pipeline.json"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    args, runner_flags = parser.parse_known_args()

    workspace = pathlib.Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    data_root = workspace / "data"
    shutil.copytree(REPO_ROOT / "data" / "taxi", data_root)
    output_dir = workspace / "outputs"
    command = runner_command(data_root, output_dir, runner_flags)

    results = {}
    for scenario in ("cold", "cached", "cached_rerun", "new_span"):
        if scenario == "new_span":
            add_resampled_span(data_root)
        print(f"running {scenario} ...", flush=True)
        result = measure([*command, "--rerun"] if scenario == "cached_rerun" else command)
        result["eval_auc"] = eval_auc(output_dir)
        console = result.pop("console")
        result["up_to_date"] = answered_up_to_date(console)
        if result["up_to_date"]:
            result["report_s"] = None  # no report written: the figure printed is the last run's
        if result["exit_status"] != 0:
            print(console)
        results[scenario] = result
        print(
            f"  {scenario:<9} wall {result['wall_s']:7.1f} s   peak RSS {result['peak_rss_gb']:.2f} GB"
            f"   AUC {result['eval_auc']}   report {result['report_s']} s"
            f"   exit {result['exit_status']}"
            f"   load {result['load_1m_before']}",
            flush=True,
        )

    report = {
        "machine": machine(),
        "runner_flags": runner_flags,
        "targets": TARGETS,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\ntargets: cold <= {TARGETS['cold_s']} s, cached <= {TARGETS['cached_s']} s, "
        f"peak RSS <= {TARGETS['peak_rss_gb']} GB, AUC >= {TARGETS['auc']}"
    )
    print(f"written: {args.out}")
    if args.keep:
        print(f"workspace kept: {workspace}")
    else:
        shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    main()

"""`python -m tfx_pipeline.runs`: every run of an output directory, one line each; `--compare A B`.

The list shows each run, not only the ones that pushed: when, which span and how many rows,
which components ran or came from cache, the hyperparameters, the overall AUC, whether the model
was blessed and which version was pushed, and how long it took. `--compare A B` puts two runs
side by side (data, components, hyperparameters, metrics per slice) on the console and writes
the same as an HTML page under <output-dir>/reports/.
"""

import argparse
import pathlib
import re
import sys

from tfx_pipeline import layout
from tfx_pipeline.operations.arguments import add_output_arguments
from tfx_pipeline.problems import ConfigProblems, print_problems
from tfx_pipeline.reporting import console
from tfx_pipeline.reporting.run_selection import open_output_store, select_run
from tfx_pipeline.runners.exit_codes import EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfx_pipeline.runs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--compare", nargs=2, metavar=("A", "B"), help="two run ids to put side by side"
    )
    add_output_arguments(parser)
    return parser


def comparison_path(output_dir: pathlib.Path, first: str, second: str) -> pathlib.Path:
    def safe(run_id: str) -> str:
        return re.sub(r"[^0-9A-Za-z_.-]+", "-", run_id)

    return (
        layout.OutputLayout(output_dir).reports_dir / f"compare-{safe(first)}-{safe(second)}.html"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console.quiet_libraries()
    try:
        if args.compare:
            chosen = [
                select_run(args.output_dir, args.pipeline_name, run_id) for run_id in args.compare
            ]
        else:
            store = open_output_store(args.output_dir)
    except ConfigProblems as problems:
        return print_problems(problems.problems)
    # Reading TFMA's output imports TensorFlow: only once the input is known to be good.
    from tfx_pipeline.reporting import run_comparison

    if not args.compare:
        lines = run_comparison.list_runs(store, args.pipeline_name)
        if not lines:
            print(f"Pipeline '{args.pipeline_name}' has no runs in {args.output_dir}.")
            return EXIT_OK
        for line in run_comparison.format_runs(lines):
            print(line)
        return EXIT_OK
    store = chosen[0][0]
    comparison = run_comparison.compare(store, args.pipeline_name, [run for _, run in chosen])
    for line in run_comparison.format_comparison(comparison):
        print(line)
    path = comparison_path(args.output_dir, *args.compare)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_comparison.comparison_page(comparison), encoding="utf-8")
    print(f"\nSide by side in a browser: {path}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

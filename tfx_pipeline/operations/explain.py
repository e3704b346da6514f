"""`python -m tfx_pipeline.explain`: why a component ran or came from cache (reporting/explain.py)."""

import argparse
import sys

from tfx_pipeline import layout
from tfx_pipeline.operations.arguments import add_output_arguments
from tfx_pipeline.problems import ConfigProblems, print_problems
from tfx_pipeline.reporting.explain import explain, format_explanation
from tfx_pipeline.reporting.run_selection import select_run
from tfx_pipeline.runners.exit_codes import EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfx_pipeline.explain",
        description=(
            "Why a component ran or came from cache in a run: the execution it reused, or the "
            "input artifact, exec parameter or module-code fingerprint that changed against the "
            "execution it would otherwise have reused. Read from MLMD."
        ),
        epilog="exit status: 0 explained, 2 no pipeline metadata, an unknown run or component",
    )
    parser.add_argument("component", metavar="COMPONENT", help="a component id, e.g. Trainer")
    parser.add_argument("--run", metavar="ID", help="the run's id (default: the latest run)")
    add_output_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        store, run = select_run(args.output_dir, args.pipeline_name, args.run)
        explanation = explain(store, args.pipeline_name, run, args.component)
    except ConfigProblems as problems:
        return print_problems(problems.problems)
    logs_dir = layout.OutputLayout(args.output_dir).logs_dir
    for line in format_explanation(explanation, logs_dir):
        print(line)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

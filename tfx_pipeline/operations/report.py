"""`python -m tfx_pipeline.report`: writes (again) the HTML report of a past run, from MLMD.

Every run writes its report itself; this rebuilds one for any run of an output directory, e.g.
after a runner upgrade or for a run whose report was deleted.
"""

import argparse
import sys

from tfx_pipeline.operations.arguments import add_output_arguments
from tfx_pipeline.problems import ConfigProblems, print_problems
from tfx_pipeline.reporting import console
from tfx_pipeline.reporting.run_selection import select_run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfx_pipeline.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--run", metavar="ID", help="the run's id (`python -m tfx_pipeline.runs`)")
    chosen.add_argument("--latest", action="store_true", help="the latest run (the default)")
    add_output_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console.quiet_libraries()
    try:
        store, run = select_run(args.output_dir, args.pipeline_name, args.run)
    except ConfigProblems as problems:
        return print_problems(problems.problems)
    # The report reads TFMA's output, which imports TensorFlow: only once the input is good.
    from tfx_pipeline.reporting.run_report.build import write_report

    path = write_report(store, args.output_dir, args.pipeline_name, run)
    print(f"Report of run {run.name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

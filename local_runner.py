"""Runs the taxi pipeline on this machine with TFX's LocalDagRunner and prints what happened.

With no flags it ingests the latest span of the bundled data (data/taxi/span-N/), validates it
against the curated schema, tunes (first run only), trains, evaluates against the last blessed
model and pushes a blessed model to a TF Serving model directory.
"""

import pathlib
import sys

from tfx_pipeline.problems import ConfigProblems, print_problems
from tfx_pipeline.runners import local


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = local.build_parser(description=__doc__).parse_args(argv)
    try:
        checked = local.check_inputs(args)
    except ConfigProblems as problems:
        return print_problems(problems.problems)
    runner = pathlib.Path(__file__).resolve()
    if args.watch:
        return local.watch(args, argv, runner, notifications=checked.notifications)
    return local.run_once(args, checked, script=runner)


if __name__ == "__main__":
    try:
        status = main()
    except KeyboardInterrupt:
        local.exit_interrupted()
    local.exit_now(status)

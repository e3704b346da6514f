"""One way to report problems in user input: collect them all, raise them together, print them together."""

import sys
from collections.abc import Iterable
from typing import TextIO

# Exit status of every command for input it refuses (argparse uses it too); nothing has run.
EXIT_USAGE = 2


class ConfigProblems(ValueError):
    """Every problem found in one piece of user input (flags, a file, settings), not the first only.

    `problems` holds one complete sentence per problem; `str()` joins them for one-line contexts
    (an Airflow import error, a log line).
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def raise_if_any(problems: list[str], context: str = "") -> None:
    """Raises ConfigProblems when `problems` is not empty, each prefixed with `context`."""
    if problems:
        raise ConfigProblems([f"{context}: {p}" if context else p for p in problems])


def print_problems(problems: Iterable[str], stream: TextIO | None = None) -> int:
    """Prints each problem as an `error:` line and returns EXIT_USAGE for the caller to exit with."""
    stream = stream or sys.stderr
    for problem in problems:
        print(f"error: {problem}", file=stream)
    return EXIT_USAGE

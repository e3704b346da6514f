"""What every runner shares: flag types and flag groups, their mapping onto PipelineConfig, input checks.

Defaults come from PipelineConfig's own (config.default), so a runner never restates one. Input
checks collect every problem (`collect`) for the runner to print together and exit 2 before
TensorFlow or TFX loads; nothing in this module imports either.
"""

import argparse
import pathlib
import re
from collections.abc import Callable
from typing import TypeVar

from tfx_pipeline import config as config_lib
from tfx_pipeline import inputs
from tfx_pipeline.problems import ConfigProblems

T = TypeVar("T")

# Names that become folders or MLMD context names: no path separators, no spaces.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def bounded(kind: type, low: float | None = None, high: float | None = None) -> Callable:
    """An argparse type: parses `kind` (int or float) and checks it lies within [low, high]."""

    def convert(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            expected = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if high is not None and low is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be within [{low:g}, {high:g}], got {value}")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low:g}, got {value}")
        return value

    return convert


positive_int = bounded(int, low=1)
non_negative_int = bounded(int, low=0)
fraction = bounded(float, low=0.0, high=1.0)


def split_buckets(text: str) -> tuple[int, int]:
    """'3:1' -> (3, 1): hash buckets of the train and eval splits."""
    train, _, evaluation = text.partition(":")
    try:
        parsed = (int(train), int(evaluation))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TRAIN:EVAL such as 3:1, got {text!r}") from None
    if min(parsed) < 1:
        raise argparse.ArgumentTypeError(f"both bucket counts must be at least 1, got {text!r}")
    return parsed


def model_name(text: str) -> str:
    """A model or pipeline name: letters, digits, '_', '.', '-' (it becomes a folder name)."""
    if not NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a usable model name: letters, digits, '_', '.', '-' only"
        )
    return text


def add_name_arguments(group: argparse._ArgumentGroup, pipeline_name: str, help_: str) -> None:
    """--model-name and --pipeline-name (each orchestrator has its own default pipeline name)."""
    group.add_argument(
        "--model-name",
        type=model_name,
        default=config_lib.MODEL_NAME,
        help="served model name (default: %(default)s)",
    )
    group.add_argument(
        "--pipeline-name",
        type=model_name,
        default=pipeline_name,
        help=help_ + " (default: %(default)s)",
    )


def add_training_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Training, tuning and blessing flags; returns the "training and tuning" group for additions."""
    default = config_lib.default
    training = parser.add_argument_group("training and tuning")
    training.add_argument(
        "--train-steps",
        type=positive_int,
        default=default("train_steps"),
        help="default: %(default)s",
    )
    training.add_argument(
        "--eval-steps",
        type=positive_int,
        default=default("eval_steps"),
        help="default: %(default)s",
    )
    training.add_argument(
        "--batch-size",
        type=positive_int,
        default=default("batch_size"),
        help="default: %(default)s",
    )
    training.add_argument(
        "--tuner-trials",
        type=positive_int,
        default=default("tuner_trials"),
        help="default: %(default)s",
    )
    training.add_argument(
        "--tuner-steps",
        type=positive_int,
        default=default("tuner_train_steps"),
        help="training steps per trial (default: %(default)s)",
    )
    training.add_argument(
        "--seed", type=non_negative_int, default=default("seed"), help="default: %(default)s"
    )

    gates = parser.add_argument_group("blessing thresholds (overall slice)")
    gates.add_argument(
        "--min-auc",
        type=fraction,
        default=default("min_auc"),
        help="absolute AUC floor (default: %(default)s)",
    )
    gates.add_argument(
        "--max-auc-drop",
        type=fraction,
        default=default("max_auc_drop"),
        help="largest AUC drop allowed against the last blessed model (default: %(default)s)",
    )
    return training


def training_settings(args: argparse.Namespace) -> dict[str, object]:
    """The PipelineConfig fields the training and blessing flags set."""
    return {
        "tuner_trials": args.tuner_trials,
        "tuner_train_steps": args.tuner_steps,
        "train_steps": args.train_steps,
        "eval_steps": args.eval_steps,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "min_auc": args.min_auc,
        "max_auc_drop": args.max_auc_drop,
    }


def collect(problems: list[str], read: Callable[[], T]) -> T | None:
    """Runs one input check: its ConfigProblems join `problems` and None is returned."""
    try:
        return read()
    except ConfigProblems as error:
        problems.extend(error.problems)
        return None


def check_anomaly_policy(problems: list[str], path: pathlib.Path) -> str | None:
    """The --anomaly-policy file as PipelineConfig.anomaly_policy_json, or None (problems added)."""
    return collect(problems, lambda: inputs.read_anomaly_policy(path))

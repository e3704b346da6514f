"""What every runner shares: flag types and flag groups, their mapping onto PipelineConfig, input checks.

Defaults come from PipelineConfig's own (config.default), so a runner never restates one. Input
checks collect every problem (`collect`) for the runner to print together and exit 2 before
TensorFlow or TFX loads; nothing in this module imports either.
"""

import argparse
import pathlib
import re
from collections.abc import Callable, Mapping
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

    add_blessing_arguments(parser)
    add_infra_arguments(parser)
    return training


def add_infra_arguments(parser: argparse.ArgumentParser) -> None:
    """How the InfraValidator serves and questions the candidate before it may be pushed."""
    default = config_lib.default
    infra = parser.add_argument_group(
        "infra validation (the candidate in a real model server before it is pushed)"
    )
    infra.add_argument(
        "--infra-server",
        choices=config_lib.INFRA_SERVERS,
        default=default("infra_server"),
        help="model server to start: auto = tensorflow_model_server when it is on PATH, else "
        "python -m serving (default: %(default)s)",
    )
    infra.add_argument(
        "--infra-examples",
        type=bounded(
            int, low=1, high=config_lib.MAX_WARMUP_RECORDS // len(config_lib.INFRA_SIGNATURES)
        ),
        default=default("infra_examples"),
        help="eval rows sent to each signature; they become the warmup requests "
        "(default: %(default)s)",
    )
    infra.add_argument(
        "--infra-max-p99-increase",
        type=bounded(float, low=0.0),
        default=default("infra_max_p99_increase"),
        help="p99 latency may exceed the last blessed model's by this fraction "
        "(default: %(default)s)",
    )
    infra.add_argument(
        "--infra-max-loading-seconds",
        type=positive_int,
        default=default("infra_max_loading_seconds"),
        help="time allowed for the model to become AVAILABLE (default: %(default)s)",
    )


def feature_names(text: str) -> tuple[str, ...]:
    """'payment_type,company' -> ('payment_type', 'company'); '' -> () (no feature)."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def slice_gap(text: str) -> config_lib.SliceGap:
    """'payment_type:Credit Card:Cash:0.1' -> SliceGap (an argparse type)."""
    try:
        return config_lib.SliceGap.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# The blessing rules' settings: flag, PipelineConfig field, parser of one value, help. The
# Airflow runner reads each from TAXI_<FIELD> (`blessing_settings_from_env`).
BLESSING_SETTINGS = (
    ("--min-auc", "min_auc", fraction, "floor on the overall AUC (point estimate)"),
    (
        "--max-auc-drop",
        "max_auc_drop",
        fraction,
        "no regression: a drop against the last blessed model fails only when the whole 95%% "
        "interval of the overall AUC change is below minus this",
    ),
    (
        "--gated-slices",
        "gated_slice_features",
        feature_names,
        "comma-separated features whose every slice is gated; '' for none",
    ),
    (
        "--min-slice-examples",
        "min_slice_examples",
        positive_int,
        "slices with fewer examples are reported, never gated",
    ),
    (
        "--min-slice-class-examples",
        "min_slice_class_examples",
        positive_int,
        "so are slices with fewer positives or fewer negatives",
    ),
    (
        "--min-slice-auc",
        "min_slice_auc",
        fraction,
        "a gated slice fails when its whole AUC interval is below this; 0 turns it off",
    ),
    (
        "--max-slice-auc-drop",
        "max_slice_auc_drop",
        fraction,
        "a gated slice fails when the whole interval of its AUC change against the last "
        "blessed model is below minus this; 1 turns it off",
    ),
    (
        "--max-slice-auc-gap",
        "max_slice_auc_gaps",
        slice_gap,
        "FEATURE:VALUE:OTHER:MAX_GAP, repeatable (Airflow: ';'-separated): fails when the whole "
        "interval of AUC(VALUE) - AUC(OTHER) is beyond +-MAX_GAP",
    ),
)
# Settings that hold several values: a repeated flag.
REPEATED_SETTINGS = ("max_slice_auc_gaps",)


def add_blessing_arguments(parser: argparse.ArgumentParser) -> None:
    """The blessing rules (docs/pipeline.md: Blessing), judged on 95% confidence intervals."""
    gates = parser.add_argument_group(
        "blessing rules (judged on TFMA's 95% jackknife intervals: noise alone does not fail a "
        "model)"
    )
    for flag, field, parse, help_ in BLESSING_SETTINGS:
        if field in REPEATED_SETTINGS:
            gates.add_argument(flag, type=parse, action="append", default=[], help=help_)
        else:
            shown = config_lib.default(field)
            shown = ",".join(shown) if isinstance(shown, tuple) else shown
            gates.add_argument(
                flag,
                type=parse,
                default=config_lib.default(field),
                help=f"{help_} (default: {shown})",
            )


def blessing_settings(args: argparse.Namespace) -> dict[str, object]:
    """The PipelineConfig fields the blessing flags set."""
    found = {}
    for flag, field, _, _ in BLESSING_SETTINGS:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        found[field] = tuple(value) if field in REPEATED_SETTINGS else value
    return found


def blessing_settings_from_env(environ: Mapping[str, str], problems: list[str]) -> dict:
    """The blessing fields set by TAXI_<FIELD> variables, parsed as the flags are."""
    found = {}
    for _, field, parse, _ in BLESSING_SETTINGS:
        name = f"TAXI_{field.upper()}"
        if name not in environ:
            continue
        texts = environ[name].split(";") if field in REPEATED_SETTINGS else [environ[name]]
        try:
            values = tuple(parse(text) for text in texts if text or field not in REPEATED_SETTINGS)
        except argparse.ArgumentTypeError as error:
            problems.append(f"{name}: {error}")
            continue
        found[field] = values if field in REPEATED_SETTINGS else values[0]
    return found


def training_settings(args: argparse.Namespace) -> dict[str, object]:
    """The PipelineConfig fields the training and blessing flags set."""
    return {
        "tuner_trials": args.tuner_trials,
        "tuner_train_steps": args.tuner_steps,
        "train_steps": args.train_steps,
        "eval_steps": args.eval_steps,
        "batch_size": args.batch_size,
        "seed": args.seed,
        **blessing_settings(args),
        "infra_server": args.infra_server,
        "infra_examples": args.infra_examples,
        "infra_max_p99_increase": args.infra_max_p99_increase,
        "infra_max_loading_seconds": args.infra_max_loading_seconds,
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

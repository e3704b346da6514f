"""Reading the files a user points a command at, with errors that name the file and the problem.

Every reader raises ConfigProblems, so callers collect them with the rest of their input
problems and report them together. Neither TensorFlow nor TFX is imported here: commands check
their inputs before loading either.
"""

import json
import pathlib

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from tfx_pipeline import layout
from tfx_pipeline.components.data_gate.policy import validate_policy
from tfx_pipeline.problems import ConfigProblems


def read_json_object(path: pathlib.Path, what: str) -> dict:
    """A settings file holding one JSON object; `what` names it in the error ("monitoring config")."""
    try:
        value = json.loads(path.read_text())
    except OSError as error:
        raise ConfigProblems([f"cannot read {what} {path}: {error.strerror}"]) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigProblems([f"{what} {path} is not JSON: {error}"]) from None
    if not isinstance(value, dict):
        raise ConfigProblems([f"{what} {path} must be a JSON object"])
    return value


def read_schema(path: pathlib.Path) -> schema_pb2.Schema:
    """A TFMD Schema text proto declaring at least one feature."""
    try:
        schema = text_format.Parse(path.read_text(), schema_pb2.Schema())
    except (text_format.ParseError, UnicodeDecodeError, OSError) as error:
        raise ConfigProblems(
            [f"schema file {path} is not a readable Schema text proto: {error}"]
        ) from None
    if not schema.feature:
        raise ConfigProblems([f"schema file {path} declares no features"])
    return schema


def read_anomaly_policy(path: pathlib.Path) -> str:
    """The data gate's policy file, checked, as compact JSON (PipelineConfig.anomaly_policy_json)."""
    policy = read_json_object(path, "anomaly policy")
    try:
        validate_policy(policy)
    except ConfigProblems as error:
        raise ConfigProblems([f"{path}: {problem}" for problem in error.problems]) from None
    return json.dumps(policy, sort_keys=True)


def latest_span_files(data_root: pathlib.Path) -> tuple[int, list[pathlib.Path]]:
    """The highest span number under `data_root` and its files, each with a header and a row."""
    if not data_root.exists():
        raise ConfigProblems([f"data root {data_root} does not exist"])
    if not data_root.is_dir():
        raise ConfigProblems([f"data root {data_root} is not a folder"])
    try:
        spans = layout.span_folders(data_root)
        misnamed = layout.misnamed_span_folders(data_root)
    except OSError as error:
        raise ConfigProblems([f"cannot read data root {data_root}: {error}"]) from None
    if misnamed:
        raise ConfigProblems(
            [
                f"{folder} is not named span-<number>; ExampleGen cannot tell its span, so "
                "rename or remove it"
                for folder in misnamed
            ]
        )
    if not spans:
        raise ConfigProblems(
            [
                f"data root {data_root} holds no span-N/ folders; put CSV files in e.g. "
                f"{data_root / 'span-1'}/data.csv"
            ]
        )
    number = max(spans)
    files = sorted(p for p in spans[number].iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ConfigProblems([f"the latest span folder {spans[number]} has no files"])
    problems = []
    for path in files:
        with open(path, "rb") as handle:
            header = handle.readline().strip()
            first_row = handle.readline().strip()
        if not header:
            problems.append(f"{path} is empty; a span CSV needs a header line and rows")
        elif not first_row:
            problems.append(f"{path} has a header but no rows")
    if problems:
        raise ConfigProblems(problems)
    return number, files


# The file a Tuner writes into its best_hyperparameters output; the Trainer reads the only file
# of that folder.
HYPERPARAMETERS_FILE = "best_hyperparameters.txt"


def read_hyperparameters(path: pathlib.Path) -> tuple[pathlib.Path, dict]:
    """An earlier search's hyperparameters: the file, or the Tuner output folder holding only it.

    Returns the file and its values. The file is Keras Tuner's config as TFX's Tuner writes it
    (`{"space": [...], "values": {...}}`), or a flat JSON object of values.
    """
    if path.is_dir():
        entries = sorted(p.name for p in path.iterdir())
        if entries != [HYPERPARAMETERS_FILE]:
            raise ConfigProblems(
                [
                    f"hyperparameters folder {path} must hold only {HYPERPARAMETERS_FILE} "
                    f"(a Tuner's best_hyperparameters output), it holds {entries or 'nothing'}"
                ]
            )
        path = path / HYPERPARAMETERS_FILE
    elif not path.is_file():
        raise ConfigProblems([f"hyperparameters file {path} does not exist"])
    config = read_json_object(path, "hyperparameters file")
    values = config.get("values", config)
    if not isinstance(values, dict) or not values:
        raise ConfigProblems(
            [f'hyperparameters file {path} has no values (expected {{"values": {{...}}}})']
        )
    wrong = sorted(
        name
        for name, value in values.items()
        if isinstance(value, bool) or not isinstance(value, int | float | str)
    )
    if wrong:
        raise ConfigProblems(
            [f"hyperparameters file {path}: values must be numbers or strings: {wrong}"]
        )
    return path, values

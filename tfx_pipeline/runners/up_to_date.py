"""Whether a local run would change anything: its inputs against the last successful run's.

An unchanged rerun is fully cached in TFX (the resolvers are written so that it is: the e2e test
of the unchanged rerun holds them to it), yet it costs seconds, nearly all of them importing
TensorFlow, Beam and TFX, and it writes a log and reports that say nothing new. So the local
runner, before importing any of them, fingerprints what a run depends on:

  flags        every parsed flag, paths made absolute
  files        the content of every file a flag names (schema, anomaly policy, hyperparameters,
               notifications config)
  data         every file under --data-root: path, size and modification time (the same facts
               ExampleGen's span fingerprint is made of)
  code         the content of every file of the tfx_pipeline, models and serving packages, of
               data/schema/ and of the runner script itself
  packages     the interpreter and the installed distributions (their dist-info names hold the
               versions)
  environment  the variables TensorFlow, TFX, Beam and the interpreter read (TF_*, TFX_*, ...)

and compares it with the record the last successful run left in its output directory. When they
are equal and MLMD and the served model directory are still as that run left them (size and
modification time of the database, every file of the model directory), nothing a rerun could
read has changed: the runner prints that run's summary and exits with its status. Anything else
(no record, a changed input, a run that failed, --no-cache, --rerun) runs the pipeline.
"""

import dataclasses
import datetime
import hashlib
import importlib.util
import json
import os
import pathlib
import site
import sys
import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

from tfx_pipeline import layout

RECORD_FILE = "last-run.json"
RECORD_VERSION = 1
LINE_WIDTH = 100
HEADLINE = "Up to date:"  # how a skipped run's console begins, after the pipeline's line
# Packages whose files are the pipeline's code, and the bundled configuration next to them.
CODE_PACKAGES = ("tfx_pipeline", "models", "serving")
CODE_FOLDERS = (layout.REPO_ROOT / "data" / "schema",)
ENVIRONMENT_PREFIXES = (
    "TF_",
    "TFX_",
    "BEAM_",
    "KERAS_",
    "CUDA_",
    "XLA_",
    "OMP_",
    "MKL_",
    "GOOGLE_",
    "PYTHONHASHSEED",
    "PYTHONPATH",
)
# What each part of the fingerprint covers, for the console's line.
PART_NAMES = {
    "flags": "flags",
    "files": "the files the flags name",
    "data": "data",
    "code": "code",
    "packages": "installed packages",
    "environment": "environment",
    "metadata": "MLMD",
    "served": "served models",
}


def _digest(items: Iterable[Any]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps(item, sort_keys=True, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _listing(folder: pathlib.Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime in ns) of every file under `folder`; [] when it is absent.

    Symlinked folders are followed, as ExampleGen and the model server follow them, each real
    folder once (a link loop ends there).
    """
    found = []
    seen = set()
    for directory, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(directory)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for name in sorted(filenames):
            path = pathlib.Path(directory) / name
            try:
                stat = path.stat()
            except OSError:
                continue  # removed while listed: the next listing differs anyway
            found.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return found


def _file_contents(paths: Iterable[pathlib.Path]) -> Iterable[tuple[str, str]]:
    for path in paths:
        try:
            yield str(path), hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as error:
            yield str(path), f"unreadable: {error.strerror}"


def _tree_files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def code_files(script: pathlib.Path | None) -> list[pathlib.Path]:
    """The files whose content is the pipeline's code and bundled configuration."""
    files = []
    for package in CODE_PACKAGES:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            files += _tree_files(pathlib.Path(location))
    for folder in CODE_FOLDERS:
        files += _tree_files(folder)
    if script is not None:
        files.append(script)
    return files


def installed_packages() -> list[str]:
    """The interpreter, and every distribution in its site-packages (the names hold versions).

    Site-packages, not sys.path: sys.path also holds the current folder, which differs between
    two invocations of one installation; PYTHONPATH is part of the environment.
    """
    found = [sys.executable, sys.version]
    for folder in [*site.getsitepackages(), site.getusersitepackages()]:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        found += sorted(
            f"{folder}/{n}" for n in names if n.endswith((".dist-info", ".egg-info", ".pth"))
        )
    return found


def _flag_value(value: Any) -> Any:
    if isinstance(value, pathlib.Path):
        return str(value.resolve())
    if isinstance(value, (list, tuple)):
        return [_flag_value(v) for v in value]
    return value


def input_fingerprint(
    flags: Mapping[str, Any],
    data_root: pathlib.Path,
    script: pathlib.Path | None,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """What a run reads, part by part (see the module's docstring), as hashes."""
    files = sorted(
        {
            value.resolve()
            for value in flags.values()
            if isinstance(value, pathlib.Path) and value.is_file()
        }
    )
    return {
        "flags": _digest(sorted((k, _flag_value(v)) for k, v in flags.items())),
        "files": _digest(_file_contents(files)),
        "data": _digest(_listing(data_root.resolve())),
        "code": _digest(_file_contents(code_files(script))),
        "packages": _digest(installed_packages()),
        "environment": _digest(
            sorted((k, v) for k, v in environ.items() if k.startswith(ENVIRONMENT_PREFIXES))
        ),
    }


def state_fingerprint(output: layout.OutputLayout, model_dir: pathlib.Path) -> dict[str, str]:
    """What a run leaves that the next run reads: the MLMD database and the served models."""
    database = output.metadata_path
    journal = [
        p.name
        for p in (database.with_name(database.name + s) for s in ("-journal", "-wal"))
        if p.exists()
    ]
    try:
        stat = database.stat()
        metadata = [stat.st_size, stat.st_mtime_ns, journal]
    except OSError:
        metadata = ["absent"]
    return {"metadata": _digest(metadata), "served": _digest(_listing(model_dir))}


@dataclasses.dataclass(frozen=True)
class Record:
    """What the last successful run on an output directory left for the next one."""

    inputs: dict[str, str]
    state: dict[str, str]
    started: str  # ISO time, local
    exit_code: int
    summary: list[str]  # its console lines from "Summary" on

    def to_json(self) -> str:
        return json.dumps({"version": RECORD_VERSION, **dataclasses.asdict(self)}, indent=1)


def read_record(output: layout.OutputLayout) -> Record | None:
    """The output directory's record; None when there is none or it cannot be read as one."""
    try:
        raw = json.loads((output.root / RECORD_FILE).read_text())
        if raw.pop("version") != RECORD_VERSION:
            return None
        record = Record(**raw)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    fields = (record.inputs, record.state, record.started, record.summary)
    if not all(fields) or not isinstance(record.exit_code, int):
        return None
    return record


def write_record(output: layout.OutputLayout, record: Record) -> None:
    """Replaces the record atomically: a reader sees the old one or the new one."""
    path = output.root / RECORD_FILE
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(record.to_json())
    os.replace(partial, path)


def forget(output: layout.OutputLayout) -> None:
    """Removes the record: until the next successful run, every run goes through TFX."""
    (output.root / RECORD_FILE).unlink(missing_ok=True)


def changes(
    record: Record | None,
    inputs: Mapping[str, str],
    state: Mapping[str, str],
) -> list[str]:
    """What differs from the record, by part name (all of them when there is no record)."""
    if record is None:
        return list(PART_NAMES)
    now = {**inputs, **state}
    then = {**record.inputs, **record.state}
    return [part for part in PART_NAMES if now.get(part) != then.get(part)]


def describe(record: Record) -> list[str]:
    """The console's lines for a run skipped as up to date."""
    started = datetime.datetime.fromisoformat(record.started).strftime("%Y-%m-%d %H:%M:%S")
    parts = list(PART_NAMES.values())
    text = (
        f"{HEADLINE} nothing changed since the run started {started} ({', '.join(parts[:-1])} "
        f"and {parts[-1]}), so every component would come from cache. That run's summary "
        "follows; --rerun runs the pipeline anyway."
    )
    return [*textwrap.wrap(text, width=LINE_WIDTH), "", *record.summary]

"""This pipeline against the official TFX taxi template: same machine, same CSV files, cold runs.

The reference is built here, not quoted. The installed TFX's own CLI copies the template into the
workspace (`tfx template copy --model=taxi`, which works offline: it copies the package's files
and TFX's bundled 15,002-row taxi CSV), and `patch_template` makes the edits in TEMPLATE_EDITS
and nothing else: where it reads data and writes outputs (MLMD and the pushed model live under
its output folder, as in its local_runner.py), and every component switched on: StatisticsGen,
SchemaGen, ExampleValidator, Transform, Trainer, the latest-blessed-model Resolver, Evaluator
and Pusher. Each edit must find its text exactly once, or the benchmark stops: a changed
template fails here instead of running something else. Its model code, its 1,000 training and
150 eval steps, its Beam arguments (none: Beam's in-memory DirectRunner, one worker, as ours by
default) and its eval config (BinaryAccuracy only, so no AUC) stay as shipped, and it runs on
Keras 3 as in a fresh shell (ours runs tf_keras). It runs as its own process with its own
local_runner.py, started from its folder.

Per size both pipelines read the very same CSV files: `15k` is the bundled 15,002-row sample
(the rows of data/taxi's spans, as one span-1); any other size (`100k`, `1M`, or `2k` for a
quick check) is written by bench/generate_spans.py. Ours gets `--data-root` (span-1/ under it),
the template that span-1 folder.

Runs alternate, ours then the template, each cold in a fresh output folder, `--pairs` times per
size. Ours runs `local_runner.py` as a user does: a fresh output folder searches (Tuner on). At
15k ours also runs three scenarios, after its cold run and before the template's:
  cached        the same output folder again, nothing changed: the runner finds it up to date
                (runners/up_to_date.py) and prints the cold run's summary;
  cached_rerun  the same again with --rerun: through TFX, every component from its cache;
  reuse_search  a new output folder, `--no-tune --hyperparameters FILE`, FILE the Tuner's
                best_hyperparameters.txt of the first cold run.
Recorded per run: wall time, peak RSS summed over the whole process tree (runs.measure), exit
status, load average, per-component seconds and peak RSS from MLMD, and the evaluation metrics
(ours: AUC; the template: every overall metric its Evaluator wrote). Medians per size and
scenario use the runs that exited 0; ratios are ours over the template's cold median at the same
size. Writes bench/results/template.json and template.png and prints a table. Each run's console
goes to <workspace>/logs/; a failed run's log path and last lines are printed.

    .venv/bin/python bench/template_bench.py                              # 15k, 100k: 3 pairs; 1M: 1
    .venv/bin/python bench/template_bench.py --sizes 15k,100k --pairs 15k=5
    .venv/bin/python bench/template_bench.py --sizes 2k --pairs 1         # a quick check

Flags after `--` go to our local_runner.py unchanged (not to the template).
"""

import argparse
import contextlib
import dataclasses
import datetime
import importlib.metadata
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import generate_spans
from runs import (
    REPO_ROOT,
    answered_up_to_date,
    component_figures,
    eval_auc,
    load_average,
    machine,
    measure,
    quiet_tensorflow,
    runner_command,
)

from tfx_pipeline import inputs, layout, metadata, node_ids
from tfx_pipeline.runners.exit_codes import EXIT_NOT_BLESSED

BUNDLED_SIZE = "15k"
DEFAULT_SIZES = ("15k", "100k", "1M")
DEFAULT_PAIRS = {"15k": 3, "100k": 3, "1M": 1}  # any other size: 1
OURS_PIPELINE_NAME = "taxi"  # local_runner.py's default --pipeline-name
TEMPLATE_PIPELINE_NAME = "taxi_template"
# What the patched template's local_runner.py reads (TEMPLATE_EDITS).
TEMPLATE_OUTPUT_ENV = "TEMPLATE_BENCH_OUTPUT_DIR"
TEMPLATE_DATA_ENV = "TEMPLATE_BENCH_DATA_PATH"
# The template runs on Keras 3, TensorFlow 2.16's tf.keras in a fresh shell; pinned so that an
# exported TF_USE_LEGACY_KERAS=1 (what our runner sets for itself) cannot change what is measured.
TEMPLATE_KERAS_ENV = {"TF_USE_LEGACY_KERAS": "0"}
LOG_TAIL_LINES = 25


@dataclasses.dataclass(frozen=True)
class Edit:
    """One textual edit of the copied template; `old` must occur exactly once."""

    path: str  # relative to the template's folder
    why: str
    old: str
    new: str


def _switch_on(component: str, variable: str, step: int, indent: str = "  ") -> Edit:
    """Uncomments the template's `components.append` of a component (its tutorial's step)."""
    return Edit(
        "pipeline/pipeline.py",
        f"{component} on",
        f"{indent}# TODO(step {step}): Uncomment here to add {component} to the pipeline.\n"
        f"{indent}# components.append({variable})\n",
        f"{indent}components.append({variable})\n",
    )


TEMPLATE_EDITS = (
    Edit(
        "local_runner.py",
        "outputs in the run's fresh folder (PIPELINE_ROOT, METADATA_PATH and SERVING_MODEL_DIR "
        "derive from OUTPUT_DIR, unchanged)",
        "OUTPUT_DIR = '.'\n",
        f"OUTPUT_DIR = os.environ['{TEMPLATE_OUTPUT_ENV}']\n",
    ),
    Edit(
        "local_runner.py",
        "data: the span-1 folder of the size being run (the CSV files ours reads)",
        "DATA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')\n",
        f"DATA_PATH = os.environ['{TEMPLATE_DATA_ENV}']\n",
    ),
    _switch_on("StatisticsGen", "statistics_gen", step=5),
    _switch_on("SchemaGen", "schema_gen", step=5, indent="    "),
    # The template defines ExampleValidator only in the branch of a user-provided schema
    # (ImportSchemaGen); with its default, SchemaGen, it needs to move out of that branch.
    Edit(
        "pipeline/pipeline.py",
        "ExampleValidator on (moved out of the ImportSchemaGen branch to check SchemaGen's schema)",
        "    # Performs anomaly detection based on statistics and data schema.\n"
        "    example_validator = tfx.components.ExampleValidator(  # pylint: disable=unused-variable\n"
        "        statistics=statistics_gen.outputs['statistics'],\n"
        "        schema=schema_gen.outputs['schema'])\n"
        "    # TODO(step 5): (Optional) Uncomment here to add ExampleValidator to the\n"
        "    #               pipeline.\n"
        "    # components.append(example_validator)\n",
        "  # Performs anomaly detection based on statistics and data schema.\n"
        "  example_validator = tfx.components.ExampleValidator(\n"
        "      statistics=statistics_gen.outputs['statistics'],\n"
        "      schema=schema_gen.outputs['schema'])\n"
        "  components.append(example_validator)\n",
    ),
    _switch_on("Transform", "transform", step=6),
    _switch_on("Trainer", "trainer", step=6),
    _switch_on("Resolver", "model_resolver", step=6),
    _switch_on("Evaluator", "evaluator", step=6),
    _switch_on("Pusher", "pusher", step=6),
)
# Template text the benchmark relies on without editing it: where MLMD lands, that no Beam
# arguments are passed, and the components left as shipped.
TEMPLATE_UNCHANGED = (
    (
        "local_runner.py",
        "METADATA_PATH = os.path.join(OUTPUT_DIR, 'tfx_metadata', configs.PIPELINE_NAME,\n"
        "                             'metadata.db')\n",
    ),
    ("local_runner.py", "          # beam_pipeline_args=configs.\n"),
    ("pipeline/configs.py", "TRAIN_NUM_STEPS = 1000\nEVAL_NUM_STEPS = 150\n"),
)
# After the edits the only component left out is ImportSchemaGen (no user schema is given).
COMPONENTS_LEFT_OUT = 1


class TemplateSetupFailed(Exception):
    """The CLI could not copy the template, or its text is not what TEMPLATE_EDITS expects."""


@dataclasses.dataclass(frozen=True)
class Size:
    label: str  # "15k" (the bundled sample) or a row count such as "100k", "1M", "2000"
    rows: int


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    size: str
    scenario: str
    figure: str  # "wall_s" or "peak_rss_gb" (a ratio ours/template), or "eval_auc" (a value)
    limit: float

    def describe(self) -> str:
        if self.figure == "eval_auc":
            return f"ours {self.scenario} at {self.size}: AUC >= {self.limit}"
        what = "wall" if self.figure == "wall_s" else "peak RSS"
        return f"ours {self.scenario} at {self.size}: {what} <= {self.limit}x the template's cold"


# Issue 19's targets.
TARGETS = (
    Target("tuner_15k_wall", "15k", "cold", "wall_s", 0.5),
    Target("reuse_search_15k_wall", "15k", "reuse_search", "wall_s", 0.35),
    Target("cached_15k_wall", "15k", "cached", "wall_s", 0.08),
    Target("cold_1m_wall", "1M", "cold", "wall_s", 0.3),
    Target("cold_1m_peak_rss", "1M", "cold", "peak_rss_gb", 0.5),
    Target("auc_15k", "15k", "cold", "eval_auc", 0.93),
)


# --- flags -----------------------------------------------------------------------------------


def size_arg(text: str) -> list[Size]:
    """'15k,100k,1M' -> sizes; 15k is the bundled sample, the rest are generated row counts."""
    sizes = []
    for label in text.split(","):
        label = label.strip()
        found = re.fullmatch(r"(\d+(?:\.\d+)?)([kM]?)", label)
        if not found:
            raise argparse.ArgumentTypeError(
                f"expected sizes such as 15k,100k,1M or a row count, got {label!r}"
            )
        rows = int(float(found.group(1)) * {"": 1, "k": 1_000, "M": 1_000_000}[found.group(2)])
        if rows < 1:
            raise argparse.ArgumentTypeError(f"a size must be at least 1 row, got {label!r}")
        sizes.append(Size(label, rows))
    return sizes


def pairs_arg(text: str) -> dict[str, int] | int:
    """'2' (every size) or '15k=5,1M=1' (those sizes; the others keep their default)."""
    try:
        if "=" not in text:
            count = int(text)
            if count < 1:
                raise ValueError
            return count
        pairs = {}
        for part in text.split(","):
            label, _, count = part.partition("=")
            pairs[label.strip()] = int(count)
            if pairs[label.strip()] < 1:
                raise ValueError
        return pairs
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count of at least 1 (e.g. 2) or SIZE=COUNT,... (e.g. 15k=5), got {text!r}"
        ) from None


def pairs_for(size: Size, pairs: dict[str, int] | int | None) -> int:
    if isinstance(pairs, int):
        return pairs
    return (pairs or {}).get(size.label, DEFAULT_PAIRS.get(size.label, 1))


# --- the template ----------------------------------------------------------------------------


def copy_template(template_dir: pathlib.Path, log_path: pathlib.Path) -> None:
    """The TFX CLI's own copy of the taxi template (offline: files of the installed package)."""
    shutil.rmtree(template_dir, ignore_errors=True)
    command = [
        str(pathlib.Path(sys.executable).parent / "tfx"),
        "template",
        "copy",
        "--model=taxi",
        f"--pipeline_name={TEMPLATE_PIPELINE_NAME}",
        f"--destination_path={template_dir}",
    ]
    with log_path.open("w") as log:
        copied = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if copied.returncode != 0:
        raise TemplateSetupFailed(
            f"`{' '.join(command)}` failed (exit {copied.returncode}): {log_path}"
        )


def patch_template(template_dir: pathlib.Path) -> None:
    """Applies TEMPLATE_EDITS; raises TemplateSetupFailed naming every text that is not as expected."""
    problems = []
    for relative, text in TEMPLATE_UNCHANGED:
        if (template_dir / relative).read_text().count(text) != 1:
            problems.append(f"{relative}: expected once, unedited: {text!r}")
    for edit in TEMPLATE_EDITS:
        path = template_dir / edit.path
        source = path.read_text()
        found = source.count(edit.old)
        if found != 1:
            problems.append(f"{edit.path} ({edit.why}): expected once, found {found}: {edit.old!r}")
            continue
        path.write_text(source.replace(edit.old, edit.new))
    pipeline_source = (template_dir / "pipeline" / "pipeline.py").read_text()
    left_out = pipeline_source.count("# components.append(")
    if not problems and left_out != COMPONENTS_LEFT_OUT:
        problems.append(
            f"pipeline/pipeline.py: {left_out} components left commented out after the edits, "
            f"expected {COMPONENTS_LEFT_OUT} (ImportSchemaGen)"
        )
    for relative in {edit.path for edit in TEMPLATE_EDITS}:
        try:
            compile((template_dir / relative).read_text(), relative, "exec")
        except SyntaxError as error:
            problems.append(f"{relative} does not compile after the edits: {error}")
    if problems:
        raise TemplateSetupFailed(
            "the installed TFX taxi template differs from what bench/template_bench.py edits; "
            "review TEMPLATE_EDITS:\n  " + "\n  ".join(problems)
        )


def template_metadata_path(output_dir: pathlib.Path) -> pathlib.Path:
    """Where the template's local_runner.py puts MLMD (its METADATA_PATH, checked unedited)."""
    return output_dir / "tfx_metadata" / TEMPLATE_PIPELINE_NAME / "metadata.db"


def template_evaluation(metadata_path: pathlib.Path) -> dict[str, float]:
    """Every overall-slice metric the template's Evaluator wrote in its latest run, by name."""
    if not metadata_path.exists():
        return {}
    store = metadata.open_store(str(metadata_path))
    run = metadata.latest_run(store, TEMPLATE_PIPELINE_NAME)
    if run is None:
        return {}
    executions = metadata.run_executions(store, TEMPLATE_PIPELINE_NAME, run)
    evaluator = next((e for e in executions if e.node_id == "Evaluator"), None)
    evaluations = evaluator.outputs.get("evaluation", []) if evaluator else []
    if not evaluations:
        return {}
    import tensorflow_model_analysis as tfma

    overall = {}
    for metrics_for_slice in tfma.load_metrics(evaluations[0].uri):
        if metrics_for_slice.slice_key.single_slice_keys:
            continue
        for key_and_value in metrics_for_slice.metric_keys_and_values:
            if key_and_value.key.is_diff or not key_and_value.value.HasField("double_value"):
                continue
            overall[key_and_value.key.name] = round(key_and_value.value.double_value.value, 4)
    return overall


# --- data ------------------------------------------------------------------------------------


def rows_in(csv_files: list[pathlib.Path]) -> int:
    return sum(len(path.read_text().splitlines()) - 1 for path in csv_files)


def prepare_data(
    size: Size, data_dir: pathlib.Path, template_dir: pathlib.Path, seed: int
) -> tuple[pathlib.Path, int]:
    """The size's data root (span-1/ of CSV files, read by both pipelines) and its row count."""
    data_root = data_dir / size.label
    span = data_root / "span-1"
    if size.label == BUNDLED_SIZE:
        # The CLI copied TFX's bundled sample; data/taxi's spans are the same rows split by time.
        source = template_dir / "data" / "data.csv"
        expected = rows_in(sorted(layout.BUNDLED_DATA_ROOT.glob("span-*/*.csv")))
        if rows_in([source]) != expected:
            raise ValueError(f"{source} should hold the {expected} rows of data/taxi's spans")
        span.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, span / "data.csv")
        return data_root, expected
    if not span.exists():
        print(f"generating {size.label} ({size.rows} rows) in {data_root} ...", flush=True)
        generate_spans.generate(data_root, size.rows, seed=seed)
    return data_root, size.rows


# --- runs ------------------------------------------------------------------------------------


def searched_hyperparameters(output_dir: pathlib.Path) -> pathlib.Path | None:
    """The best_hyperparameters.txt of the newest search (Tuner run) in an output folder, if any."""
    metadata_path = layout.OutputLayout(output_dir).metadata_path
    if not metadata_path.exists():
        return None
    store = metadata.open_store(str(metadata_path))
    for run in reversed(metadata.run_contexts(store, OURS_PIPELINE_NAME)):
        for execution in metadata.run_executions(store, OURS_PIPELINE_NAME, run):
            if execution.node_id != node_ids.TUNER:
                continue
            for artifact in execution.outputs.get("best_hyperparameters", []):
                path = pathlib.Path(artifact.uri) / inputs.HYPERPARAMETERS_FILE
                if path.exists():
                    return path
    return None


def measured(
    command: list[str],
    log_path: pathlib.Path,
    metadata_path: pathlib.Path,
    pipeline_name: str,
    env: dict[str, str] | None = None,
    cwd: pathlib.Path | None = None,
) -> dict[str, object]:
    """One pipeline process, measured; its console in `log_path`, per-component figures from MLMD."""
    result = measure(command, env=env, cwd=cwd)
    log_path.write_text(result.pop("console"))
    result.update(component_figures(metadata_path, pipeline_name, result.pop("rss_timeline")))
    result["log"] = str(log_path)
    return result


def run_ours(
    data_root: pathlib.Path, output_dir: pathlib.Path, log_path: pathlib.Path, flags: list[str]
) -> dict[str, object]:
    result = measured(
        runner_command(data_root, output_dir, flags),
        log_path,
        layout.OutputLayout(output_dir).metadata_path,
        OURS_PIPELINE_NAME,
    )
    result["eval_auc"] = eval_auc(output_dir, OURS_PIPELINE_NAME)
    return result


def run_template(
    template_dir: pathlib.Path,
    data_root: pathlib.Path,
    output_dir: pathlib.Path,
    log_path: pathlib.Path,
) -> dict[str, object]:
    output_dir.mkdir(parents=True)
    result = measured(
        [sys.executable, str(template_dir / "local_runner.py")],
        log_path,
        template_metadata_path(output_dir),
        TEMPLATE_PIPELINE_NAME,
        env={
            TEMPLATE_OUTPUT_ENV: str(output_dir),
            TEMPLATE_DATA_ENV: str(data_root / "span-1"),
            **TEMPLATE_KERAS_ENV,
        },
        cwd=template_dir,
    )
    result["metrics"] = template_evaluation(template_metadata_path(output_dir))
    auc = next((v for k, v in result["metrics"].items() if k.lower() == "auc"), None)
    result["eval_auc"] = auc
    return result


def progress(prefix: str, side: str, scenario: str) -> None:
    print(f"{prefix} {side:<8} {scenario:<12} ", end="", flush=True)


def report_run(result: dict, against: dict | None = None) -> None:
    """Finishes the progress line; a failed run gets its log path and last lines."""
    quality = f"AUC {result['eval_auc']}"
    if result["eval_auc"] is None and result.get("metrics"):
        quality += " (" + ", ".join(f"{k} {v}" for k, v in result["metrics"].items()) + ")"
    line = (
        f"{result['wall_s']:7.1f} s  {result['peak_rss_gb']:.2f} GB  {quality}  "
        f"exit {result['exit_status']}  load {result['load_1m_before']}->{result['load_1m_after']}"
    )
    if against and completed(against) and completed(result):
        line += f"  ours/template wall {against['wall_s'] / result['wall_s']:.2f}x"
    print(line, flush=True)
    if not completed(result):
        tail = pathlib.Path(result["log"]).read_text().splitlines()[-LOG_TAIL_LINES:]
        print(f"  FAILED (exit {result['exit_status']}); log: {result['log']}")
        print("  | " + "\n  | ".join(tail), flush=True)


@dataclasses.dataclass
class Bench:
    """Where the runs happen and what they have found so far."""

    workspace: pathlib.Path
    template_dir: pathlib.Path
    runner_flags: list[str]
    keep_outputs: bool
    hyperparameters: pathlib.Path | None = None
    runs: list[dict] = dataclasses.field(default_factory=list)

    def paths(self, name: str) -> tuple[pathlib.Path, pathlib.Path]:
        """A fresh output folder and the log file of the run called `name`."""
        output_dir = self.workspace / "runs" / name
        shutil.rmtree(output_dir, ignore_errors=True)
        log_path = self.workspace / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        return output_dir, log_path

    def record(
        self, result: dict, size: Size, rows: int, pair: int, side: str, scenario: str
    ) -> dict:
        result.update(size=size.label, rows=rows, pair=pair, side=side, scenario=scenario)
        self.runs.append(result)
        return result

    def pair(self, size: Size, rows: int, data_root: pathlib.Path, pair: int, pairs: int) -> None:
        """Ours cold (at 15k then cached and reuse_search), then the template cold."""
        prefix = f"{size.label} pair {pair}/{pairs}:"
        name = f"{size.label}-pair{pair}"
        used = []

        progress(prefix, "ours", "cold")
        ours_dir, log_path = self.paths(f"{name}-ours-cold")
        ours = run_ours(data_root, ours_dir, log_path, self.runner_flags)
        report_run(self.record(ours, size, rows, pair, "ours", "cold"))
        used.append((ours_dir, ours))
        if size.label == BUNDLED_SIZE and ours["exit_status"] == 0:
            used.extend(self.scenarios(size, rows, data_root, pair, prefix, ours_dir))
        elif size.label == BUNDLED_SIZE:
            print(f"{prefix} ours     cached and reuse_search skipped: the cold run failed")

        progress(prefix, "template", "cold")
        template_dir, log_path = self.paths(f"{name}-template-cold")
        template = run_template(self.template_dir, data_root, template_dir, log_path)
        report_run(self.record(template, size, rows, pair, "template", "cold"), against=ours)
        used.append((template_dir, template))

        for output_dir, result in used:
            if result["exit_status"] == 0 and not self.keep_outputs:
                shutil.rmtree(output_dir, ignore_errors=True)

    def scenarios(
        self,
        size: Size,
        rows: int,
        data_root: pathlib.Path,
        pair: int,
        prefix: str,
        cold_dir: pathlib.Path,
    ) -> list[tuple[pathlib.Path, dict]]:
        """Ours cached and cached_rerun (the cold run's folder again), reuse_search (a new folder)."""
        used = []
        if self.hyperparameters is None:
            searched = searched_hyperparameters(cold_dir)
            if searched is not None:
                # Kept outside the run's folder, which is removed after its pair.
                self.hyperparameters = (
                    self.workspace / "hyperparameters" / inputs.HYPERPARAMETERS_FILE
                )
                self.hyperparameters.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(searched, self.hyperparameters)

        for scenario, flags in (
            ("cached", self.runner_flags),
            ("cached_rerun", [*self.runner_flags, "--rerun"]),
        ):
            progress(prefix, "ours", scenario)
            _, log_path = self.paths(f"{size.label}-pair{pair}-ours-{scenario}")
            cached = run_ours(data_root, cold_dir, log_path, flags)
            cached["up_to_date"] = answered_up_to_date(pathlib.Path(cached["log"]).read_text())
            if cached["up_to_date"]:  # no component ran: MLMD's latest run is the cold one
                cached.update(components_s={}, components_peak_rss_gb={})
            report_run(self.record(cached, size, rows, pair, "ours", scenario))

        if self.hyperparameters is None:
            print(f"{prefix} ours     reuse_search skipped: no Tuner output in {cold_dir} yet")
        else:
            progress(prefix, "ours", "reuse_search")
            reuse_dir, log_path = self.paths(f"{size.label}-pair{pair}-ours-reuse_search")
            flags = [
                *self.runner_flags,
                "--no-tune",
                "--hyperparameters",
                str(self.hyperparameters),
            ]
            reused = run_ours(data_root, reuse_dir, log_path, flags)
            report_run(self.record(reused, size, rows, pair, "ours", "reuse_search"))
            used.append((reuse_dir, reused))
        return used


# --- results ---------------------------------------------------------------------------------


def _median(values: list[float], digits: int = 3) -> float | None:
    return round(statistics.median(values), digits) if values else None


def completed(run: dict) -> bool:
    """Every component ran: exit 0, or ours exiting 3 (its model not blessed, so not pushed)."""
    return run["exit_status"] == 0 or (
        run["side"] == "ours" and run["exit_status"] == EXIT_NOT_BLESSED
    )


def medians(runs: list[dict]) -> dict[str, dict[str, dict]]:
    """Per size, per "side/scenario": medians of the completed runs, and how many there were."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        groups.setdefault((run["size"], f"{run['side']}/{run['scenario']}"), []).append(run)
    found: dict[str, dict[str, dict]] = {}
    for (size, group), members in groups.items():
        ok = [run for run in members if completed(run)]
        components = sorted({node for run in ok for node in run["components_s"]})
        found.setdefault(size, {})[group] = {
            "runs": len(members),
            "runs_ok": len(ok),
            "wall_s": _median([run["wall_s"] for run in ok]),
            "peak_rss_gb": _median([run["peak_rss_gb"] for run in ok]),
            "eval_auc": _median([run["eval_auc"] for run in ok if run["eval_auc"] is not None], 4),
            "components_s": {
                node: _median(
                    [run["components_s"][node] for run in ok if node in run["components_s"]]
                )
                for node in components
            },
            "metrics": {
                name: _median([run["metrics"][name] for run in ok if name in run["metrics"]], 4)
                for name in sorted({name for run in ok for name in run.get("metrics", {})})
            },
        }
    return found


def ratios(found: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """Ours (each scenario) over the template's cold median at the same size."""
    result: dict[str, dict[str, dict]] = {}
    for size, groups in found.items():
        template = groups.get("template/cold")
        for group, ours in groups.items():
            if not group.startswith("ours/"):
                continue
            result.setdefault(size, {})[group.split("/", 1)[1]] = {
                figure: (
                    round(ours[figure] / template[figure], 3)
                    if template and ours[figure] and template[figure]
                    else None
                )
                for figure in ("wall_s", "peak_rss_gb")
            }
    return result


def judge_targets(found: dict, ratio: dict) -> list[dict]:
    judged = []
    for target in TARGETS:
        if target.figure == "eval_auc":
            value = found.get(target.size, {}).get(f"ours/{target.scenario}", {}).get("eval_auc")
            met = None if value is None else value >= target.limit
        else:
            value = ratio.get(target.size, {}).get(target.scenario, {}).get(target.figure)
            met = None if value is None else value <= target.limit
        judged.append(
            {**dataclasses.asdict(target), "target": target.describe(), "value": value, "met": met}
        )
    return judged


def _show(value: float | None, form: str) -> str:
    return "-" if value is None else format(value, form)


def print_table(found: dict, ratio: dict, judged: list[dict]) -> None:
    """Medians per size and scenario, ours beside the template's cold runs, then the targets."""
    print(
        f"\n{'size':<6} {'ours':<13} {'ok':>5} {'wall s':>8} {'template':>9} {'ratio':>6}"
        f" {'RSS GB':>7} {'template':>9} {'ratio':>6} {'AUC':>7}"
    )
    for size, groups in found.items():
        template = groups.get("template/cold", {})
        for group, ours in groups.items():
            if not group.startswith("ours/"):
                continue
            scenario = group.split("/", 1)[1]
            figures = ratio[size][scenario]
            print(
                f"{size:<6} {scenario:<13} {ours['runs_ok']:>2}/{ours['runs']:<2} "
                f"{_show(ours['wall_s'], '.1f'):>8} {_show(template.get('wall_s'), '.1f'):>9} "
                f"{_show(figures['wall_s'], '.3f'):>6} {_show(ours['peak_rss_gb'], '.2f'):>7} "
                f"{_show(template.get('peak_rss_gb'), '.2f'):>9} "
                f"{_show(figures['peak_rss_gb'], '.3f'):>6} {_show(ours['eval_auc'], '.4f'):>7}"
            )
        if template:
            metrics = ", ".join(f"{k} {v}" for k, v in template["metrics"].items()) or "none read"
            print(
                f"{size:<6} template cold {template['runs_ok']:>2}/{template['runs']:<2} "
                f"Evaluator, overall slice: {metrics}"
            )
    print("\ntargets (issue 19):")
    for target in judged:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        form = ".4f" if target["figure"] == "eval_auc" else ".3f"
        print(f"  {target['target']:<58} {_show(target['value'], form):>6}  {verdict}")


def plot(found: dict, sizes: list[Size], path: pathlib.Path) -> bool:
    """Median cold wall per size, and per-component seconds at the smallest size; False without
    matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")  # files only; no display on a build machine
    from matplotlib import pyplot

    labels = [size.label for size in sizes if size.label in found]
    figure, (wall_axis, component_axis) = pyplot.subplots(1, 2, figsize=(12, 4.8))
    width = 0.38
    for offset, (side, name) in enumerate(
        (("ours", "this pipeline"), ("template", "TFX template"))
    ):
        # A size without a completed run gets no bar, labelled so (not a 0 s one).
        values = [found[label].get(f"{side}/cold", {}).get("wall_s") or 0 for label in labels]
        positions = [index + (offset - 0.5) * width for index in range(len(labels))]
        bars = wall_axis.bar(positions, values, width, label=f"{name}, cold")
        wall_axis.bar_label(
            bars, labels=[f"{value:.0f} s" if value else "no run" for value in values], fontsize=8
        )
    wall_axis.set_xticks(range(len(labels)), labels)
    wall_axis.set_xlabel("rows")
    wall_axis.set_ylabel("median wall time (s)")
    wall_axis.legend(fontsize=8)

    detail = BUNDLED_SIZE if BUNDLED_SIZE in found else labels[0]
    per_side = {
        side: found[detail].get(f"{side}/cold", {}).get("components_s", {})
        for side in ("ours", "template")
    }

    def longest(node: str) -> float:
        return max(per_side["ours"].get(node) or 0, per_side["template"].get(node) or 0)

    # Resolvers and bookkeeping components take well under a second on both sides.
    nodes = sorted(
        (
            node
            for node in set(per_side["ours"]) | set(per_side["template"])
            if longest(node) >= 0.5
        ),
        key=lambda node: -longest(node),
    )
    for offset, (side, name) in enumerate(
        (("ours", "this pipeline"), ("template", "TFX template"))
    ):
        positions = [index + (offset - 0.5) * width for index in range(len(nodes))]
        values = [per_side[side].get(node) or 0 for node in nodes]
        component_axis.barh(positions, values, width, label=name)
    component_axis.set_yticks(range(len(nodes)), nodes, fontsize=8)
    component_axis.invert_yaxis()
    component_axis.set_xlabel(f"median seconds at {detail}, cold (MLMD; under 0.5 s left out)")
    component_axis.legend(fontsize=8)
    for axis in (wall_axis, component_axis):
        axis.grid(True, alpha=0.3)
    figure.suptitle(
        f"This pipeline and the TFX taxi template on one machine, {machine()['cpus']} cores"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return True


# --- main ------------------------------------------------------------------------------------


@contextlib.contextmanager
def stderr_to(path: pathlib.Path) -> Iterator[None]:
    """Sends this process's file-level stderr to `path` (TensorFlow's C++ start-up lines)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("a") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def import_readers(log_path: pathlib.Path) -> None:
    """Loads what reads the runs' results (TensorFlow, TFMA) now, its noise into `log_path`.

    Before the first run, so every run of both pipelines inherits the same environment
    (quiet_tensorflow's TF_CPP_MIN_LOG_LEVEL) and the console stays clean.
    """
    quiet_tensorflow()
    with stderr_to(log_path):
        import tensorflow_model_analysis  # noqa: F401

        from tfx_pipeline.reporting import run_summary  # noqa: F401


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=size_arg,
        default=size_arg(",".join(DEFAULT_SIZES)),
        help="comma-separated sizes: 15k (the bundled sample) or generated row counts such as "
        f"100k, 1M, 2k (default: {','.join(DEFAULT_SIZES)})",
    )
    parser.add_argument(
        "--pairs",
        type=pairs_arg,
        default=None,
        help="cold pairs (ours, template) per size: N for every size, or SIZE=N,... "
        "(default: 15k=3,100k=3,1M=1, 1 for any other size)",
    )
    parser.add_argument("--seed", type=int, default=0, help="generated data's seed (default: 0)")
    parser.add_argument(
        "--workspace",
        type=pathlib.Path,
        default=None,
        help="where the template copy, data, outputs and logs go, kept (default: a new temporary "
        "folder, removed at the end unless a run failed); generated data found here is reused",
    )
    parser.add_argument(
        "--keep-outputs",
        action="store_true",
        help="keep every run's output folder (default: only failed runs' are kept)",
    )
    parser.add_argument(
        "--out", type=pathlib.Path, default=REPO_ROOT / "bench" / "results" / "template.json"
    )
    return parser


def main() -> int:
    parser = build_parser()
    args, runner_flags = parser.parse_known_args()
    runner_flags = [flag for flag in runner_flags if flag != "--"]
    workspace = args.workspace or pathlib.Path(tempfile.mkdtemp(prefix="template-bench-"))
    workspace = workspace.resolve()
    (workspace / "logs").mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.UTC)
    load_start = os.getloadavg()

    template_dir = workspace / "template"
    try:
        copy_template(template_dir, workspace / "logs" / "template-copy.log")
        patch_template(template_dir)
    except TemplateSetupFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"template: {template_dir} (copied by the TFX CLI, {len(TEMPLATE_EDITS)} edits)")
    import_readers(workspace / "logs" / "bench.log")

    bench = Bench(workspace, template_dir, runner_flags, args.keep_outputs)
    size_rows = {}
    for size in args.sizes:
        data_root, rows = prepare_data(size, workspace / "data", template_dir, args.seed)
        size_rows[size.label] = rows
        pairs = pairs_for(size, args.pairs)
        for pair in range(1, pairs + 1):
            bench.pair(size, rows, data_root, pair, pairs)

    found = medians(bench.runs)
    ratio = ratios(found)
    judged = judge_targets(found, ratio)
    report = {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_1_5_15m": {"start": load_start, "end": os.getloadavg()},
        "sizes": size_rows,
        "ours": {"runner": "local_runner.py --data-root D --output-dir O", "flags": runner_flags},
        "template": {
            "tfx_version": importlib.metadata.version("tfx"),
            "pipeline_name": TEMPLATE_PIPELINE_NAME,
            "edits": [{"file": edit.path, "what": edit.why} for edit in TEMPLATE_EDITS],
            "environment": TEMPLATE_KERAS_ENV,
        },
        "runs": bench.runs,
        "medians": found,
        "ratios_ours_over_template_cold": ratio,
        "targets": judged,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(found, ratio, judged)
    print(f"\nwritten: {args.out}")
    png = args.out.with_suffix(".png")
    if found and plot(found, args.sizes, png):
        print(f"plot:    {png}")
    elif found:
        print("plot skipped: matplotlib is not installed (it is in the dev extras)")

    failed = [run for run in bench.runs if not completed(run)]
    if args.workspace is None and not failed:
        shutil.rmtree(workspace, ignore_errors=True)
    else:
        print(f"workspace kept: {workspace} (logs/ has every run's console)")
    print(f"load average at the end: {load_average()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

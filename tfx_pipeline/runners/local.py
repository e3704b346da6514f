"""The local runner: its flags, their mapping onto PipelineConfig, and one run with LocalDagRunner.

`local_runner.py` is the command; it parses, checks, runs and reports through this module. A run
prints one progress line per component and a summary read back from MLMD; everything TFX,
TensorFlow and Beam print goes to a log file under the output directory.
"""

import argparse
import contextlib
import dataclasses
import datetime
import hashlib
import os
import pathlib
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any, TextIO

from tfx_pipeline import config as config_lib
from tfx_pipeline import inputs, layout
from tfx_pipeline.node_ids import DATA_GATE
from tfx_pipeline.notifications import config as notifications_config
from tfx_pipeline.notifications import events as notification_events
from tfx_pipeline.notifications.notifier import Notifier, describe_outcomes
from tfx_pipeline.operations.output_lock import OutputDirLock, OutputDirLocked
from tfx_pipeline.operations.watch import served_versions
from tfx_pipeline.problems import print_problems, raise_if_any
from tfx_pipeline.runners import portable, settings, up_to_date
from tfx_pipeline.runners.exit_codes import EPILOG, EXIT_FAILED, EXIT_NOT_BLESSED, EXIT_OK

BEAM_MODES = ("in_memory", "multi_threading", "multi_processing")
BEAM_RUNNERS = ("direct", "portable")
# Beam flags --beam-runner portable sets itself (runners/portable.py).
PORTABLE_OWNED_FLAGS = ("--runner", "--job_endpoint", "--environment_type", "--environment_config")

OUTPUTS_EPILOG = """
outputs (under --output-dir): pipeline_root/ (artifacts), metadata.sqlite (MLMD),
logs/run-*.log (full TFX/TF/Beam logs), reports/ (run-*.html run reports, evaluation reports),
serving/<model-name>/<version>/ (unless --serving-dir).
"""


def build_parser(description: str) -> argparse.ArgumentParser:
    """Every flag of `local_runner.py`."""
    parser = argparse.ArgumentParser(
        description=description,
        epilog=EPILOG + OUTPUTS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    paths = parser.add_argument_group("data and outputs")
    paths.add_argument(
        "--data-root",
        type=pathlib.Path,
        default=layout.BUNDLED_DATA_ROOT,
        help="folder of span-N/ folders holding CSV files; the latest span is ingested "
        "(default: %(default)s)",
    )
    paths.add_argument(
        "--schema",
        type=pathlib.Path,
        default=layout.CURATED_SCHEMA,
        help="curated schema.pbtxt, imported with ImportSchemaGen (default: %(default)s)",
    )
    paths.add_argument(
        "--anomaly-policy",
        type=pathlib.Path,
        default=layout.ANOMALY_POLICY,
        help="which anomalies stop the run before Transform (fail) and which only warn "
        "(default: %(default)s)",
    )
    paths.add_argument(
        "--infer-schema",
        action="store_true",
        help="infer the schema from the data with SchemaGen instead of importing --schema",
    )
    paths.add_argument(
        "--output-dir",
        type=pathlib.Path,
        default=layout.DEFAULT_OUTPUT_DIR,
        help="artifacts, MLMD database and logs go here (default: %(default)s)",
    )
    paths.add_argument(
        "--serving-dir",
        type=pathlib.Path,
        default=None,
        help="TF Serving model root; models are pushed to <serving-dir>/<model-name>/<version>/ "
        "(default: <output-dir>/serving)",
    )
    settings.add_name_arguments(
        paths,
        pipeline_name=config_lib.LOCAL_PIPELINE_NAME,
        help_="MLMD pipeline name; runs with one name share cache and history",
    )

    training = settings.add_training_arguments(parser)
    tuning = training.add_mutually_exclusive_group()
    tuning.add_argument(
        "--tune",
        action="store_true",
        help="run the hyperparameter search this run (by default it runs only when no earlier "
        "search exists; a search whose inputs are unchanged is reused from cache)",
    )
    tuning.add_argument(
        "--no-tune",
        action="store_true",
        help="never search: reuse the latest searched hyperparameters, or model defaults",
    )
    training.add_argument(
        "--hyperparameters",
        type=pathlib.Path,
        default=None,
        metavar="PATH",
        help="never search: train with an earlier search's hyperparameters, its "
        f"{inputs.HYPERPARAMETERS_FILE} or the Tuner output folder holding it (e.g. from "
        "another output dir)",
    )
    training.add_argument(
        "--split-buckets",
        type=settings.split_buckets,
        default=(config_lib.default("train_hash_buckets"), config_lib.default("eval_hash_buckets")),
        metavar="TRAIN:EVAL",
        help="hash buckets of the train and eval splits of each span (default: 3:1, a quarter "
        "for evaluation; on very large spans e.g. 19:1 still evaluates on plenty of rows)",
    )

    execution = parser.add_argument_group("execution")
    execution.add_argument(
        "--beam-runner",
        choices=BEAM_RUNNERS,
        default="direct",
        help="direct: Beam's DirectRunner in this process (default); portable: Beam's "
        "PortableRunner with SDK worker processes that have only the project's wheel, as on "
        "Dataflow, so code that works only in-process fails here (slower: docs/performance.md)",
    )
    execution.add_argument(
        "--beam-mode",
        choices=BEAM_MODES,
        default=None,
        help="Beam DirectRunner running mode (default: in_memory; on 2 cores it was faster "
        "and leaner than multi_processing even at 1M rows: docs/performance.md)",
    )
    execution.add_argument(
        "--beam-workers",
        type=settings.non_negative_int,
        default=0,
        help="DirectRunner workers, or SDK worker processes per Beam job with --beam-runner "
        "portable; 0 picks 1 for in_memory and portable, else the number of cores",
    )
    execution.add_argument(
        "--window-spans",
        type=settings.positive_int,
        default=config_lib.default("training_window_spans"),
        help="train on the newest N spans that passed the data gate; only the new span is "
        "ingested and analyzed, older ones come from earlier runs (default: %(default)s)",
    )
    execution.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        metavar="--FLAG=VALUE",
        help="extra Beam pipeline argument, repeatable (e.g. --beam-arg=--direct_num_workers=2)",
    )
    execution.add_argument(
        "--no-cache",
        action="store_true",
        help="rerun every component instead of reusing cached results",
    )
    execution.add_argument(
        "--rerun",
        action="store_true",
        help="run the pipeline even when nothing changed since the last successful run on this "
        "output dir (by default that run's summary is printed instead: every component would "
        "come from cache); TFX then takes every component from its cache and MLMD records the run",
    )
    notifications_config.add_argument(parser.add_argument_group("notifications"))
    watching = parser.add_argument_group("continuous training")
    watching.add_argument(
        "--watch",
        action="store_true",
        help="keep running: rerun the pipeline (same flags) whenever a new span-N folder appears "
        "under --data-root or python -m tfx_pipeline.monitor writes an alert; Ctrl-C stops",
    )
    watching.add_argument(
        "--watch-interval",
        type=settings.bounded(float, low=0.1),
        help="with --watch, seconds between checks (default: 60)",
    )
    watching.add_argument(
        "--max-runs",
        type=settings.non_negative_int,
        default=0,
        help="with --watch, stop after this many pipeline runs (default: 0, no limit)",
    )
    watching.add_argument(
        "--live-max-auc-drop",
        type=settings.fraction,
        default=config_lib.default("live_max_auc_drop"),
        help="when a new span lands, the served version's AUC on it is compared with its "
        "evaluation AUC: a drop is significant (printed, notified as live_quality_drop) when the "
        "whole 95%% interval of the change is below minus this (default: --max-auc-drop)",
    )
    return parser


@dataclasses.dataclass(frozen=True)
class CheckedInputs:
    """What the input checks found: the span to ingest and the policy to apply."""

    span: int
    anomaly_policy_json: str
    notifications: notifications_config.NotificationConfig = dataclasses.field(
        default_factory=notifications_config.NotificationConfig
    )
    hyperparameters: pathlib.Path | None = None  # --hyperparameters, as a file


def check_inputs(args: argparse.Namespace) -> CheckedInputs:
    """The flags' files and combinations checked; raises ConfigProblems naming every problem."""
    problems: list[str] = []
    span = settings.collect(problems, lambda: inputs.latest_span_files(args.data_root))
    if not args.infer_schema:
        if not args.schema.is_file():
            problems.append(
                f"schema file {args.schema} does not exist (pass --schema PATH, or --infer-schema)"
            )
        else:
            settings.collect(problems, lambda: inputs.read_schema(args.schema))
    policy = settings.check_anomaly_policy(problems, args.anomaly_policy)
    for flag in args.beam_arg:
        if not flag.startswith("--"):
            problems.append(f"--beam-arg values must look like --name=value, got {flag!r}")
    if args.beam_runner == "portable":
        problems += portable_problems(args)
    hyperparameters = None
    if args.hyperparameters is not None:
        if args.tune:
            problems.append("--hyperparameters reuses an earlier search: it excludes --tune")
        found = settings.collect(
            problems, lambda: inputs.read_hyperparameters(args.hyperparameters)
        )
        hyperparameters = found[0] if found else None
    if not args.watch and (args.watch_interval is not None or args.max_runs):
        problems.append("--watch-interval and --max-runs only apply with --watch")
    notifications = notifications_config.NotificationConfig()
    if args.notifications is not None:
        notifications = settings.collect(
            problems, lambda: notifications_config.read_config(args.notifications)
        )
    raise_if_any(problems)
    return CheckedInputs(
        span=span[0],
        anomaly_policy_json=policy,
        notifications=notifications,
        hyperparameters=hyperparameters,
    )


def portable_problems(args: argparse.Namespace) -> list[str]:
    """What --beam-runner portable cannot be combined with."""
    problems = []
    if args.beam_mode is not None:
        problems.append(
            "--beam-mode sets the DirectRunner's mode and does not apply with --beam-runner "
            "portable (its SDK workers are processes; --beam-workers sets how many per job)"
        )
    for flag in args.beam_arg:
        if flag.split("=", 1)[0] in PORTABLE_OWNED_FLAGS:
            problems.append(
                f"--beam-arg={flag} conflicts with --beam-runner portable, which sets "
                f"{', '.join(PORTABLE_OWNED_FLAGS)} itself"
            )
    settings.collect(problems, portable.check_source_checkout)
    return problems


def beam_args(args: argparse.Namespace, pool: portable.WorkerPool | None = None) -> tuple[str, ...]:
    """Beam pipeline args from the flags: the DirectRunner's, or the portable `pool`'s.

    The DirectRunner's default (in_memory, one worker) is passed as no args at all: with any
    Beam args, TFX builds a source package of itself before every Beam component (about a
    second each), which only remote runners need.
    """
    if pool is not None:
        return (*pool.beam_args(workers=args.beam_workers or 1), *args.beam_arg)
    mode, workers = direct_runner_mode(args)
    if mode == "in_memory" and workers == 1 and not args.beam_arg:
        return ()
    return (f"--direct_running_mode={mode}", f"--direct_num_workers={workers}", *args.beam_arg)


def direct_runner_mode(args: argparse.Namespace) -> tuple[str, int]:
    """The DirectRunner's running mode and workers from the flags, defaults filled in."""
    mode = args.beam_mode or "in_memory"
    return mode, args.beam_workers or (1 if mode == "in_memory" else (os.cpu_count() or 1))


def describe_beam(args: argparse.Namespace, pool: portable.WorkerPool | None) -> str:
    """The console's line on where the Beam components run."""
    if pool is None:
        mode, workers = direct_runner_mode(args)
        return f"DirectRunner in this process ({mode}, {workers} worker(s))"
    return (
        f"PortableRunner, SDK worker processes from a worker pool (pid {pool.pid}, "
        f"{pool.address}; its log: {display(pool.log_path)})"
    )


def serving_root(args: argparse.Namespace) -> pathlib.Path:
    """The TF Serving model root: --serving-dir, or <output-dir>/serving."""
    return (args.serving_dir or layout.OutputLayout(args.output_dir).serving_dir).resolve()


def model_dir(args: argparse.Namespace) -> pathlib.Path:
    """The served model's folder: <serving root>/<model name>, where the Pusher writes versions."""
    return serving_root(args) / args.model_name


def pipeline_config(
    args: argparse.Namespace,
    checked: CheckedInputs,
    run_tuner: bool,
    pool: portable.WorkerPool | None = None,
) -> config_lib.PipelineConfig:
    """The local run's PipelineConfig from its flags (and the portable runner's worker pool)."""
    output = layout.OutputLayout(args.output_dir.resolve())
    return config_lib.PipelineConfig(
        pipeline_name=args.pipeline_name,
        pipeline_root=str(output.pipeline_root),
        data_root=str(args.data_root.resolve()),
        serving_model_dir=str(model_dir(args)),
        metadata_path=str(output.metadata_path),
        schema_path=None if args.infer_schema else str(args.schema.resolve()),
        module_fingerprint=config_lib.module_fingerprint(),
        anomaly_policy_json=checked.anomaly_policy_json,
        run_tuner=run_tuner,
        hyperparameters_uri=imported_hyperparameters(checked.hyperparameters, output),
        beam_pipeline_args=beam_args(args, pool),
        training_window_spans=args.window_spans,
        train_hash_buckets=args.split_buckets[0],
        eval_hash_buckets=args.split_buckets[1],
        enable_cache=not args.no_cache,
        live_max_auc_drop=args.live_max_auc_drop,
        **settings.training_settings(args),
    )


def imported_hyperparameters(path: pathlib.Path | None, output: layout.OutputLayout) -> str | None:
    """The folder the Importer imports: the file's own when it holds only it, else a copy's.

    TFX's Trainer reads the only file of its hyperparameters folder. A copy is named by its
    content, so importing the same values twice reuses one artifact.
    """
    if path is None:
        return None
    if [p.name for p in path.parent.iterdir()] == [path.name]:
        return str(path.parent.resolve())
    content = path.read_bytes()
    folder = output.root / "hyperparameters" / hashlib.sha256(content).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / inputs.HYPERPARAMETERS_FILE).write_bytes(content)
    return str(folder)


def display(path: pathlib.Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(pathlib.Path.cwd()))
    except ValueError:
        return str(path.resolve())


# Flags that change how a run is carried out, not what it reads or makes.
UNFINGERPRINTED_FLAGS = ("rerun",)


def run_once(
    args: argparse.Namespace, checked: CheckedInputs, script: pathlib.Path | None = None
) -> int:
    """One pipeline run under the output directory's lock; returns the exit status.

    When nothing changed since the last successful run on the output directory (inputs,
    `script` and the code, MLMD and the served models: runners/up_to_date.py), that run's summary
    is printed instead, unless --rerun or --no-cache.
    """
    output = layout.OutputLayout(args.output_dir.resolve())
    lock = OutputDirLock(output.root)
    try:
        lock.acquire()
    except OutputDirLocked as error:
        return print_problems([str(error)])
    print(f"Pipeline '{args.pipeline_name}': span {checked.span} of {display(args.data_root)}")
    try:
        inputs_now = run_inputs(args, script)
        unchanged = unchanged_since(args, inputs_now)
    except BaseException:
        lock.release()
        raise
    if unchanged is not None:
        print("\n".join(up_to_date.describe(unchanged)))
        lock.release()
        return unchanged.exit_code
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_path = output.logs_dir / f"run-{stamp}.log"
    print(f"Full log: {display(log_path)}")

    # TFT and Keras Tuner need tf.keras to be Keras 2 (tf_keras); set before TensorFlow loads.
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    started = time.monotonic()
    from tfx_pipeline.reporting.console import RedirectedOutput

    notifier = Notifier(checked.notifications, pipeline=args.pipeline_name)
    try:
        with RedirectedOutput(str(log_path)) as redirected:
            try:
                with beam_workers(args, log_path, redirected.console) as workers:
                    return _run_and_report(
                        args,
                        checked,
                        workers,
                        redirected.console,
                        output,
                        log_path,
                        started,
                        notifier,
                        inputs_now,
                    )
            except Exception as error:
                notifier.notify(
                    notification_events.RUN_FAILED,
                    f"run failed: {type(error).__name__}: {first_line(error)}",
                    {"span": checked.span, "error": first_line(error), "log": str(log_path)},
                    [f"log: {log_path}"],
                )
                if isinstance(error, portable.WorkerPoolError):
                    redirected.console.write(f"\nFAILED: {error}\n")
                    return EXIT_FAILED
                raise
            finally:
                for line in describe_outcomes(notifier.close()):
                    redirected.console.write(f"Notified:        {line}\n")
    finally:
        lock.release()


def run_inputs(args: argparse.Namespace, script: pathlib.Path | None) -> dict[str, str]:
    """The fingerprint of what a run with these flags reads (runners/up_to_date.py)."""
    flags = {k: v for k, v in vars(args).items() if k not in UNFINGERPRINTED_FLAGS}
    return up_to_date.input_fingerprint(flags, args.data_root, script)


def unchanged_since(
    args: argparse.Namespace, inputs_now: dict[str, str]
) -> up_to_date.Record | None:
    """The last successful run's record when nothing changed since it (a run would only repeat
    it from cache); None when something did, or with --rerun or --no-cache."""
    if args.rerun or args.no_cache:
        return None
    output = layout.OutputLayout(args.output_dir.resolve())
    record = up_to_date.read_record(output)
    state = up_to_date.state_fingerprint(output, model_dir(args))
    return None if up_to_date.changes(record, inputs_now, state) else record


@contextlib.contextmanager
def beam_workers(
    args: argparse.Namespace, log_path: pathlib.Path, console: TextIO
) -> Iterator[portable.WorkerPoolProcess | None]:
    """With --beam-runner portable, the run's SDK worker pool, started in the background and
    stopped after the run; else None. It logs next to the run, as run-<stamp>-beam-workers.log.
    """
    if args.beam_runner != "portable":
        yield None
        return
    console.write("Starting Beam's SDK worker pool (the project's wheel, its own environment)\n")
    with portable.WorkerPoolProcess(log_path.with_name(f"{log_path.stem}-beam-workers.log")) as w:
        yield w


def _run_and_report(
    args: argparse.Namespace,
    checked: CheckedInputs,
    workers: portable.WorkerPoolProcess | None,
    console: TextIO,
    output: layout.OutputLayout,
    log_path: pathlib.Path,
    started: float,
    notifier: Notifier,
    inputs_now: dict[str, str],
) -> int:
    """Builds and runs the pipeline, printing progress, then the summary; the exit status.

    The run's outcome is notified (run failed, data refused, not blessed, pushed) before the
    summary's last lines; delivery goes on in the background. A successful run leaves its
    inputs (`inputs_now`), what it left in MLMD and the model directory, and its summary for the
    next run's up-to-date check; any other outcome removes the last one's.
    """
    console.write("Loading TFX, TensorFlow and Beam...\n")
    console.flush()
    import logging

    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from tfx_pipeline import metadata
    from tfx_pipeline import pipeline as pipeline_lib
    from tfx_pipeline.reporting import evaluation as evaluation_lib
    from tfx_pipeline.reporting import run_summary
    from tfx_pipeline.reporting.console import ComponentProgress

    metadata_path = str(output.metadata_path)
    # An earlier search matters only to a run that may reuse one.
    searched = (
        not args.tune
        and checked.hyperparameters is None
        and metadata.has_hyperparameters(metadata_path, args.pipeline_name)
    )
    if args.tune:
        run_tuner = True
    elif args.no_tune or checked.hyperparameters is not None:
        run_tuner = False
    else:
        run_tuner = not searched
    pool = workers.ready() if workers is not None else None
    config = pipeline_config(args, checked, run_tuner, pool)
    pipeline = pipeline_lib.create_pipeline(config)
    node_ids = [component.id for component in pipeline.components]
    if run_tuner:
        tuning = f"search ({config.tuner_trials} trials)"
    elif checked.hyperparameters is not None:
        tuning = f"from {display(checked.hyperparameters)}"
    elif searched:
        tuning = "reuse the latest search"
    else:
        tuning = "model defaults, no earlier search"
    console.write(f"Beam:            {describe_beam(args, pool)}\n")
    console.write(
        f"Running {len(node_ids)} components (hyperparameters: {tuning}; cache "
        f"{'on' if config.enable_cache else 'off'})\n"
    )

    def state_of(node_id: str) -> str:
        store = metadata.open_store(metadata_path)
        return metadata.latest_node_state(store, args.pipeline_name, node_id)

    progress = ComponentProgress(console, state_of, node_ids)
    logging.getLogger().addHandler(progress)
    served_before = served_versions(model_dir(args))
    failure = failed_node = error_text = None
    try:
        with portable.JobErrors() as job_errors, portable.failing_jobs(workers):
            LocalDagRunner().run(pipeline)
    except Exception as error:  # noqa: BLE001 - reported to the user below, traceback in the log
        traceback.print_exc()
        failed_node = progress.fail_running()
        error_text = (
            portable.job_failure(error, job_errors, workers)
            or f"{type(error).__name__}: {first_line(error)}"
        )
        failure = f"{failed_node or 'the pipeline'} failed: {error_text}"
    finally:
        logging.getLogger().removeHandler(progress)

    summary_lines: list[str] = []

    def say(line: str) -> None:
        console.write(line + "\n")
        summary_lines.append(line)

    console.write("\n")
    say(f"Summary (run took {time.monotonic() - started:.0f} s)")
    summary = run_summary.summarize_run(
        metadata_path, args.pipeline_name, live_max_auc_drop=config.live_max_auc_drop
    )
    if summary is not None:
        for line in run_summary.format_summary(summary):
            say(line)
        if summary.evaluation is not None and summary.evaluation.rows:
            report_path = output.reports_dir / f"evaluation-{log_path.stem}.txt"
            report_path.parent.mkdir(parents=True, exist_ok=True)
            report_path.write_text(
                evaluation_lib.evaluation_report(
                    summary.run_id, summary.blessed, summary.evaluation
                )
            )
            say(f"Evaluation:      {display(report_path)} (every metric on every slice)")
    began = time.time() - (time.monotonic() - started)
    writing = time.monotonic()
    report = write_run_report(
        output, args.pipeline_name, pipeline, log_path, failure, began, config.live_max_auc_drop
    )
    say(f"Report:          {report} ({time.monotonic() - writing:.1f} s)")
    say(f"Full log:        {display(log_path)}")
    if failure:
        code = EXIT_FAILED
    elif summary is not None and False in (summary.blessed, summary.infra_blessed):
        code = EXIT_NOT_BLESSED
    else:
        code = EXIT_OK
    try:
        if code == EXIT_OK:
            up_to_date.write_record(
                output,
                up_to_date.Record(
                    inputs=inputs_now,
                    state=up_to_date.state_fingerprint(output, model_dir(args)),
                    started=datetime.datetime.fromtimestamp(began).isoformat(timespec="seconds"),
                    exit_code=code,
                    summary=summary_lines,
                ),
            )
        else:
            up_to_date.forget(output)
    except OSError as error:  # the run itself is done; only the next run's shortcut is lost
        console.write(f"Not recorded for the next run's up-to-date check: {error}\n")
    facts = {"span": checked.span, "log": str(log_path)}
    notifier.send(outcome_event(code, summary, failed_node, error_text, served_before, facts))
    notifier.send(live_quality_event(summary))
    if failure:
        console.write(f"\nFAILED: {failure}\n")
    return code


def outcome_event(
    code: int,
    summary: Any,
    failed_node: str | None,
    error: str | None,
    served_before: list[int],
    facts: dict[str, Any],
) -> notification_events.Event | None:
    """What a finished run notifies: failed, data refused, not blessed, pushed, or nothing.

    Args:
      code: the run's exit status.
      summary: the run's RunSummary (reporting.run_summary, which loads TFX), or None.
      failed_node: the component that was running when the run failed, if any.
      error: the failure's type and first line, if the run failed.
      served_before: the versions in the serving directory before the run.
      facts: details every event of this run carries (span, log file).

    Returns None for a run that changed nothing (an unchanged or identical model).
    """
    run_id = summary.run_id if summary is not None else None
    states = summary.states if summary is not None else {}
    still = f"still serving version {served_before[-1]}" if served_before else "nothing served"
    if code == EXIT_FAILED:
        failed = [node for node, state in states.items() if state == "FAILED"]
        node = failed_node or (failed[0] if failed else None)
        details = {**facts, "node": node, "error": error}
        lines = [error or "(no error message)", f"log: {facts.get('log')}"]
        if node == DATA_GATE:
            anomalies = list(summary.anomalies or []) if summary is not None else []
            return notification_events.Event(
                notification_events.DATA_REFUSED,
                f"span {facts.get('span')} refused by the data gate; nothing trained, {still}",
                {**details, "anomalies": anomalies},
                lines,
                run_id,
            )
        return notification_events.Event(
            notification_events.RUN_FAILED,
            f"run failed at {node or 'the pipeline'}; {still}",
            details,
            lines,
            run_id,
        )
    if code == EXIT_NOT_BLESSED:
        reasons = []
        if summary.blessed is False:
            evaluation = summary.evaluation
            reasons += (evaluation.blessing_reasons if evaluation else []) or [
                "the Evaluator did not bless the model"
            ]
        if summary.infra_blessed is False:
            reasons += [f"infra validation: {reason}" for reason in summary.infra.split("; ")]
        return notification_events.Event(
            notification_events.NOT_BLESSED,
            f"new model not blessed, nothing pushed; {still}",
            {
                **facts,
                "evaluator_blessed": summary.blessed,
                "infra_blessed": summary.infra_blessed,
                "reasons": reasons,
            },
            reasons,
            run_id,
        )
    pushed = summary.pushed_path if summary is not None else None
    name = os.path.basename(pushed.rstrip("/")) if pushed else ""
    if code != EXIT_OK or not name.isdigit() or int(name) in served_before:
        return None
    version = int(name)
    auc = _overall_auc(summary)
    return notification_events.Event(
        notification_events.PUSHED,
        f"version {version} pushed" + (f" (AUC {auc:.4f})" if auc is not None else ""),
        {
            **facts,
            "version": version,
            "path": pushed,
            "auc": auc,
            "previous_version": served_before[-1] if served_before else None,
        },
        [f"path: {pushed}"] + ([f"replaces version {served_before[-1]}"] if served_before else []),
        run_id,
    )


def _overall_auc(summary: Any) -> float | None:
    """The candidate's AUC on the overall slice, when the Evaluator ran."""
    for row in summary.evaluation.metrics if summary.evaluation else []:
        if row.name == "AUC" and row.candidate is not None:
            return row.candidate.value
    return None


def live_quality_event(summary: Any) -> notification_events.Event | None:
    """A significant drop of the served version's live AUC measured in this run, else None.

    `summary`: the run's RunSummary (reporting.run_summary) or None; its `live` is the served
    version's quality on the new span (reporting/live_quality.py).
    """
    live = summary.live if summary is not None else None
    if live is None or not live.alert:
        return None
    from tfx_pipeline.reporting import live_quality

    evaluated = f", evaluated {live.evaluated_auc.value:.4f}" if live.evaluated_auc else ""
    return notification_events.Event(
        notification_events.LIVE_QUALITY_DROP,
        f"live AUC of version {live.version} dropped on {live_quality.spans_text(live.spans)}: "
        f"{live.auc.value:.4f}{evaluated}",
        dataclasses.asdict(live),
        [live_quality.describe(live)],
        summary.run_id,
    )


def write_run_report(
    output: layout.OutputLayout,
    pipeline_name: str,
    pipeline: Any,
    log_path: pathlib.Path,
    failure: str | None,
    began: float,
    live_max_auc_drop: float | None = None,
) -> str:
    """Writes the run's HTML report; its path for the console, or why it could not be written.

    A report that cannot be written never changes the run's outcome: the reason goes to the
    console and the traceback to the log.
    """
    from tfx_pipeline import metadata
    from tfx_pipeline.reporting.run_report.build import write_report
    from tfx_pipeline.reporting.run_report.facts import PipelineGraph

    graph = PipelineGraph(
        nodes=tuple(component.id for component in pipeline.components),
        edges=tuple(
            (upstream.id, component.id)
            for component in pipeline.components
            for upstream in component.upstream_nodes
        ),
    )
    try:
        store = metadata.open_store(str(output.metadata_path))
        run = metadata.latest_run(store, pipeline_name)
        if run is None or run.create_time_since_epoch < began * 1000:
            return "none (this run recorded nothing in MLMD)"
        path = write_report(
            store,
            output.root,
            pipeline_name,
            run,
            str(log_path),
            failure,
            graph,
            live_max_auc_drop=live_max_auc_drop,
        )
    except Exception as error:  # noqa: BLE001 - the run's outcome stands; traceback in the log
        traceback.print_exc()
        return f"not written: {type(error).__name__}: {first_line(error)}"
    return display(path)


def first_line(error: BaseException) -> str:
    """The first line of an error's message, for the console."""
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"


def watch(
    args: argparse.Namespace,
    argv: list[str],
    runner: pathlib.Path,
    notifications: notifications_config.NotificationConfig | None = None,
) -> int:
    """The `--watch` loop: reruns `runner` with the same flags (minus the watch flags).

    Each run notifies its own outcome (--notifications is passed on); the loop notifies rollbacks.
    """
    from tfx_pipeline.operations import watch as watch_lib

    return watch_lib.watch(
        watch_lib.WatchSettings(
            runner=runner,
            # An alert reruns on the same data: through TFX, recorded in MLMD, never skipped as
            # up to date with an earlier run's summary (and its live line).
            argv=[*watch_lib.runner_argv(argv), *([] if args.rerun else ["--rerun"])],
            data_root=args.data_root,
            output_dir=args.output_dir.resolve(),
            model_dir=model_dir(args),
            interval_seconds=args.watch_interval or watch_lib.DEFAULT_INTERVAL_SECONDS,
            max_runs=args.max_runs,
            pipeline_name=args.pipeline_name,
            notifications=notifications or notifications_config.NotificationConfig(),
        )
    )


def exit_interrupted() -> None:
    """Ends an interrupted run (Ctrl-C) as Python would, by SIGINT, once it has cleaned up.

    By then the lock is released and the worker pool stopped; the interpreter's own exit would
    wait forever for a thread of Beam's job service still waiting on the stopped workers.
    """
    import logging
    import signal

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.write("Interrupted.\n")
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    os._exit(130)  # the shell's status for SIGINT, should the signal not end the process


def exit_now(code: int) -> None:
    """Ends the process without the interpreter's teardown of TensorFlow and Beam.

    By the time a run returns everything is on disk (MLMD commits each execution, the log and
    the served model are closed); the teardown only frees memory, ~2.4 s after every run.
    """
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

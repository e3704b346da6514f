"""Continuous training (`local_runner.py --watch`): rerun the pipeline on a new span or a monitor alert.

Each cycle looks for a span-N folder above the last ingested span and for trigger files that
`python -m tfx_pipeline.monitor` writes on an alert; when either is there it runs the pipeline
once, as a `local_runner.py` subprocess with the same flags, and prints one line saying what the
run did, then the run's live-quality line (the served version's AUC on the new span). A blessed
model is pushed into the serving directory, where a polling server (ours or TF Serving) picks it
up without a restart. A lock on the output directory keeps two runs from ever overlapping,
including a plain `local_runner.py` started by hand. Ctrl-C lets the current run finish and then
stops; a second Ctrl-C stops the run too (a killed run is finished from cache by the next one,
and never leaves a half-pushed model).

With `--notifications`, each run notifies its own outcome and the loop notifies rollbacks: each
cycle it reads the lines `python -m serving.rollback` appended to the model folder's
`rollbacks.jsonl` since the last cycle (operations/rollback_log.py).

This module imports neither TensorFlow nor TFX: the watching process stays small and every run
gets a fresh process.
"""

import dataclasses
import datetime
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from tfx_pipeline import layout, metadata
from tfx_pipeline.config import LOCAL_PIPELINE_NAME
from tfx_pipeline.notifications import events as notification_events
from tfx_pipeline.notifications.config import NotificationConfig
from tfx_pipeline.notifications.notifier import Notifier
from tfx_pipeline.operations.output_lock import OutputDirLock, OutputDirLocked
from tfx_pipeline.operations.rollback_log import RollbackLogFollower
from tfx_pipeline.problems import print_problems
from tfx_pipeline.runners.exit_codes import EXIT_NOT_BLESSED, EXIT_OK, EXIT_USAGE

DEFAULT_INTERVAL_SECONDS = 60.0
CONSUMED = "consumed"
WATCH_FLAGS = {"--watch": 0, "--watch-interval": 1, "--max-runs": 1}
# The label of the runner's live-quality summary line (reporting/live_quality.py LABEL, held to
# it by a test): the served version's AUC on the new span, relayed after the run's line.
RUNNER_LIVE_LABEL = "Live:"


def served_versions(model_dir: pathlib.Path) -> list[int]:
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.name.isdigit())


def pending_triggers(output_dir: pathlib.Path) -> list[pathlib.Path]:
    """Trigger files the monitor wrote and no watch cycle consumed yet, oldest first."""
    folder = layout.OutputLayout(output_dir).triggers_dir
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


def consume(triggers: list[pathlib.Path]) -> list[str]:
    """Moves trigger files into triggers/consumed/ and returns the features they name."""
    import json

    named = []
    for trigger in triggers:
        try:
            content = json.loads(trigger.read_text())
            named += content.get("features_moved", []) + content.get("schema_anomalies", [])
        except (OSError, ValueError):
            named.append(f"unreadable trigger {trigger.name}")
        consumed = trigger.parent / CONSUMED
        consumed.mkdir(exist_ok=True)
        trigger.rename(consumed / trigger.name)
    return sorted(set(named))


def runner_argv(argv: list[str]) -> list[str]:
    """The user's local_runner.py flags without the watch flags, for each run."""
    forwarded, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in WATCH_FLAGS:
            skip = WATCH_FLAGS[name] if "=" not in arg else 0
            continue
        forwarded.append(arg)
    return forwarded


def live_line(run_output: pathlib.Path) -> str | None:
    """The run's live-quality line with its padding squeezed ('Live: version 3 on span 4 ...')."""
    try:
        lines = run_output.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(RUNNER_LIVE_LABEL):
            return f"{RUNNER_LIVE_LABEL} {line[len(RUNNER_LIVE_LABEL) :].strip()}"
    return None


@dataclasses.dataclass(frozen=True)
class WatchSettings:
    runner: pathlib.Path  # local_runner.py
    argv: list[str]  # its flags for each run
    data_root: pathlib.Path
    output_dir: pathlib.Path
    model_dir: pathlib.Path  # <serving-dir>/<model-name>
    interval_seconds: float
    max_runs: int  # 0: no bound
    pipeline_name: str = LOCAL_PIPELINE_NAME
    notifications: NotificationConfig = dataclasses.field(default_factory=NotificationConfig)


def describe_run(code: int, before: list[int], after: list[int], reason_is_new_data: bool) -> str:
    """What a run did, honestly: pushed, unchanged, refused or failed."""
    serving = f"serving version {after[-1]}" if after else "nothing served yet"
    new = sorted(set(after) - set(before))
    if code == EXIT_OK and new:
        return f"pushed version {new[-1]} (the server picks it up at its next poll)"
    if code == EXIT_OK:
        unchanged = f"model unchanged (cached or identical), still {serving}"
        if not reason_is_new_data:
            unchanged += "; no new span, so retraining had no new data to learn from"
        return unchanged
    if code == EXIT_NOT_BLESSED:
        return f"new model not blessed, nothing pushed; still {serving}"
    if code == EXIT_USAGE:
        return f"the run refused its inputs (see the run output); still {serving}"
    if code < 0:
        return f"run stopped by signal {-code}; still {serving}"
    return f"run failed (exit {code}, see the run output); still {serving}"


class Watcher:
    """The watch loop; `stop()` (first Ctrl-C) ends it after the current run.

    With a notifier whose config routes `rollback` events, each cycle notifies the rollbacks
    logged in the model folder since the last cycle.
    """

    def __init__(
        self,
        settings: WatchSettings,
        print_line: Callable[[str], None] = print,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.print_line = print_line
        self.notifier = notifier
        self._rollbacks = None
        if notifier is not None and notifier.config.sinks_for(notification_events.ROLLBACK):
            self._rollbacks = RollbackLogFollower(
                settings.model_dir, layout.OutputLayout(settings.output_dir).notifications_dir
            )
        self._stop = threading.Event()
        self._child: subprocess.Popen | None = None
        self.cycles = 0
        self.runs = 0

    def stop(self, kill_run: bool = False) -> None:
        self._stop.set()
        child = self._child
        if kill_run and child is not None and child.poll() is None:
            child.terminate()

    def on_sigint(self, *_: object) -> None:
        if self._stop.is_set():
            self.print_line("Ctrl-C again: stopping the current run now")
            self.stop(kill_run=True)
        else:
            running = self._child is not None and self._child.poll() is None
            self.print_line(
                "Ctrl-C: stopping after the current run (Ctrl-C again stops it now)"
                if running
                else "Ctrl-C: stopping"
            )
            self.stop()

    def run(self) -> int:
        settings = self.settings
        output = layout.OutputLayout(settings.output_dir)
        last_ingested = metadata.ingested_span(str(output.metadata_path))
        self.print_line(
            f"Watching {settings.data_root} for new spans and {output.triggers_dir} "
            f"for monitor alerts every {settings.interval_seconds:g} s"
            + (f", for at most {settings.max_runs} runs" if settings.max_runs else "")
            + " (Ctrl-C stops)"
        )
        while not self._stop.is_set():
            self.cycles += 1
            self._notify_rollbacks()
            span = layout.latest_span_number(settings.data_root)
            new_span = span is not None and (last_ingested is None or span > last_ingested)
            triggers = pending_triggers(settings.output_dir)
            if not new_span and not triggers:
                self._line(
                    f"nothing new (span {last_ingested} ingested, no monitor alert); "
                    f"next check in {settings.interval_seconds:g} s"
                )
            else:
                reasons = []
                if new_span:
                    reasons.append(f"new span {span}" if last_ingested else f"span {span}")
                if triggers:
                    named = consume(triggers)
                    reasons.append(f"monitor alert ({', '.join(named) or 'no feature named'})")
                code, seconds, before, after, output = self._run_pipeline()
                self.runs += 1
                # A failed run is not retried on the same span every cycle: a new span, a new
                # alert or a run by hand retries it.
                last_ingested = span
                self._line(
                    f"{' + '.join(reasons)} -> ran the pipeline on span {span}: "
                    f"{describe_run(code, before, after, new_span)} ({seconds:.0f} s; "
                    f"output: {output})"
                )
                live = live_line(output)
                if live:
                    self._line(live)
                if settings.max_runs and self.runs >= settings.max_runs:
                    break
            self._stop.wait(settings.interval_seconds)
        self.print_line(f"Watch stopped after {self.cycles} cycles, {self.runs} pipeline runs")
        return 0

    def _notify_rollbacks(self) -> None:
        if self._rollbacks is None or self.notifier is None:
            return
        for event in self._rollbacks.new_events():
            self.notifier.send(event)
            self._line(f"rollback logged: {event.title} (notified)")

    def _line(self, text: str) -> None:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        self.print_line(f"[{stamp}] cycle {self.cycles}: {text}")

    def _run_pipeline(self) -> tuple[int, float, list[int], list[int], pathlib.Path]:
        settings = self.settings
        before = served_versions(settings.model_dir)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        output = layout.OutputLayout(settings.output_dir).logs_dir / (
            f"watch-{stamp}-cycle-{self.cycles}.txt"
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
        started = time.monotonic()
        with open(output, "w") as handle:
            # Own session: a terminal's Ctrl-C reaches the watcher only, which decides.
            self._child = subprocess.Popen(
                [sys.executable, str(settings.runner), *settings.argv],
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            code = self._child.wait()
        self._child = None
        return code, time.monotonic() - started, before, served_versions(settings.model_dir), output


def watch(settings: WatchSettings) -> int:
    """Runs the watch loop under the output-directory lock; returns the process exit status."""
    lock = OutputDirLock(settings.output_dir)
    try:
        lock.acquire()
    except OutputDirLocked as error:
        return print_problems([str(error)])
    notifier = Notifier(settings.notifications, pipeline=settings.pipeline_name)
    watcher = Watcher(settings, print_line=lambda text: print(text, flush=True), notifier=notifier)
    previous = signal.signal(signal.SIGINT, watcher.on_sigint)
    terminate = signal.signal(signal.SIGTERM, lambda *_: watcher.stop(kill_run=True))
    try:
        return watcher.run()
    finally:
        notifier.close()
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, terminate)
        lock.release()

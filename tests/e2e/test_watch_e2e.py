"""End to end, the closed loop: serve, log requests, monitor, retrain on a new span or an alert.

One `local_runner.py --watch` process and one in-process server with request logging, on a small
sample: the first cycle trains and pushes, the server serves it; requests like the training data
raise no alert; a new span dropped into the data root is trained and served with no restart;
requests with tripled fares raise an alert naming fare, whose trigger the watch loop consumes
(and says that without new data the model is unchanged); Ctrl-C ends the loop cleanly.
"""

import pathlib
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from models import features
from serving.client import ServingClient
from serving.request_log import RequestLogSettings
from serving.server import ModelServer
from serving.versions import ModelSpec
from tests.conftest import REPO_ROOT, read_csv_rows, write_sample_spans
from tests.e2e.test_e2e import FAST_FLAGS, SAMPLE_ROWS, runner_command, runner_env
from tfx_pipeline.operations import monitor

pytestmark = pytest.mark.e2e

RUN_TIMEOUT = 600


def wait_for(condition, timeout: float, what: str, watch=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if watch is not None and watch.process.poll() is not None:
            break
        time.sleep(0.2)
    output = "\n".join(watch.lines) if watch is not None else ""
    raise AssertionError(f"timed out waiting for {what}\n{output}")


class WatchProcess:
    """`local_runner.py --watch` as a user starts it, its console lines collected."""

    def __init__(self, workspace, *flags) -> None:
        command = runner_command(
            workspace,
            *FAST_FLAGS,
            *flags,
            "--min-auc",
            "0.6",
            "--max-auc-drop",
            "0.2",
            "--watch",
            "--watch-interval",
            "1",
        )
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=runner_env()
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def run_lines(self) -> list[str]:
        return [line for line in self.lines if "ran the pipeline" in line]

    def finish(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=RUN_TIMEOUT)
        self._reader.join(timeout=10)
        return code


def rows_as_instances(rows):
    return [features.raw_json_instance(row) for row in rows]


@pytest.fixture(scope="module")
def loop(tmp_path_factory, notification_sink):
    workspace = tmp_path_factory.mktemp("watch")
    write_sample_spans(workspace / "data", SAMPLE_ROWS)
    model_dir = workspace / "outputs" / "serving" / "taxi"
    log_dir = workspace / "requests"
    server = ModelServer(
        [ModelSpec("taxi", str(model_dir))],
        port=0,
        poll_seconds=0.5,
        access_log=False,
        # Files complete within half a second, so the monitor sees them at once.
        request_log=RequestLogSettings(directory=str(log_dir), max_file_seconds=0.5),
    ).start()
    watch = WatchProcess(workspace, *notification_sink.flags())
    try:
        yield workspace, server, watch, log_dir, notification_sink
    finally:
        if watch.process.poll() is None:
            watch.process.kill()
        server.stop()


def send(server, rows) -> None:
    client = ServingClient(server.url)
    for start in range(0, len(rows), 25):
        batch = rows_as_instances(rows[start : start + 25])
        client.predict_rows("taxi", batch, signature_name=features.SERVING_RAW_SIGNATURE)


def run_monitor(workspace, log_dir, capsys, *flags) -> tuple[int, str]:
    capsys.readouterr()
    code = monitor.main(
        [
            "--log-dir",
            str(log_dir),
            "--output-dir",
            str(workspace / "outputs"),
            "--data-root",
            str(workspace / "data"),
            *flags,
        ]
    )
    return code, capsys.readouterr().out


def send_window(server, rows, calls_before: int) -> float:
    """Sends `rows`, waits until they are logged in complete files; returns when it started."""
    started = time.time()
    send(server, rows)
    calls = calls_before + (len(rows) + 24) // 25
    wait_for(lambda: logged_requests(server) >= calls, 30, f"{len(rows)} more logged rows")
    time.sleep(1.5)  # the writer completes files older than max_file_seconds
    return started


def prometheus(server) -> str:
    with urllib.request.urlopen(server.url + "/monitoring/prometheus/metrics") as response:
        return response.read().decode()


def schema_violations(server, version: int) -> dict[tuple[str, str], float]:
    """The server's per-request schema check: rows out of the schema by (feature, reason)."""
    found = {}
    pattern = re.compile(
        r"^:tensorflow:serving:rest:request_schema_violation_count\{(.*)\} (\S+)$", re.MULTILINE
    )
    for labels, value in pattern.findall(prometheus(server)):
        named = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if named.get("version") == str(version):
            found[(named["feature"], named["reason"])] = float(value)
    return found


def checked_rows(server, version: int) -> float:
    pattern = re.compile(
        r"^:tensorflow:serving:rest:request_schema_checked_row_count\{(.*)\} (\S+)$", re.MULTILINE
    )
    return sum(
        float(value)
        for labels, value in pattern.findall(prometheus(server))
        if f'version="{version}"' in labels
    )


def window_hours(started: float) -> str:
    """A monitoring window reaching back just before `started`."""
    return f"{(time.time() - started + 0.3) / 3600:.6f}"


def logged_requests(server) -> int:
    """Predict calls logged so far (each carries 25 rows, see send)."""
    return server.request_log.counts().get(("taxi", "logged"), 0)


def test_the_loop_serves_monitors_and_retrains_without_a_server_restart(loop, capsys):
    workspace, server, watch, log_dir, sink = loop
    model_dir = workspace / "outputs" / "serving" / "taxi"
    # 1. The first cycle ingests span 2 and pushes; the running server loads it.
    wait_for(
        lambda: watch.run_lines() and server.manager.loaded_versions("taxi"),
        RUN_TIMEOUT,
        "a first run and version",
        watch,
    )
    (first,) = server.manager.loaded_versions("taxi")
    first_line = watch.run_lines()[0]
    assert "span 2 -> ran the pipeline on span 2: pushed version " + str(first) in first_line

    # 2. While the loop watches, a plain run on the same output dir is refused at once.
    plain = subprocess.run(runner_command(workspace), capture_output=True, text=True, timeout=120)
    assert plain.returncode == 2, plain.stdout + plain.stderr
    assert f"another pipeline run (process {watch.process.pid})" in plain.stderr

    # 3. Requests drawn from the training data: no alert, compared with that version's stats,
    # in windows of several sizes (each window after the first also against the one before).
    rows = read_csv_rows(workspace / "data" / "span-2" / "data.csv")
    random.Random(3).shuffle(rows)
    send(server, rows[:250])
    wait_for(lambda: logged_requests(server) >= 10, 30, "250 logged rows")
    time.sleep(1.5)  # the writer completes files older than max_file_seconds
    code, out = run_monitor(workspace, log_dir, capsys, *sink.flags())
    assert code == monitor.EXIT_OK, out
    assert f"Requests:  250 answered by version {first}" in out
    assert str(workspace / "outputs" / "pipeline_root" / "StatisticsGen") in out
    # 500 rows, then 1,000 more: the 1,000-row window is also compared with the window of the
    # same length before it, which holds (most of) the 500; then one window over all 1,500.
    started = send_window(server, rows[250:750], logged_requests(server))
    latest = send_window(server, rows[750:1750], logged_requests(server))
    code, out = run_monitor(workspace, log_dir, capsys, "--window-hours", window_hours(latest))
    assert code == monitor.EXIT_OK, out
    assert f"Requests:  1000 answered by version {first}" in out
    earlier = re.search(r"vs previous window: (\d+) requests in the previous window", out)
    assert earlier and int(earlier.group(1)) >= 200, out
    code, out = run_monitor(workspace, log_dir, capsys, "--window-hours", window_hours(started))
    assert code == monitor.EXIT_OK, out
    assert f"Requests:  1500 answered by version {first}" in out
    steady = rows[1750:]
    assert not sink.received("monitor_alert")

    # 4. A new span lands: the loop trains it, and the same server serves the new version.
    span_2 = (workspace / "data" / "span-2" / "data.csv").read_text().splitlines(keepends=True)
    staging = workspace / "data" / ".span-3"
    staging.mkdir()
    (staging / "data.csv").write_text(span_2[0] + "".join(reversed(span_2[1:])))
    staging.rename(workspace / "data" / "span-3")
    wait_for(
        lambda: len(watch.run_lines()) >= 2 and server.manager.loaded_versions("taxi") != [first],
        RUN_TIMEOUT,
        "the span-3 version to be served",
        watch,
    )
    (second,) = server.manager.loaded_versions("taxi")
    assert second > first
    assert (
        f"new span 3 -> ran the pipeline on span 3: pushed version {second}"
        in (watch.run_lines()[1])
    )
    status = ServingClient(server.url).model_status("taxi")["model_version_status"]
    assert {s["version"]: s["state"] for s in status}[str(second)] == "AVAILABLE"
    # The labels of span 3 arrived: the served version's live quality on it, before retraining
    # replaced it, next to its evaluation AUC.
    label = f": Live: version {first} on span 3 ("
    wait_for(lambda: any(label in line for line in watch.lines), 30, "the live line", watch)
    live = next(line for line in watch.lines if label in line)
    assert re.search(
        r"\(\d[\d,]* rows\): AUC 0\.\d{4} \[.+\], evaluated 0\.\d{4} \[.+\] on span 2; "
        r"change [+-]\d\.\d{4} \[.+\]: no significant drop \(limit 0\.2\); calibration: "
        r"mean prediction \d\.\d{3}, observed \d\.\d{3} \(ECE \d\.\d{3}\)$",
        live,
    ), live
    # Both pushes were notified, signed.
    pushed = {body["details"]["version"] for body in sink.received("pushed")}
    assert {first, second} <= pushed, pushed

    # 5. Fares times three: an alert naming fare, a trigger, and the loop consumes it honestly.
    shifted = [dict(row, fare=str(float(row["fare"] or 0) * 3)) for row in steady[:250]]
    send_window(server, shifted, logged_requests(server))
    code, out = run_monitor(workspace, log_dir, capsys, *sink.flags())
    assert code == monitor.EXIT_ALERT, out
    assert f"Requests:  250 answered by version {second}" in out
    assert "MOVED (vs training data) fare: Jensen-Shannon" in out
    assert "significant (p < 1e-12 at 250 vs" in out and "moved most: " in out
    assert "not compared (answered by other versions): " + f"{first}: 1750" in out
    assert f"Next:      nothing new to retrain on: version {second} was trained on span 3" in out
    (alert,) = sink.received("monitor_alert")
    assert alert["details"]["features_moved"] == ["fare"] and alert["details"]["version"] == second
    assert "MOVED (vs training data) fare" in alert["text"]
    wait_for(lambda: len(watch.run_lines()) >= 3, RUN_TIMEOUT, "the alert's run", watch)
    third = watch.run_lines()[2]
    assert "monitor alert (fare) -> ran the pipeline on span 3: model unchanged" in third
    assert "no new span" in third
    assert server.manager.loaded_versions("taxi") == [second]
    triggers = workspace / "outputs" / "monitoring" / "triggers"
    assert not list(triggers.glob("*.json")) and list((triggers / "consumed").glob("*.json"))

    # The server checks each row against the schema the Pusher put into the version: the
    # training-like rows broke nothing; a payment type outside the schema's list is counted
    # (and answered as usual).
    assert schema_violations(server, first) == {}
    assert checked_rows(server, first) >= 1750
    odd = [dict(row, payment_type="Bitcoin") for row in steady[250:253]]
    send(server, odd)
    violations = schema_violations(server, second)
    assert violations.get(("payment_type", "unknown_category")) == 3, violations

    # An operator rolls back: the server swaps to the first version, and the watch loop tells
    # the notification sinks who did it and why.
    rolled = subprocess.run(
        [
            sys.executable,
            "-m",
            "serving.rollback",
            "--model_base_path",
            str(model_dir),
            "--reason",
            "e2e: fares look wrong",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    wait_for(lambda: sink.received("rollback"), 30, "the rollback notification", watch)
    (rollback,) = sink.received("rollback")
    assert rollback["details"]["reason"] == "e2e: fares look wrong", rollback
    assert (rollback["details"]["from_version"], rollback["details"]["to_version"]) == (
        second,
        first,
    ), rollback
    wait_for(lambda: server.manager.loaded_versions("taxi") == [first], 30, "the rollback", watch)

    # The watcher never loads TensorFlow: every run is its own process.
    status = (pathlib.Path("/proc") / str(watch.process.pid) / "status").read_text()
    peak_kib = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))
    print(f"watch process peak RSS: {peak_kib / 1024:.0f} MiB")
    assert peak_kib < 300 * 1024, peak_kib

    # 6. Ctrl-C while idle: a clean exit with a closing line.
    assert watch.finish() == 0, "\n".join(watch.lines)
    print("\n".join(watch.lines))
    assert watch.lines[-1] == "Ctrl-C: stopping" or "Watch stopped after" in watch.lines[-1]
    assert any(line.startswith("Watch stopped after") for line in watch.lines)
    assert not (workspace / "outputs" / ".pipeline.lock").read_text()

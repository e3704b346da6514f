"""Serving soak: does the REST server's memory stay flat over many predicts?

Starts `python -m serving` as its own process on free ports, sends predicts one after another
over one keep-alive connection, and reads the server's RSS (VmRSS in /proc/<pid>/status) every
`--sample_every` calls. It prints the samples and the growth in bytes per call over the second
half of the run, after warm-up; a server that holds on to nothing per request stays near 0.

It serves the pushed taxi model (its `serving_raw` signature, rows from the bundled data) when
`--model_dir` holds a version, otherwise a tiny model (y = 2 * sum(x)) built into a temporary
folder. Flags after `--` go to the server, e.g. `-- --enable_batching --no_access_log`.
`--serving_root` runs another checkout's server code, e.g. the one before a change:
`git archive HEAD serving | tar -x -C /tmp/before`, then `--serving_root /tmp/before`.

`--swaps N` soaks hot swaps instead: it serves a copy of the model's newest version, pushes it
again under a new version number N times while one client sends predicts back to back, and
after each swap prints the server's RSS once the retired version's release delay has passed,
the longest predict from the swap until then (the release happens inside that window) and the
longest predict in the second before the push. Every server log line that says a release
collected the retired version's garbage is printed after the table.

    .venv/bin/python bench/serving_soak.py [--calls 20000] [--sample_every 1000] [--rows 1]
        [--vary_rows] [--swaps N] [--model_dir outputs/serving/taxi] [--serving_root DIR]
        [-- SERVER_FLAGS...]

It prints numbers and sets no target: it exits 2 on bad flags, 1 when the server does not
start or stops answering, else 0.
"""

import argparse
import dataclasses
import http.client
import itertools
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from serving_bench import free_port, raw_instances  # noqa: E402 - bench/ is the script's folder

TINY_MODEL_NAME = "tiny"
TINY_INSTANCE = [1.0, 2.0]
STARTUP_SECONDS = 180
# --swaps: how often the server polls, and how long after a swap RSS is read. The manager
# releases a retired version `release_delay_seconds` (1 s) after the swap.
SWAP_POLL_SECONDS = "0.05"
SETTLE_SECONDS = 3.0
SWAP_TIMEOUT_SECONDS = 300


@dataclasses.dataclass(frozen=True)
class Served:
    """What the soak sends: model name, signature and the instances a body's rows cycle through."""

    model_name: str
    signature: str
    instances: list

    def body(self, rows: int) -> bytes:
        instances = [self.instances[i % len(self.instances)] for i in range(rows)]
        return json.dumps({"signature_name": self.signature, "instances": instances}).encode()


def taxi_model(rows: int) -> Served:
    """The pushed model's raw-feature signature, fed rows of the bundled data."""
    from models import features

    return Served("taxi", features.SERVING_RAW_SIGNATURE, raw_instances(rows))


def build_tiny_model(base_path: str) -> None:
    """Writes version 1 of the test suite's tiny model (TensorFlow loads in this process only)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tests.serving.tiny_models import save_tiny

    save_tiny(base_path, 1, scale=2.0)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_server(
    serving_root: str, model_name: str, base_path: str, server_flags: list[str], log: object
) -> tuple[subprocess.Popen, int]:
    """Runs `python -m serving` from `serving_root`; returns the process and its REST port."""
    rest_port = free_port()
    # Port 0 switches REST off, as in tensorflow_model_server; gRPC gets a free port too.
    command = [
        sys.executable, "-m", "serving", "--model_name", model_name,
        "--model_base_path", base_path, "--rest_api_port", str(rest_port),
        "--port", str(free_port()), "--file_system_poll_wait_seconds", "0", *server_flags,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=serving_root, stdout=subprocess.PIPE, stderr=log, text=True
    )
    give_up = threading.Timer(STARTUP_SECONDS, process.kill)
    give_up.start()
    try:
        # The server prints this one line on stdout once it accepts; its logs go to stderr.
        for line in process.stdout:
            if line.startswith("Serving "):
                return process, rest_port
    finally:
        give_up.cancel()
    process.kill()
    process.wait()
    raise RuntimeError(f"the server did not start within {STARTUP_SECONDS} s")


def soak(
    port: int, pid: int, served: Served, args: argparse.Namespace
) -> list[tuple[int, int, float]]:
    """Sends `args.calls` predicts; returns (calls, RSS bytes, seconds) samples."""
    path = f"/v1/models/{served.model_name}:predict"
    sizes = range(1, args.rows + 1) if args.vary_rows else [args.rows]
    bodies = [served.body(rows) for rows in sizes]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    samples = [(0, rss_bytes(pid), 0.0)]
    errors = 0
    started = time.perf_counter()
    for call in range(1, args.calls + 1):
        connection.request("POST", path, body=bodies[call % len(bodies)], headers=headers)
        response = connection.getresponse()
        answer = response.read()
        if response.status != 200:
            errors += 1
            if errors == 1:
                print(f"first error: HTTP {response.status} {answer[:300]!r}", flush=True)
        if call % args.sample_every == 0:
            samples.append((call, rss_bytes(pid), time.perf_counter() - started))
    connection.close()
    if errors:
        print(f"{errors} of {args.calls} predicts failed; their numbers are in the table too")
    return samples


def slope(samples: list[tuple[int, int, float]]) -> float:
    """Least-squares bytes per call through (calls, RSS) samples."""
    xs = [calls for calls, _, _ in samples]
    ys = [rss for _, rss, _ in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def report(samples: list[tuple[int, int, float]], calls: int) -> None:
    first_rss = samples[0][1]
    print(f"\nserver RSS before the first predict: {first_rss / 2**20:.1f} MiB")
    print(f"{'calls':>8} {'RSS MiB':>9} {'growth KiB':>11} {'B/call':>8} {'req/s':>7}")
    for (calls_before, rss_before, t_before), (at, rss, t) in itertools.pairwise(samples):
        per_call = (rss - rss_before) / (at - calls_before)
        rate = (at - calls_before) / (t - t_before) if t > t_before else float("nan")
        print(
            f"{at:>8} {rss / 2**20:>9.1f} {(rss - first_rss) / 1024:>11.0f} "
            f"{per_call:>8.0f} {rate:>7.0f}"
        )
    second_half = [sample for sample in samples if sample[0] >= calls // 2]
    bytes_per_call = slope(second_half)
    print(
        f"\nslope over the second half (calls {second_half[0][0]}-{second_half[-1][0]}, "
        f"least squares): {bytes_per_call:.0f} bytes/call "
        f"({bytes_per_call * 1e6 / 2**20:.0f} MiB per million predicts)"
    )


def push_copy(source: pathlib.Path, base_path: pathlib.Path, version: int) -> None:
    """Copies `source` beside the versions, then renames it into place: an atomic push."""
    staging = base_path / f".{version}.tmp"
    shutil.copytree(source, staging)
    staging.rename(base_path / str(version))


class Traffic:
    """One client sending predicts back to back; keeps (end time, seconds) of every call."""

    def __init__(self, port: int, served: Served, rows: int) -> None:
        self._port = port
        self._path = f"/v1/models/{served.model_name}:predict"
        self._body = served.body(rows)
        self.calls: list[tuple[float, float]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Traffic":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=60)
        headers = {"Content-Type": "application/json"}
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                connection.request("POST", self._path, body=self._body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as error:
                self.errors.append(repr(error))
                connection.close()
                continue
            ended = time.perf_counter()
            if response.status != 200:
                self.errors.append(f"HTTP {response.status} {answer[:300]!r}")
            self.calls.append((ended, ended - started))

    def longest_ms(self, start: float, end: float) -> float:
        """The longest call that ended in [start, end], in milliseconds."""
        return 1000 * max((s for t, s in self.calls if start <= t <= end), default=float("nan"))


def serving_versions(port: int, model_name: str) -> list[int]:
    """The AVAILABLE versions the server reports for `model_name`."""
    url = f"/v1/models/{model_name}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", url)
        status = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    return sorted(
        int(entry["version"])
        for entry in status.get("model_version_status", [])
        if entry["state"] == "AVAILABLE"
    )


def swap_soak(
    port: int, pid: int, served: Served, source: pathlib.Path, base_path: pathlib.Path, args
) -> list[dict]:
    """Pushes `args.swaps` new versions under traffic; one row of figures per swap."""
    rows = []
    with Traffic(port, served, args.rows) as traffic:
        time.sleep(SETTLE_SECONDS)  # the first calls, not a swap
        print(f"RSS before the first swap: {rss_bytes(pid) / 2**20:.1f} MiB", flush=True)
        for version in range(2, args.swaps + 2):
            pushed = time.perf_counter()
            push_copy(source, base_path, version)
            while serving_versions(port, served.model_name) != [version]:
                if time.perf_counter() - pushed > SWAP_TIMEOUT_SECONDS:
                    raise RuntimeError(f"version {version} not served alone after the push")
                time.sleep(0.02)
            swapped = time.perf_counter()
            time.sleep(SETTLE_SECONDS)
            settled = time.perf_counter()
            rows.append(
                {
                    "version": version,
                    "rss": rss_bytes(pid),
                    "load_s": swapped - pushed,
                    "before_ms": traffic.longest_ms(pushed - 1.0, pushed),
                    "release_ms": traffic.longest_ms(swapped, settled),
                }
            )
            print(_swap_row(rows[-1], rows[0]["rss"]), flush=True)
    if traffic.errors:
        print(f"{len(traffic.errors)} predicts failed; the first: {traffic.errors[0]}")
    return rows


def _swap_row(row: dict, first_rss: int) -> str:
    return (
        f"v{row['version']:<4} RSS {row['rss'] / 2**20:7.1f} MiB "
        f"({(row['rss'] - first_rss) / 2**20:+6.1f} since the first swap)  "
        f"load {row['load_s']:5.2f} s  longest predict: 1 s before the push "
        f"{row['before_ms']:6.1f} ms, swap to +{SETTLE_SECONDS:.0f} s {row['release_ms']:6.1f} ms"
    )


def report_swaps(rows: list[dict], log_text: str) -> None:
    growth = [(after["rss"] - before["rss"]) / 2**20 for before, after in itertools.pairwise(rows)]
    if growth:
        print(
            f"\nRSS growth per swap after the first: median {statistics.median(growth):.1f} "
            f"MiB, total {sum(growth):.1f} MiB over {len(growth)} swaps"
        )
    for name in ("before_ms", "release_ms"):
        print(f"median over swaps of {name}: {statistics.median(r[name] for r in rows):.1f} ms")
    collections = [line for line in log_text.splitlines() if "garbage" in line]
    print(f"server log lines about garbage ({len(collections)}):")
    for line in collections:
        print(f"  {line[-160:]}")


def run_swaps(args: argparse.Namespace, served: Served, source: pathlib.Path, scratch: str) -> int:
    """--swaps: serves a copy of `source` as version 1, then pushes it again `args.swaps` times."""
    base_path = pathlib.Path(scratch) / "swapped" / served.model_name
    base_path.mkdir(parents=True)
    push_copy(source, base_path, 1)
    flags = ["--file_system_poll_wait_seconds", SWAP_POLL_SECONDS, "--no_access_log"]
    with open(os.path.join(scratch, "server.log"), "w+") as log:
        try:
            process, port = start_server(
                args.serving_root, served.model_name, str(base_path), flags + args.server_flags, log
            )
        except RuntimeError as error:
            log.seek(0)
            print(f"error: {error}; its log ends:\n{log.read()[-3000:]}", file=sys.stderr)
            return 1
        print(
            f"server pid {process.pid}: {args.swaps} swaps of {source} under 1-client traffic, "
            f"serving code in {args.serving_root}",
            flush=True,
        )
        try:
            rows = swap_soak(port, process.pid, served, source, base_path, args)
        except (OSError, http.client.HTTPException, RuntimeError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        finally:
            process.terminate()
            process.wait(timeout=60)
        log.seek(0)
        report_swaps(rows, log.read())
    return 0


def parse_args() -> argparse.Namespace:
    from serving.__main__ import DEFAULT_BASE_PATH  # light: TensorFlow loads in its main()

    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        usage="%(prog)s [options] [-- SERVER_FLAGS...]",
    )
    parser.add_argument(
        "--calls", type=int, default=20000, help="predicts to send (default: %(default)s)"
    )
    parser.add_argument(
        "--sample_every",
        type=int,
        default=1000,
        help="calls between RSS samples (default: %(default)s)",
    )
    parser.add_argument(
        "--rows", type=int, default=1, help="instances per predict (default: %(default)s)"
    )
    parser.add_argument(
        "--vary_rows", action="store_true", help="cycle through 1..--rows instances per predict"
    )
    parser.add_argument(
        "--swaps",
        type=int,
        default=0,
        help="hot-swap this many new versions instead of a predict soak (default: off)",
    )
    parser.add_argument(
        "--model_dir",
        default=str(REPO_ROOT / DEFAULT_BASE_PATH),
        help="taxi model base path; a tiny model is built when it holds no version",
    )
    parser.add_argument(
        "--serving_root",
        default=str(REPO_ROOT),
        help="folder holding the serving/ package to run (default: this checkout)",
    )
    parser.add_argument("--build_tiny_model", help=argparse.SUPPRESS)
    parser.add_argument("server_flags", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    problems = [
        f"--{name} must be at least 1, got {getattr(args, name)}"
        for name in ("calls", "sample_every", "rows")
        if getattr(args, name) < 1
    ]
    if args.swaps < 0:
        problems.append(f"--swaps must be at least 0, got {args.swaps}")
    if not args.swaps and args.calls < 4 * args.sample_every:
        problems.append(
            f"--calls ({args.calls}) must be at least 4 x --sample_every ({args.sample_every}) "
            "for a slope over the second half"
        )
    if not (pathlib.Path(args.serving_root) / "serving" / "__main__.py").is_file():
        problems.append(f"--serving_root {args.serving_root} has no serving/__main__.py")
    if problems:
        parser.error("\n  ".join(problems))
    return args


def main() -> int:
    args = parse_args()
    if args.build_tiny_model:
        build_tiny_model(args.build_tiny_model)
        return 0
    versions = [p for p in pathlib.Path(args.model_dir).glob("*") if p.name.isdigit()]
    with tempfile.TemporaryDirectory(prefix="serving_soak_") as scratch:
        if versions:
            base_path, served = args.model_dir, taxi_model(args.rows)
        else:
            print(f"no model version under {args.model_dir}: building a tiny model", flush=True)
            base_path = os.path.join(scratch, TINY_MODEL_NAME)
            build = subprocess.run(
                [sys.executable, __file__, "--build_tiny_model", base_path],
                capture_output=True,
                text=True,
            )
            if build.returncode != 0:
                print(f"error: building the tiny model failed:\n{build.stderr[-3000:]}")
                return 1
            served = Served(TINY_MODEL_NAME, "serving_default", [TINY_INSTANCE])
        if args.swaps:
            newest = max(pathlib.Path(base_path).glob("[0-9]*"), key=lambda p: int(p.name))
            return run_swaps(args, served, newest, scratch)
        # Logs (the access log included) go to a file: a full pipe would stall the server.
        with open(os.path.join(scratch, "server.log"), "w+") as log:
            try:
                process, port = start_server(
                    args.serving_root, served.model_name, base_path, args.server_flags, log
                )
            except RuntimeError as error:
                log.seek(0)
                print(f"error: {error}; its log ends:\n{log.read()[-3000:]}", file=sys.stderr)
                return 1
            rows = f"1..{args.rows}" if args.vary_rows else str(args.rows)
            print(
                f"server pid {process.pid} on port {port}: model {served.model_name} from "
                f"{base_path}, signature {served.signature}, {rows} row(s) per predict, "
                f"serving code in {args.serving_root}, server flags {args.server_flags or 'none'}",
                flush=True,
            )
            try:
                samples = soak(port, process.pid, served, args)
            except (OSError, http.client.HTTPException) as error:
                print(f"error: the server stopped answering: {error}", file=sys.stderr)
                return 1
            finally:
                process.terminate()
                process.wait(timeout=60)
    report(samples, args.calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())

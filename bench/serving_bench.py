"""Serving benchmark: latency and throughput over REST and gRPC next to the in-process call.

For 1-row and 64-row predicts (the pushed taxi model's `serving_raw` signature, rows from the
bundled data) at concurrency 1, 8 and 32, with batching off and on, it measures p50/p99 latency
and requests per second over REST and over gRPC, and the in-process signature call as the
floor. The targets' 1-row figures at concurrency 1 come from rounds that alternate the
in-process call, REST and gRPC, so that their ratios compare figures taken under the same load
on a shared machine. The server runs as its own process (`python -m serving`); the load comes
from asyncio clients in this process: for REST a minimal keep-alive HTTP/1.1 client that sends
one pre-encoded request per call, as load tools like wrk or hey do (aiohttp's client cost
0.5-0.8 ms of every call on the 2-core machine, the client's cost, not the server's), for gRPC
grpc.aio.

    .venv/bin/python bench/serving_bench.py [--model_dir outputs/serving/taxi] [--seconds 5]

Targets on the 2-core reference machine: 1-row p50 over HTTP at most 1.4x the in-process call;
1-row p50 over gRPC at most 1.25x the in-process call; with batching on, throughput at
concurrency 32 at least 3x the batching-off figure.
"""

import argparse
import asyncio
import csv
import json
import os
import pathlib
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONCURRENCY = (1, 8, 32)
ROWS = (1, 64)
# Targets (docs/performance.md): 1-row p50 at concurrency 1 over the in-process call, and the
# batching-on over batching-off throughput at concurrency 32.
HTTP_TARGET = 1.4
GRPC_TARGET = 1.25
BATCHING_TARGET = 3.0
# The targets' 1-row figures at concurrency 1 come from this many rounds of in-process, REST and
# gRPC in turn, --seconds split between them.
PAIRED_ROUNDS = 5


def raw_instances(count: int) -> list[dict]:
    """CSV rows of the bundled data as serving_raw JSON instances."""
    from models import features

    with open(REPO_ROOT / "data" / "taxi" / "span-2" / "data.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[:count]
    return [features.raw_json_instance(row) for row in rows]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def figures(latencies: list[float]) -> dict:
    return {
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
    }


def floor_worker(version_dir: str) -> None:
    """Times the signature called directly, the floor HTTP cannot beat, on request: each line
    `rows seconds` read from stdin is answered with the latencies (ms) of a warm loop."""
    from serving.json_tensor import predict_inputs
    from serving.servable import Servable

    servable = Servable(version_dir)
    signature = servable.signature_def("serving_raw")
    inputs = {
        rows: predict_inputs({"instances": raw_instances(rows)}, signature, "serving_raw")[0]
        for rows in ROWS
    }
    print("ready", flush=True)
    for line in sys.stdin:
        rows, seconds = line.split()
        for _ in range(20):
            servable.run("serving_raw", inputs[int(rows)])
        latencies = []
        deadline = time.perf_counter() + float(seconds)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            servable.run("serving_raw", inputs[int(rows)])
            latencies.append((time.perf_counter() - started) * 1000)
        print(json.dumps(latencies), flush=True)


class InProcess:
    """The in-process signature call, in a process of its own (TensorFlow's threads must not
    slow down the load generator) that waits between measurements, so that they can alternate
    with the server's."""

    def __init__(self, model_dir: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--floor_only", "--model_dir", model_dir],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        for line in self.process.stdout:
            if line.strip() == "ready":
                return
        raise RuntimeError("the in-process measurement exited before it was ready")

    def latencies(self, rows: int, seconds: float) -> list[float]:
        self.process.stdin.write(f"{rows} {seconds}\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model_dir: str, batching: bool) -> tuple[subprocess.Popen, str, str]:
    """Starts `python -m serving`; returns it, its REST base URL and its gRPC target."""
    command = [
        sys.executable, "-m", "serving", "--model_name", "taxi", "--model_base_path", model_dir,
        "--rest_api_port", str(free_port()), "--port", str(free_port()), "--no_access_log",
        "--file_system_poll_wait_seconds", "0",
    ]  # fmt: skip
    if batching:
        config = tempfile.NamedTemporaryFile("w", suffix=".config", delete=False)
        config.write(
            "max_batch_size { value: 256 }\nbatch_timeout_micros { value: 1000 }\n"
            "num_batch_threads { value: 1 }\nmax_enqueued_batches { value: 1000 }\n"
        )
        config.close()
        command += ["--enable_batching", "--batching_parameters_file", config.name]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    for line in process.stdout:
        match = re.search(r"REST on (http://\S+) and gRPC on (\S+)", line)
        if match:
            return process, match.group(1), match.group(2)
    raise RuntimeError("the server exited before listening")


def grpc_request(version_dir: str, instances: list[dict]):
    """A PredictRequest of `instances` for serving_raw, typed as the signature says."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    from serving.servable import read_meta_graph

    signature = read_meta_graph(version_dir).signature_def["serving_raw"]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "taxi"
    request.model_spec.signature_name = "serving_raw"
    for name, info in signature.inputs.items():
        values = [row[name] for row in instances]
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=info.dtype))
    return request


async def noop_grpc(target: str, seconds: float) -> dict:
    """p50/p99 of GetModelStatus, one call at a time: what a gRPC call costs before any model work."""
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "taxi"
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        for _ in range(20):
            await stub.GetModelStatus(request, timeout=30)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await stub.GetModelStatus(request, timeout=30)
            latencies.append((time.perf_counter() - started) * 1000)
    return figures(latencies)


async def load_grpc(
    target: str, request, concurrency: int, seconds: float
) -> tuple[dict, list[float]]:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    latencies: list[float] = []
    errors = 0
    deadline = 0.0  # set once the warm-up calls are done
    async with grpc.aio.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    await stub.Predict(request, timeout=30)
                except grpc.aio.AioRpcError:
                    errors += 1
                latencies.append((time.perf_counter() - started) * 1000)

        for _ in range(10):
            await stub.Predict(request, timeout=30)
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    summary = {
        **figures(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "errors": errors,
    }
    return summary, latencies


class _HttpConnection:
    """One keep-alive HTTP/1.1 connection that POSTs the same body again and again."""

    def __init__(self, url: str, body: bytes) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.request = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self) -> int:
        """Sends the request and reads the whole answer; returns its status code."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
        if length is None:
            raise RuntimeError(f"answer without Content-Length: {head[:200]!r}")
        await self.reader.readexactly(int(length.group(1)))
        if re.search(rb"\r\nconnection: *close", head, re.IGNORECASE):
            await self.close()
        return int(head.split(b" ", 2)[1])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()
            self.writer = None


async def load(url: str, body: bytes, concurrency: int, seconds: float) -> tuple[dict, list[float]]:
    latencies: list[float] = []
    errors = 0
    deadline = 0.0  # set once the warm-up calls are done

    async def worker(connection: _HttpConnection) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            if await connection.post() != 200:
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

    connections = [_HttpConnection(url, body) for _ in range(concurrency)]
    try:
        for connection in connections:
            for _ in range(10 if connection is connections[0] else 1):
                await connection.post()
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker(connection) for connection in connections))
        elapsed = time.perf_counter() - started
    finally:
        for connection in connections:
            await connection.close()
    summary = {
        **figures(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "errors": errors,
    }
    return summary, latencies


def predict_body(rows: int) -> bytes:
    return json.dumps({"signature_name": "serving_raw", "instances": raw_instances(rows)}).encode()


def measure_server(
    args: argparse.Namespace,
    version_dir: str,
    batching: bool,
    report: dict,
    in_process: InProcess,
) -> None:
    """Every point against one server, batching on or off, into `report`. With batching off it
    also times a no-op gRPC call, and 1-row calls at concurrency 1 in rounds that alternate the
    in-process call, REST and gRPC, so the targets' ratios compare figures taken under the same
    load (this machine is shared; a figure taken a minute apart can move by half)."""
    mode = "batching_on" if batching else "batching_off"
    process, base_url, grpc_target = start_server(args.model_dir, batching)
    try:
        url = f"{base_url}/v1/models/taxi:predict"
        if not batching:
            report["grpc_noop"] = asyncio.run(noop_grpc(grpc_target, args.seconds))
            print(
                f"  grpc no-op (GetModelStatus) c1  p50 {report['grpc_noop']['p50_ms']:7.3f} ms",
                flush=True,
            )
            paired: dict[str, list[float]] = {"in_process": [], "rest": [], "grpc": []}
            body, request = predict_body(1), grpc_request(version_dir, raw_instances(1))
            seconds = args.seconds / PAIRED_ROUNDS
            for _ in range(PAIRED_ROUNDS):
                paired["in_process"] += in_process.latencies(1, seconds)
                paired["rest"] += asyncio.run(load(url, body, 1, seconds))[1]
                paired["grpc"] += asyncio.run(load_grpc(grpc_target, request, 1, seconds))[1]
            report["paired_1row_c1"] = {name: figures(values) for name, values in paired.items()}
        for transport in ("rest", "grpc"):
            key = f"{transport}_{mode}"
            report[key] = {}
            for rows in ROWS:
                for concurrency in CONCURRENCY:
                    if transport == "rest":
                        result = asyncio.run(
                            load(url, predict_body(rows), concurrency, args.seconds)
                        )
                    else:
                        request = grpc_request(version_dir, raw_instances(rows))
                        result = asyncio.run(
                            load_grpc(grpc_target, request, concurrency, args.seconds)
                        )
                    point = result[0]
                    report[key][f"rows_{rows}_c{concurrency}"] = point
                    print(
                        f"  {key:<17} rows {rows:>2} c{concurrency:<3} "
                        f"p50 {point['p50_ms']:7.3f} ms  p99 {point['p99_ms']:7.3f} ms  "
                        f"{point['requests_per_s']:8.1f} req/s  errors {point['errors']}",
                        flush=True,
                    )
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default=str(REPO_ROOT / "outputs" / "serving" / "taxi"))
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument(
        "--out", type=pathlib.Path, default=REPO_ROOT / "bench" / "results" / "serving.json"
    )
    parser.add_argument("--floor_only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    versions = sorted(
        int(p.name) for p in pathlib.Path(args.model_dir).glob("*") if p.name.isdigit()
    )
    if not versions:
        sys.exit(
            f"error: no model version under {args.model_dir}; run the pipeline first (make run)"
        )
    version_dir = os.path.join(args.model_dir, str(versions[-1]))

    if args.floor_only:
        floor_worker(version_dir)
        return
    report = {"model": version_dir, "seconds_per_point": args.seconds}
    print("in-process signature call ...", flush=True)
    in_process = InProcess(args.model_dir)
    try:
        report["in_process"] = {}
        for rows in ROWS:
            latencies = in_process.latencies(rows, args.seconds)
            report["in_process"][f"rows_{rows}"] = {
                **figures(latencies),
                "calls_per_s": round(len(latencies) / sum(latencies) * 1000, 1),
            }
        for rows, result in report["in_process"].items():
            print(f"  {rows:<8} p50 {result['p50_ms']:7.3f} ms  p99 {result['p99_ms']:7.3f} ms")
        for batching in (False, True):
            measure_server(args, version_dir, batching, report, in_process)
    finally:
        in_process.close()

    paired = report["paired_1row_c1"]
    floor = paired["in_process"]["p50_ms"]
    http = paired["rest"]["p50_ms"]
    grpc_p50 = paired["grpc"]["p50_ms"]
    speedup = (
        report["rest_batching_on"]["rows_1_c32"]["requests_per_s"]
        / report["rest_batching_off"]["rows_1_c32"]["requests_per_s"]
    )
    report["targets"] = {
        "http_over_in_process_1row_p50": round(http / floor, 3),
        "http_over_in_process_target": HTTP_TARGET,
        "grpc_over_in_process_1row_p50": round(grpc_p50 / floor, 3),
        "grpc_over_in_process_target": GRPC_TARGET,
        "grpc_noop_p50_ms": report["grpc_noop"]["p50_ms"],
        "batching_throughput_gain_c32_1row": round(speedup, 2),
        "batching_gain_target": BATCHING_TARGET,
    }
    print(
        f"\n1-row p50 at concurrency 1, {PAIRED_ROUNDS} alternating rounds: in-process "
        f"{floor:.3f} ms, HTTP {http:.3f} ms, gRPC {grpc_p50:.3f} ms\n"
        f"1-row p50 over HTTP / in-process: {http / floor:.2f}x (target <= {HTTP_TARGET}x; "
        f"{http - floor:.3f} ms more)\n"
        f"1-row p50 over gRPC / in-process: {grpc_p50 / floor:.2f}x (target <= {GRPC_TARGET}x; a "
        f"no-op gRPC call alone takes {report['grpc_noop']['p50_ms']:.3f} ms)\n"
        f"batching on/off throughput at c32, 1 row (REST): {speedup:.2f}x "
        f"(target >= {BATCHING_TARGET:g}x)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()

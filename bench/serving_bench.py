"""Serving benchmark: latency and throughput over REST and gRPC next to the in-process call.

For 1-row and 64-row predicts (the pushed taxi model's `serving_raw` signature, rows from the
bundled data) at concurrency 1, 8 and 32, with batching off and on, it measures p50/p99 latency
and requests per second over REST and over gRPC, and the in-process signature call as the
floor. The server runs as its own process (`python -m serving`); the load comes from asyncio
clients (aiohttp for REST, grpc.aio for gRPC), all in the same run.

    .venv/bin/python bench/serving_bench.py [--model_dir outputs/serving/taxi] [--seconds 5]

Targets on the 2-core reference machine: 1-row p50 over HTTP within 1.5 ms of the in-process
call; 1-row p50 over gRPC at most 1.25x the in-process call; with batching on, throughput at
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

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONCURRENCY = (1, 8, 32)
ROWS = (1, 64)


def raw_instances(count: int) -> list[dict]:
    """CSV rows of the bundled data as serving_raw JSON instances."""
    from models import features

    with open(REPO_ROOT / "data" / "taxi" / "span-2" / "data.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[:count]
    return [features.raw_json_instance(row) for row in rows]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def in_process(version_dir: str, seconds: float) -> dict:
    """p50/p99 of calling the signature directly, the floor HTTP cannot beat."""
    from serving.json_tensor import predict_inputs
    from serving.servable import Servable

    servable = Servable(version_dir)
    signature = servable.signature_def("serving_raw")
    results = {}
    for rows in ROWS:
        inputs, _ = predict_inputs({"instances": raw_instances(rows)}, signature, "serving_raw")
        for _ in range(20):
            servable.run("serving_raw", inputs)
        latencies = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            servable.run("serving_raw", inputs)
            latencies.append((time.perf_counter() - started) * 1000)
        results[f"rows_{rows}"] = {
            "p50_ms": round(statistics.median(latencies), 3),
            "p99_ms": round(percentile(latencies, 0.99), 3),
            "calls_per_s": round(len(latencies) / sum(latencies) * 1000, 1),
        }
    return results


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
    return {
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
    }


async def load_grpc(target: str, request, concurrency: int, seconds: float) -> dict:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
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
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "errors": errors,
    }


async def load(url: str, body: bytes, concurrency: int, seconds: float) -> dict:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.post(url, data=body) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(10):
            async with session.post(url, data=body) as response:
                await response.read()
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "errors": errors,
    }


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
        print(json.dumps(in_process(version_dir, args.seconds)))
        return
    report = {"model": version_dir, "seconds_per_point": args.seconds}
    print("in-process signature call ...", flush=True)
    # In its own process: TensorFlow's threads must not slow down the load generator below.
    floor = subprocess.run(
        [sys.executable, __file__, "--floor_only", "--model_dir", args.model_dir,
         "--seconds", str(args.seconds)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    report["in_process"] = json.loads(floor.stdout.strip().splitlines()[-1])
    for rows, figures in report["in_process"].items():
        print(f"  {rows:<8} p50 {figures['p50_ms']:7.3f} ms  p99 {figures['p99_ms']:7.3f} ms")

    for batching in (False, True):
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
            for transport in ("rest", "grpc"):
                key = f"{transport}_{mode}"
                report[key] = {}
                for rows in ROWS:
                    instances = raw_instances(rows)
                    for concurrency in CONCURRENCY:
                        if transport == "rest":
                            body = json.dumps(
                                {"signature_name": "serving_raw", "instances": instances}
                            ).encode()
                            figures = asyncio.run(load(url, body, concurrency, args.seconds))
                        else:
                            request = grpc_request(version_dir, instances)
                            figures = asyncio.run(
                                load_grpc(grpc_target, request, concurrency, args.seconds)
                            )
                        report[key][f"rows_{rows}_c{concurrency}"] = figures
                        print(
                            f"  {key:<17} rows {rows:>2} c{concurrency:<3} "
                            f"p50 {figures['p50_ms']:7.3f} ms  p99 {figures['p99_ms']:7.3f} ms  "
                            f"{figures['requests_per_s']:8.1f} req/s  errors {figures['errors']}",
                            flush=True,
                        )
        finally:
            process.terminate()
            process.wait(timeout=30)

    floor = report["in_process"]["rows_1"]["p50_ms"]
    http = report["rest_batching_off"]["rows_1_c1"]["p50_ms"]
    grpc_p50 = report["grpc_batching_off"]["rows_1_c1"]["p50_ms"]
    speedup = (
        report["rest_batching_on"]["rows_1_c32"]["requests_per_s"]
        / report["rest_batching_off"]["rows_1_c32"]["requests_per_s"]
    )
    report["targets"] = {
        "http_overhead_1row_p50_ms": round(http - floor, 3),
        "http_overhead_target_ms": 1.5,
        "grpc_over_in_process_1row_p50": round(grpc_p50 / floor, 3),
        "grpc_over_in_process_target": 1.25,
        "grpc_noop_p50_ms": report["grpc_noop"]["p50_ms"],
        "batching_throughput_gain_c32_1row": round(speedup, 2),
        "batching_gain_target": 3.0,
    }
    print(
        f"\n1-row p50 over HTTP minus in-process: {http - floor:.3f} ms (target <= 1.5 ms)\n"
        f"1-row p50 over gRPC / in-process: {grpc_p50 / floor:.2f}x (target <= 1.25x; a no-op "
        f"gRPC call alone takes {report['grpc_noop']['p50_ms']:.3f} ms)\n"
        f"batching on/off throughput at c32, 1 row (REST): {speedup:.2f}x (target >= 3x)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()

"""Warmup benchmark: the first request to a hot-swapped version, with and without a warmup file.

Serves a copy of the pushed taxi model (the newest version under `--model_dir`, which `make run`
writes to outputs/serving/taxi) with `python -m serving` in its own process, then for each
round pushes the same version folder again under a new version number, once with
`assets.extra/tf_serving_warmup_requests` (one PredictLog: a 1-row `serving_raw` request) and
once without. When the new version is AVAILABLE it sends the same 1-row gRPC Predict to that
version: the first call's latency, then the median of `--steady_calls` more (steady state).
Without warmup the first call pays the version's lazy initialization; with it, warmup paid it
while the version was still LOADING.

    .venv/bin/python bench/warmup_bench.py [--model_dir outputs/serving/taxi] [--rounds 5]
        [--steady_calls 200]

It prints one row per swap, the medians per mode and the ratios, writes them to
bench/results/warmup.json, and sets no target. It exits 2 on bad flags or when there is no
model (run the pipeline first: `make run`), 1 when the server fails.
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from runs import load_average, machine  # noqa: E402 - bench/ is the script's folder
from serving_bench import grpc_request, raw_instances  # noqa: E402
from serving_soak import start_server  # noqa: E402

MODEL_NAME = "taxi"
POLL_SECONDS = "0.05"
SWAP_TIMEOUT_SECONDS = 300
MODES = ("warmup", "no_warmup")


def write_warmup_file(version_dir: pathlib.Path, request) -> None:
    """One PredictLog of `request`, where TF Serving (and our server) look for it."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    record = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )
    folder = version_dir / "assets.extra"
    folder.mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(folder / "tf_serving_warmup_requests")) as writer:
        writer.write(record.SerializeToString())


def push(source: pathlib.Path, base_path: pathlib.Path, version: int, request) -> None:
    """Copies `source` as `version`, with a warmup file when `request` is given; lands at once."""
    staging = base_path / f".{version}.tmp"
    shutil.copytree(source, staging)
    if request is not None:
        write_warmup_file(staging, request)
    staging.rename(base_path / str(version))


def wait_available(rest_url: str, version: int) -> float:
    """Seconds until `version` is AVAILABLE (load and warmup), from its REST status."""
    started = time.perf_counter()
    url = f"{rest_url}/v1/models/{MODEL_NAME}/versions/{version}"
    while time.perf_counter() - started < SWAP_TIMEOUT_SECONDS:
        try:
            status = json.load(urllib.request.urlopen(url, timeout=30))
        except urllib.error.HTTPError:
            status = None  # not listed yet
        if status is not None:
            (entry,) = status["model_version_status"]
            if entry["state"] == "AVAILABLE":
                return time.perf_counter() - started
            if entry["state"] == "END":
                raise RuntimeError(f"version {version} failed to load: {entry['status']}")
        time.sleep(0.005)
    raise RuntimeError(f"version {version} not AVAILABLE after {SWAP_TIMEOUT_SECONDS} s")


def time_version(stub, request, version: int, steady_calls: int) -> tuple[float, float]:
    """Milliseconds of the first Predict to `version`, and the median of the next calls."""
    to_version = type(request)()
    to_version.CopyFrom(request)
    to_version.model_spec.version.value = version

    def call() -> float:
        started = time.perf_counter()
        stub.Predict(to_version, timeout=60)
        return (time.perf_counter() - started) * 1000

    first = call()
    steady = statistics.median(call() for _ in range(steady_calls))
    return first, steady


def run(args: argparse.Namespace, source: pathlib.Path, scratch: str) -> list[dict]:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    base_path = pathlib.Path(scratch) / MODEL_NAME
    base_path.mkdir()
    shutil.copytree(source, base_path / "1")
    request = grpc_request(str(source), raw_instances(1))
    results = []
    with open(os.path.join(scratch, "server.log"), "w+") as log:
        process, rest_port = start_server(
            str(REPO_ROOT),
            MODEL_NAME,
            str(base_path),
            ["--no_access_log", "--file_system_poll_wait_seconds", POLL_SECONDS],
            log,
        )
        rest_url = f"http://127.0.0.1:{rest_port}"
        try:
            grpc_port = _grpc_port(log)
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                time_version(stub, request, 1, 20)  # the connection, not a new version
                version = 1
                for round_number in range(1, args.rounds + 1):
                    for mode in MODES:
                        version += 1
                        push(source, base_path, version, request if mode == "warmup" else None)
                        swap_seconds = wait_available(rest_url, version)
                        first, steady = time_version(stub, request, version, args.steady_calls)
                        results.append(
                            {
                                "round": round_number,
                                "mode": mode,
                                "version": version,
                                "swap_s": round(swap_seconds, 3),
                                "first_ms": round(first, 3),
                                "steady_p50_ms": round(steady, 3),
                            }
                        )
                        print(_row(results[-1]), flush=True)
        finally:
            process.terminate()
            process.wait(timeout=60)
        log.seek(0)
        replays = log.read().count("Finished reading warmup data")
    expected = args.rounds
    if replays != expected:
        raise RuntimeError(f"the server replayed {replays} warmup files, expected {expected}")
    return results


def _grpc_port(log) -> int:
    """The gRPC port from the server's "Running gRPC ModelServer at host:port" log line."""
    log.flush()
    log.seek(0)
    for line in log.read().splitlines():
        if "Running gRPC ModelServer at " in line:
            return int(line.rsplit(":", 1)[1].split()[0])
    raise RuntimeError("the server logged no gRPC address")


def _row(result: dict) -> str:
    ratio = result["first_ms"] / result["steady_p50_ms"]
    return (
        f"{result['round']:>5} {result['mode']:<10} v{result['version']:<4} "
        f"swap {result['swap_s']:6.2f} s  first {result['first_ms']:9.2f} ms  "
        f"steady p50 {result['steady_p50_ms']:7.3f} ms  first/p50 {ratio:7.1f}x"
    )


def summarize(results: list[dict]) -> dict:
    summary = {}
    for mode in MODES:
        rows = [result for result in results if result["mode"] == mode]
        first = statistics.median(row["first_ms"] for row in rows)
        steady = statistics.median(row["steady_p50_ms"] for row in rows)
        summary[mode] = {
            "first_ms_median": round(first, 3),
            "steady_p50_ms_median": round(steady, 3),
            "first_over_p50": round(first / steady, 2),
        }
    summary["first_no_warmup_over_first_warmup"] = round(
        summary["no_warmup"]["first_ms_median"] / summary["warmup"]["first_ms_median"], 2
    )
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default=str(REPO_ROOT / "outputs" / "serving" / MODEL_NAME))
    parser.add_argument("--rounds", type=int, default=5, help="swaps per mode (default: 5)")
    parser.add_argument(
        "--steady_calls", type=int, default=200, help="calls after the first (default: 200)"
    )
    parser.add_argument(
        "--out", type=pathlib.Path, default=REPO_ROOT / "bench" / "results" / "warmup.json"
    )
    args = parser.parse_args()
    problems = [
        f"--{name} must be at least 1, got {getattr(args, name)}"
        for name in ("rounds", "steady_calls")
        if getattr(args, name) < 1
    ]
    versions = sorted(
        (int(p.name) for p in pathlib.Path(args.model_dir).glob("*") if p.name.isdigit()),
    )
    if not versions:
        problems.append(
            f"no model version under {args.model_dir}; run the pipeline first (make run)"
        )
    if problems:
        parser.error("\n  ".join(problems))
    source = pathlib.Path(args.model_dir) / str(versions[-1])
    print(
        f"model {source}; {args.rounds} rounds of a swap with and without warmup; "
        f"1-row gRPC Predict on serving_raw; load average {load_average()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="warmup_bench_") as scratch:
        try:
            results = run(args, source, scratch)
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    summary = summarize(results)
    print(f"\n{'':<10} {'first request':>14} {'steady p50':>11} {'first/p50':>10}")
    for mode in MODES:
        figures = summary[mode]
        print(
            f"{mode:<10} {figures['first_ms_median']:>11.2f} ms {figures['steady_p50_ms_median']:>8.3f} ms "
            f"{figures['first_over_p50']:>9.1f}x"
        )
    print(
        "first request without warmup / with warmup: "
        f"{summary['first_no_warmup_over_first_warmup']:.1f}x (medians over {args.rounds} rounds)"
    )
    report = {
        "model": str(source),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "load_average_after": load_average(),
        "rounds": results,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

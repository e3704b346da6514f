"""Warmup benchmark: the first request to a hot-swapped version, with and without a warmup file.

Serves a copy of the pushed taxi model (the newest version under `--model_dir`, which `make run`
writes to outputs/serving/taxi) with `python -m serving` in its own process, then for each
round pushes the same version folder again under a new version number, once with
`assets.extra/tf_serving_warmup_requests` and once without (a warmup file the pushed model
already carries is left out of both copies). The file holds what clients send, as the
pipeline's InfraValidator writes it: one 1-row request to `serving_default` (a tf.Example)
and one to `serving_raw`.

The swap happens under traffic, as in production: one client sends 1-row gRPC Predicts to
`serving_raw` without a version, back to back, on a channel that is connected and has talked
to the previous version. The first call the new version answers is the first request after
the swap; the median of the `--steady_calls` calls after it is the steady state. A request
that follows an idle pause is slower on its own (cold caches, sleeping threads: about 1.3-1.6x
a back-to-back call here, on a version long warm), so the first request must not follow one.
Without warmup the first call pays the version's lazy initialization; with it, warmup paid it
while the version was still LOADING.

    .venv/bin/python bench/warmup_bench.py [--model_dir outputs/serving/taxi] [--rounds 20]
        [--steady_calls 200]

It prints one row per swap; per mode the medians and the spread of first / steady p50 over
the rounds, writes them to bench/results/warmup.json, and sets no target. It exits 2 on bad flags or when there is no
model (run the pipeline first: `make run`), 1 when the server fails.
"""

import argparse
import csv
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
WARMUP_FILE_NAME = "tf_serving_warmup_requests"
STATUS_CHECK_SECONDS = 2.0


def first_csv_row() -> dict[str, str]:
    """The bundled data's first row, the one serving_bench's raw_instances(1) sends."""
    with open(REPO_ROOT / "data" / "taxi" / "span-2" / "data.csv", newline="") as handle:
        return next(csv.DictReader(handle))


def examples_request(csv_row: dict[str, str]):
    """A 1-row PredictRequest for serving_default: the row as a tf.Example, as ExampleGen
    stores it (empty cells left out)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    from models import features

    example = tf.train.Example()
    for key, kind in features.RAW_FEATURE_DTYPES.items():
        text = csv_row.get(key, "")
        if not text:
            continue
        feature = example.features.feature[key]
        if kind == "string":
            feature.bytes_list.value.append(text.encode())
        elif kind == "int":
            feature.int64_list.value.append(int(float(text)))
        else:
            feature.float_list.value.append(float(text))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    request.model_spec.signature_name = features.SERVING_EXAMPLES_SIGNATURE
    request.inputs[features.EXAMPLES_INPUT].CopyFrom(
        tf.make_tensor_proto([example.SerializeToString()], dtype=tf.string)
    )
    return request


def write_warmup_file(version_dir: pathlib.Path, requests: list) -> None:
    """One PredictLog per request, where TF Serving (and our server) look for them."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    folder = version_dir / "assets.extra"
    folder.mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(folder / WARMUP_FILE_NAME)) as writer:
        for request in requests:
            record = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(record.SerializeToString())


def push(
    source: pathlib.Path, base_path: pathlib.Path, version: int, warmup_requests: list | None
) -> None:
    """Copies `source` as `version` with a warmup file of `warmup_requests` (none when None);
    lands at once."""
    staging = base_path / f".{version}.tmp"
    shutil.copytree(source, staging, ignore=shutil.ignore_patterns(WARMUP_FILE_NAME))
    if warmup_requests is not None:
        write_warmup_file(staging, warmup_requests)
    staging.rename(base_path / str(version))


def check_not_failed(rest_url: str, version: int) -> None:
    """Raises when `version`'s REST status says its load failed."""
    url = f"{rest_url}/v1/models/{MODEL_NAME}/versions/{version}"
    try:
        status = json.load(urllib.request.urlopen(url, timeout=30))
    except urllib.error.HTTPError:
        return  # not listed yet
    (entry,) = status["model_version_status"]
    if entry["state"] == "END":
        raise RuntimeError(f"version {version} failed to load: {entry['status']}")


def time_swap(stub, request, rest_url: str, version: int, steady_calls: int) -> tuple:
    """Sends `request` (no version: the latest serves it) back to back until `version` answers.

    Returns the seconds from the first call until then (load and warmup), the milliseconds of
    the first call `version` answered, and the median of the `steady_calls` calls after it.
    """

    def call() -> tuple[float, int]:
        started = time.perf_counter()
        response = stub.Predict(request, timeout=60)
        return (time.perf_counter() - started) * 1000, response.model_spec.version.value

    started = last_check = time.perf_counter()
    while True:
        first, answered_by = call()
        if answered_by == version:
            break
        now = time.perf_counter()
        if now - started > SWAP_TIMEOUT_SECONDS:
            raise RuntimeError(f"version {version} not serving after {SWAP_TIMEOUT_SECONDS} s")
        if now - last_check > STATUS_CHECK_SECONDS:
            check_not_failed(rest_url, version)
            last_check = now
    swap_seconds = time.perf_counter() - started
    steady = statistics.median(call()[0] for _ in range(steady_calls))
    return swap_seconds, first, steady


def run(args: argparse.Namespace, source: pathlib.Path, scratch: str) -> list[dict]:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    base_path = pathlib.Path(scratch) / MODEL_NAME
    base_path.mkdir()
    push(source, base_path, 1, None)
    request = grpc_request(str(source), raw_instances(1))
    warmup_requests = [examples_request(first_csv_row()), request]
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
                for _ in range(20):  # the connection and version 1, not a new version
                    stub.Predict(request, timeout=60)
                version = 1
                for round_number in range(1, args.rounds + 1):
                    for mode in MODES:
                        version += 1
                        push(
                            source,
                            base_path,
                            version,
                            warmup_requests if mode == "warmup" else None,
                        )
                        swap_seconds, first, steady = time_swap(
                            stub, request, rest_url, version, args.steady_calls
                        )
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
    """Per mode: medians of the first call and steady p50, and first / p50 of each round
    (median, quartiles, extremes)."""
    summary = {}
    for mode in MODES:
        rows = [result for result in results if result["mode"] == mode]
        first = statistics.median(row["first_ms"] for row in rows)
        steady = statistics.median(row["steady_p50_ms"] for row in rows)
        ratios = sorted(row["first_ms"] / row["steady_p50_ms"] for row in rows)
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        summary[mode] = {
            "first_ms_median": round(first, 3),
            "steady_p50_ms_median": round(steady, 3),
            "first_over_p50": round(first / steady, 2),
            "round_ratio_median": round(statistics.median(ratios), 2),
            "round_ratio_p25": round(quartiles[0], 2),
            "round_ratio_p75": round(quartiles[2], 2),
            "round_ratio_min": round(ratios[0], 2),
            "round_ratio_max": round(ratios[-1], 2),
        }
    summary["first_no_warmup_over_first_warmup"] = round(
        summary["no_warmup"]["first_ms_median"] / summary["warmup"]["first_ms_median"], 2
    )
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default=str(REPO_ROOT / "outputs" / "serving" / MODEL_NAME))
    parser.add_argument("--rounds", type=int, default=20, help="swaps per mode (default: 20)")
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
        f"1-row gRPC Predicts to serving_raw; load average {load_average()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="warmup_bench_") as scratch:
        try:
            results = run(args, source, scratch)
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    summary = summarize(results)
    print(
        f"\n{'':<10} {'first request':>14} {'steady p50':>11} {'first/p50':>10}   "
        "first/p50 per round: median [p25-p75] (min-max)"
    )
    for mode in MODES:
        figures = summary[mode]
        print(
            f"{mode:<10} {figures['first_ms_median']:>11.2f} ms {figures['steady_p50_ms_median']:>8.3f} ms "
            f"{figures['first_over_p50']:>9.2f}x   {figures['round_ratio_median']:.2f}x "
            f"[{figures['round_ratio_p25']:.2f}-{figures['round_ratio_p75']:.2f}] "
            f"({figures['round_ratio_min']:.2f}-{figures['round_ratio_max']:.2f})"
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

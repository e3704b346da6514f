"""False alarms of the InfraValidator's latency budget: one model served twice, judged against itself.

After `make run`, serves the pushed taxi model as candidate and as baseline in one
`python -m serving` and repeats the InfraValidator's latency measurement `--rounds` times,
counting how often the candidate's p99 is over budget (50% above the baseline's) in one
measurement and in both of a pair (the executor measures again and fails only on a repeat):

    .venv/bin/python bench/infra_latency_false_alarms.py [--rounds N] [--output-dir DIR]
"""

import argparse
import glob
import os
import shutil
import sys
import tempfile


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=60, help="measurements (default: %(default)s)"
    )
    parser.add_argument("--output-dir", default="outputs", help="the runner's --output-dir")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error(f"--rounds must be at least 2, got {args.rounds}")
    versions = sorted(glob.glob(f"{args.output_dir}/serving/taxi/[0-9]*"))
    splits = sorted(
        glob.glob(f"{args.output_dir}/pipeline_root/CsvExampleGen/examples/*/Split-eval")
    )
    if not versions or not splits:
        parser.error(f"no pushed taxi model and eval split under {args.output_dir}; run `make run`")

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf

    from tfx_pipeline.components.infra_validator import model_server, requests, validation

    work = tempfile.mkdtemp(prefix="infra-latency-")
    served = []
    for name in ("taxi", "taxi-baseline"):
        shutil.copytree(versions[-1], f"{work}/models/{name}/1")
        served.append(model_server.ServedModel(name, f"{work}/models/{name}"))
    loaded = tf.saved_model.load(versions[-1])
    signatures = {n: loaded.signatures[n] for n in ("serving_default", "serving_raw")}
    probes = requests.build_probes(signatures, requests.read_examples(splits[-1], 50))
    results = []
    try:
        with model_server.ModelServer("python", served, work) as server:
            server.wait_until_available(300)
            for index in range(args.rounds):
                latency = validation.measure_latency(
                    probes, server.grpc_target, ["taxi", "taxi-baseline"]
                )
                candidate, baseline = latency["taxi"], latency["taxi-baseline"]
                over = validation.latency_problem(candidate, baseline, 0.5) is not None
                results.append(over)
                print(
                    f"{index:>3}  p99 {candidate.p99_ms:6.2f} ms vs {baseline.p99_ms:6.2f} ms  "
                    f"{'OVER BUDGET' if over else 'ok'}",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pairs = sum(a and b for a, b in zip(results[::2], results[1::2], strict=False))
    print(
        f"over budget in {sum(results)}/{len(results)} measurements; "
        f"in both of a pair in {pairs}/{len(results) // 2} pairs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Request schema check benchmark: what checking a predict's rows against the schema costs.

Loads the newest pushed taxi version under `--model_dir` (`make run` writes outputs/serving/taxi)
in this process and times predict calls through the server's model layer (serving/inference.py,
unbatched, no HTTP), with the version's rows checked against `--schema` and without, for 1-row
and 100-row requests of real rows from `--data` in both forms clients send: raw features
(`serving_raw`) and serialized tf.Examples (`serving_default`). Checked and unchecked calls
alternate in rounds, so both see the same machine load; the table gives per-call medians, the
difference and the check alone.

    .venv/bin/python bench/request_schema_bench.py [--model_dir outputs/serving/taxi]
        [--schema data/schema/schema.pbtxt] [--data data/taxi/span-1/data.csv] [--calls 400]

It prints the table and sets no target; it exits 2 when there is no model or data.
"""

import argparse
import csv
import os
import pathlib
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", default=str(REPO / "outputs" / "serving" / "taxi"))
    parser.add_argument("--schema", default=str(REPO / "data" / "schema" / "schema.pbtxt"))
    parser.add_argument("--data", default=str(REPO / "data" / "taxi" / "span-1" / "data.csv"))
    parser.add_argument("--calls", type=int, default=400, help="calls per case and mode")
    return parser.parse_args()


def requests(rows: list[dict[str, str]], schema_path: str) -> dict[str, tuple[str, dict]]:
    """(signature, inputs) per request form, for these CSV rows: raw features as the feature
    contract writes them, tf.Examples as CsvExampleGen stores them (every column, typed as the
    schema says, an empty cell as an empty value list), which is what InfraValidator sends."""
    import numpy as np
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    from models import features

    schema = text_format.Parse(pathlib.Path(schema_path).read_text(), schema_pb2.Schema())
    types = {feature.name: feature.type for feature in schema.feature}

    instances = [features.raw_json_instance(row) for row in rows]
    raw = {}
    for key, kind in features.RAW_FEATURE_DTYPES.items():
        values = [instance[key] for instance in instances]
        if kind == "string":
            raw[key] = np.array([value.encode() for value in values], dtype=object)
        else:
            raw[key] = np.array(values, dtype=np.int64 if kind == "int" else np.float32)
    examples = []
    for row in rows:
        example = tf.train.Example()
        for key, text in row.items():
            feature = example.features.feature[key]
            kind = types.get(key, schema_pb2.BYTES)
            if kind == schema_pb2.BYTES:
                feature.bytes_list.value.extend([text.encode()] if text else [])
            elif kind == schema_pb2.INT:
                feature.int64_list.value.extend([int(float(text))] if text else [])
            else:
                feature.float_list.value.extend([float(text)] if text else [])
        examples.append(example.SerializeToString())
    serialized = np.empty(len(examples), dtype=object)
    serialized[:] = examples
    return {
        "raw features (serving_raw)": (features.SERVING_RAW_SIGNATURE, raw),
        "tf.Examples (serving_default)": (
            features.SERVING_EXAMPLES_SIGNATURE,
            {features.EXAMPLES_INPUT: serialized},
        ),
    }


def main() -> int:
    args = parse_args()
    from serving.versions import version_folders

    versions = version_folders(args.model_dir)
    if not versions or not os.path.exists(args.data) or not os.path.exists(args.schema):
        print(
            f"error: need a pushed model in {args.model_dir} (make run), {args.data} and "
            f"{args.schema}",
            file=sys.stderr,
        )
        return 2
    from serving.inference import Inference
    from serving.request_schema import RequestSchema, RequestSchemaCheck, RequestSchemaSettings
    from serving.servable import Servable
    from serving.versions import LoadedVersion, ModelManager

    version = max(versions)
    schema = RequestSchema.read(args.schema)
    servable = Servable(versions[version])
    unchecked = LoadedVersion("taxi", version, versions[version], servable)
    checked = LoadedVersion("taxi", version, versions[version], servable, request_schema=schema)
    counted = []
    check = RequestSchemaCheck(
        RequestSchemaSettings(), lambda model, v, result: counted.append(result.rows)
    )
    inference = Inference(ModelManager([], loader=Servable), schema_check=check)
    with open(args.data, newline="") as handle:
        rows = [row for _, row in zip(range(100), csv.DictReader(handle), strict=False)]
    print(f"taxi version {version}, {len(schema.rules)} checked features, {args.calls} calls each")
    print(
        f"{'request':<32} {'rows':>4} {'unchecked':>10} {'checked':>10} {'overhead':>16} "
        f"{'check alone':>11}"
    )
    for size in (1, 100):
        for form, (signature, inputs) in requests(rows[:size], args.schema).items():
            times: dict[str, list[float]] = {"unchecked": [], "checked": [], "alone": []}
            for loaded in (unchecked, checked):  # trace and warm both
                inference.predict(loaded, signature, inputs, logged=False)
            rounds = 20
            for _ in range(rounds):
                for mode, loaded in (("unchecked", unchecked), ("checked", checked)):
                    for _ in range(args.calls // rounds):
                        started = time.perf_counter()
                        inference.predict(loaded, signature, inputs, logged=False)
                        times[mode].append(time.perf_counter() - started)
                for _ in range(args.calls // rounds):
                    started = time.perf_counter()
                    check.check_inputs(checked, inputs)
                    times["alone"].append(time.perf_counter() - started)
            base, with_check, alone = (
                statistics.median(times[mode]) * 1e6 for mode in ("unchecked", "checked", "alone")
            )
            overhead = f"{with_check - base:+.0f} us ({(with_check - base) / base:+.1%})"
            print(
                f"{form:<32} {size:>4} {base:>7.0f} us {with_check:>7.0f} us {overhead:>16} "
                f"{alone:>8.0f} us"
            )
    inference.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

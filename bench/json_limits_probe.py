"""Work one hostile or heavy REST request causes in the JSON -> tensor path: CPU seconds, peak RSS.

Each case runs in a fresh interpreter that imports `serving.json_parse` and `json_tensor`, builds the body,
inflates it when it is sent gzipped (as the server does before parsing), then calls what the
REST handler calls: request_object -> signature_name -> predict_inputs, against a signature
like the test model's (`x`: float [-1, 2]). It prints the answer (HTTP status and the start of
the message), CPU seconds and the peak RSS above the imports.

    .venv/bin/python bench/json_limits_probe.py [--case NAME ...] [--serving_root DIR]

`--serving_root` points at another checkout's root to measure that code instead, e.g. the
pre-change one: `git archive HEAD serving | tar -x -C /tmp/before` then
`--serving_root /tmp/before`.
"""

import argparse
import gc
import gzip
import json
import os
import pathlib
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_REQUEST_BYTES = 16 * 1024 * 1024  # ServerSettings.max_request_bytes default


def _list_body(item: bytes, prefix: bytes, suffix: bytes, budget: int) -> bytes:
    """prefix + [item, item, ...] + suffix, as many items as fit in `budget` bytes."""
    count = (budget - len(prefix) - len(suffix) - 2) // (len(item) + 1)
    return prefix + b"[" + b",".join([item] * count) + b"]" + suffix


def _values_body(values: int) -> bytes:
    """instances of `values - 2` empty arrays: the request holds exactly `values` JSON values."""
    return b'{"instances": [' + b",".join([b"[]"] * (values - 2)) + b"]}"


CASES = {
    # The report: 16 MiB of `[[],[],...]` as instances, sent gzipped.
    "empty_arrays_gzip": lambda limit: (
        _list_body(b"[]", b'{"instances": ', b"}", MAX_REQUEST_BYTES),
        True,
    ),
    # Just under the value limit: the most such a request can cost when it is accepted.
    "empty_arrays_at_limit": lambda limit: (_values_body(limit), True),
    # 16 MiB of ordinary float rows: the legitimate heavy request.
    "float_rows_16mib": lambda limit: (
        _list_body(b"[0.123456, 0.654321]", b'{"instances": ', b"}", MAX_REQUEST_BYTES),
        False,
    ),
    # The same, malformed at the very end: the exact (rapidjson port) parser has to run.
    "float_rows_malformed": lambda limit: (
        _list_body(b"[0.123456, 0.654321]", b'{"instances": ', b"}x", MAX_REQUEST_BYTES),
        False,
    ),
    # Objects two deep (no flat runs for the exact parser), malformed, just under the limit.
    "nested_objects_malformed": lambda limit: (
        _list_body(b'{"a":{"b":1}}', b'{"instances": ', b"}x", (limit // 3 - 10) * 14),
        False,
    ),
    # 50k levels of nesting in a key the handler ignores, next to a valid request.
    "deep_ignored_key": lambda limit: (
        b'{"instances": [[1.0, 2.0]], "nested": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        False,
    ),
    # 300 levels inside instances: more dimensions than a tensor may have.
    "deep_instances": lambda limit: (
        b'{"instances": [' + b"[" * 300 + b"1.0" + b"]" * 300 + b"]}",
        False,
    ),
    # A 5000-digit integer literal (Python's int() refuses more than 4300 digits).
    "huge_integer": lambda limit: (b'{"instances": [[1, ' + b"9" * 5000 + b"]]}", False),
}


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _child(case: str, serving_root: str) -> None:
    sys.path.insert(0, serving_root)
    import time

    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import meta_graph_pb2

    from serving import json_tensor

    try:
        from serving import json_parse
    except ImportError:  # code from before the parser had its own module
        json_parse = json_tensor
    from serving.errors import ServingError

    # The server freezes the heap after loading a model (serving/versions.py): do the same.
    gc.collect()
    gc.freeze()
    limit = getattr(json_parse, "MAX_JSON_VALUES", 1_000_000)
    body, gzipped = CASES[case](limit)
    wire = gzip.compress(body, 9) if gzipped else body
    signature = meta_graph_pb2.SignatureDef()
    signature.inputs["x"].dtype = types_pb2.DT_FLOAT
    # Peak RSS of this request alone: reset the kernel's high-water mark (clear_refs "5"),
    # then compare VmHWM after the request with VmRSS before it.
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    baseline_kb = _status_kb("VmRSS")
    cpu_start = time.process_time()
    try:
        inflated = gzip.decompress(wire) if gzipped else wire
        request = json_parse.request_object(inflated)
        name = json_tensor.signature_name(request)
        inputs, _ = json_tensor.predict_inputs(request, signature, name)
        answer = f"200 x{list(inputs['x'].shape)}"
    except ServingError as error:
        answer = f"{error.http_status} {error.message[:70]!r}"
    except Exception as error:  # noqa: BLE001 - the probe reports what the server would 500 on
        answer = f"500 {type(error).__name__}: {str(error)[:60]!r}"
    cpu = time.process_time() - cpu_start
    peak_mb = (_status_kb("VmHWM") - baseline_kb) / 1024
    print(
        json.dumps(
            {
                "case": case,
                "wire_bytes": len(wire),
                "json_bytes": len(body),
                "answer": answer,
                "cpu_s": round(cpu, 3),
                "peak_rss_mb": round(peak_mb, 1),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    parser.add_argument("--serving_root", default=str(REPO_ROOT))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.serving_root)
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    print(f"{'case':24} {'wire':>10} {'json':>10} {'cpu s':>7} {'+rss MB':>8}  answer")
    for case in args.case or list(CASES):
        command = [sys.executable, __file__, "--child", case, "--serving_root", args.serving_root]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        if not lines:
            print(f"{case:24} failed: {result.stderr.strip().splitlines()[-1:]}")
            continue
        row = json.loads(lines[-1])
        print(
            f"{case:24} {row['wire_bytes']:>10} {row['json_bytes']:>10} {row['cpu_s']:>7} "
            f"{row['peak_rss_mb']:>8}  {row['answer']}"
        )


if __name__ == "__main__":
    main()

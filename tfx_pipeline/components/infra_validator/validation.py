"""What infra validation checks against a running model server, and its verdict.

1. Every probe answers over gRPC and over REST (HTTP 200), with finite outputs, probabilities
   within [0, 1], equal to the same signature called in this process.
2. The p99 latency of one-row gRPC predict calls is within budget: at most `max_p99_increase`
   above the last blessed model's, both served by the same server and timed in alternation.
"""

import collections
import dataclasses
import json
import math
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from models import features
from tfx_pipeline.components.infra_validator.requests import Probe

RPC_TIMEOUT_SECONDS = 30
# Served and in-process outputs agree to this tolerance: the same graph on the same data, though
# another build of TensorFlow (the real tensorflow_model_server) may round differently.
RELATIVE_TOLERANCE = 1e-4
ABSOLUTE_TOLERANCE = 1e-6
# Latency: calls per model per round, rounds in alternation (candidate first, then baseline first).
LATENCY_CALLS_PER_ROUND = 50
LATENCY_ROUNDS = 6


@dataclasses.dataclass
class Latency:
    """p50 and p99 in milliseconds of one model's timed calls."""

    p50_ms: float
    p99_ms: float
    calls: int

    @classmethod
    def of(cls, seconds: list[float]) -> "Latency":
        milliseconds = np.array(seconds) * 1000.0
        return cls(
            p50_ms=float(np.percentile(milliseconds, 50)),
            p99_ms=float(np.percentile(milliseconds, 99)),
            calls=len(seconds),
        )


def expected_outputs(
    signatures: dict[str, tf.types.experimental.ConcreteFunction], probes: list[Probe]
) -> list[dict[str, np.ndarray]]:
    """Each probe's outputs from the in-process signature call."""
    results = []
    for probe in probes:
        inputs = {name: tf.constant(value) for name, value in probe.inputs.items()}
        outputs = signatures[probe.signature](**inputs)
        results.append({name: tensor.numpy() for name, tensor in outputs.items()})
    return results


def check_answers(
    probes: list[Probe],
    expected: list[dict[str, np.ndarray]],
    grpc_target: str,
    rest_url: str,
    model_name: str,
) -> list[str]:
    """Sends every probe over gRPC and REST; returns what went wrong (empty: all good).

    Alike failures (same signature, transport and kind) make one line: the first one's detail
    and how many of that signature's requests failed that way.
    """
    failures: dict[tuple[str, str, str], list] = {}  # -> [first request, its detail, count]
    per_signature = collections.Counter(probe.signature for probe in probes)
    url = f"{rest_url}/v1/models/{model_name}:predict"
    with grpc.insecure_channel(grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for index, (probe, want) in enumerate(zip(probes, expected, strict=True)):
            answers = {
                "gRPC": _check_grpc(stub, probe.predict_request(model_name), want),
                "REST": _check_rest(probe.rest_body(), want, url),
            }
            for transport, found in answers.items():
                for kind, detail in found:
                    key = (probe.signature, transport, kind)
                    failures.setdefault(key, [index, detail, 0])[2] += 1
    return [
        f"{signature} over {transport}: {detail} "
        f"({count} of {per_signature[signature]} requests, first: request {first})"
        for (signature, transport, _), (first, detail, count) in failures.items()
    ]


Found = list[tuple[str, str]]  # (kind of failure, its detail)


def _check_grpc(
    stub: prediction_service_pb2_grpc.PredictionServiceStub, request: object, want: dict
) -> Found:
    try:
        response = stub.Predict(request, timeout=RPC_TIMEOUT_SECONDS)
    except grpc.RpcError as error:
        return [(error.code().name, f"{error.code().name}: {error.details()}")]
    return _compare(
        {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}, want
    )


def _check_rest(body: bytes, want: dict[str, np.ndarray], url: str) -> Found:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=RPC_TIMEOUT_SECONDS) as answer:
            answered = json.loads(answer.read())
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", "replace")[:300]
        return [(f"HTTP {error.code}", f"HTTP {error.code}: {text}")]
    except (OSError, ValueError) as error:
        return [("unanswered", str(error))]
    predictions = answered.get("predictions") if isinstance(answered, dict) else None
    if not isinstance(predictions, list) or len(predictions) != 1:
        return [("malformed", f"expected one prediction, got {str(answered)[:200]}")]
    row = predictions[0]
    # Row format: one output's value directly, several outputs as an object of them.
    got = row if isinstance(row, dict) and len(want) > 1 else {next(iter(want)): row}
    return _compare({k: np.array([v]) for k, v in got.items()}, want)


def _compare(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> Found:
    if set(got) != set(want):
        return [("outputs", f"outputs {sorted(got)}, the signature has {sorted(want)}")]
    problems = []
    for name, expected in want.items():
        actual = np.asarray(got[name])
        if actual.dtype.kind not in "fiu":
            continue
        actual = actual.astype(np.float64).reshape(-1)
        reference = np.asarray(expected, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(actual)):
            problems.append((f"{name} finite", f"{name} is not finite: {actual.tolist()}"))
        elif name == features.PROBABILITY_OUTPUT and not np.all((actual >= 0) & (actual <= 1)):
            problems.append((f"{name} range", f"{name} outside [0, 1]: {actual.tolist()}"))
        elif actual.shape != reference.shape or not np.allclose(
            actual, reference, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE
        ):
            problems.append(
                (
                    f"{name} value",
                    f"{name} = {actual.tolist()}, the in-process call gives {reference.tolist()}",
                )
            )
    return problems


def measure_latency(
    probes: list[Probe], grpc_target: str, model_names: list[str]
) -> dict[str, Latency]:
    """One-row gRPC predict latency per model, the models timed in alternating rounds.

    Every request is sent once untimed first, so a model that arrived without warmup is not
    charged for it; alternation spreads the machine's slow moments over both models.
    """
    timed: dict[str, list[float]] = {name: [] for name in model_names}
    requests = {name: [probe.predict_request(name) for probe in probes] for name in model_names}
    with grpc.insecure_channel(grpc_target) as channel:
        predict = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict
        for name in model_names:
            for request in requests[name]:
                predict(request, timeout=RPC_TIMEOUT_SECONDS)
        for round_index in range(LATENCY_ROUNDS):
            order = model_names if round_index % 2 == 0 else list(reversed(model_names))
            for name in order:
                for call in range(LATENCY_CALLS_PER_ROUND):
                    request = requests[name][(round_index + call) % len(requests[name])]
                    started = time.perf_counter()
                    predict(request, timeout=RPC_TIMEOUT_SECONDS)
                    timed[name].append(time.perf_counter() - started)
    return {name: Latency.of(seconds) for name, seconds in timed.items()}


def latency_problem(
    candidate: Latency, baseline: Latency | None, max_increase: float
) -> str | None:
    """Why the candidate is too slow against the baseline, or None."""
    if baseline is None or math.isnan(baseline.p99_ms):
        return None
    limit = baseline.p99_ms * (1.0 + max_increase)
    if candidate.p99_ms <= limit:
        return None
    return (
        f"p99 latency {candidate.p99_ms:.2f} ms is more than {max_increase:.0%} above the last "
        f"blessed model's {baseline.p99_ms:.2f} ms (limit {limit:.2f} ms)"
    )

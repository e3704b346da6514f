"""Prometheus metrics in TF Serving's names and exposition layout.

TF Serving exports `:tensorflow:serving:request_count{model_name,status}`, the
`:tensorflow:serving:request_latency{model_name,API,entrypoint}` histogram (microseconds,
exponential buckets 10 * 1.8^i) and, per loaded version with a warmup file,
`:tensorflow:serving:model_warmup_latency{model_path,status}` (the same buckets). Dashboards built on those work unchanged. This server also
exports the same counts and latencies per model version, which TF Serving does not break down,
and the rows of requests checked against their version's schema, and those outside it.

Only configured model names become label values: a request for any other name is counted under
UNKNOWN_MODEL, so clients cannot grow the metrics page (and every scrape) without bound.
"""

import threading
from collections import defaultdict
from collections.abc import Callable, Mapping

# TF Serving's request_latency buckets: Exponential(10, 1.8, 33).
LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))
# batching_util.h RecordProcessedBatchSize: Exponential(1, 2, 14), no labels.
BATCH_SIZE_BUCKETS = tuple(2.0**i for i in range(14))

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
PROCESSED_BATCH_SIZE = ":tensorflow:serving:batching_session:processed_batch_size"
VERSION_REQUEST_COUNT = ":tensorflow:serving:rest:version_request_count"
VERSION_REQUEST_LATENCY = ":tensorflow:serving:rest:version_request_latency"
# saved_model_warmup_util.cc: wall time of replaying a version's warmup requests, in
# microseconds, by version folder and final status; same buckets as request_latency.
MODEL_WARMUP_LATENCY = ":tensorflow:serving:model_warmup_latency"
# Sampled predict requests by outcome (logged or why not); exported only when logging is on.
REQUEST_LOG_COUNT = ":tensorflow:serving:rest:request_log_count"
# Rows checked against their version's schema, and those outside it by feature and reason
# (serving/request_schema.py); exported once a version with a schema answers a request.
SCHEMA_CHECKED_ROWS = ":tensorflow:serving:rest:request_schema_checked_row_count"
SCHEMA_VIOLATIONS = ":tensorflow:serving:rest:request_schema_violation_count"
# The model_name label of requests for models that are not configured (":" cannot start a
# model name in a REST URL, so no served model shares it).
UNKNOWN_MODEL = ":unknown"


def _number(value: float) -> str:
    """absl::StrCat(double): %.6g."""
    return f"{value:.6g}"


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"')

    return ",".join(f'{key}="{escape(value)}"' for key, value in pairs)


class _Histogram:
    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS_US) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        index = next(
            (i for i, limit in enumerate(self.buckets) if value < limit),
            len(self.buckets),
        )
        self.counts[index] += 1
        self.total += value
        self.count += 1


class Metrics:
    """Thread-safe request counters and latency histograms."""

    def __init__(self, is_known_model: Callable[[str], bool] = lambda name: True) -> None:
        self._is_known_model = is_known_model
        self._lock = threading.Lock()
        self._counters: dict[str, dict[tuple, int]] = defaultdict(lambda: defaultdict(int))
        self._histograms: dict[str, dict[tuple, _Histogram]] = defaultdict(dict)

    def record(
        self,
        model: str,
        version: int | None,
        api: str,
        status: str,
        latency_us: float,
        entrypoint: str = "REST",
    ) -> None:
        """One finished request: `api` is Predict, Classify, Regress, GetModelStatus, ...

        `entrypoint` is REST or GRPC, as in TF Serving's request_latency.
        """
        if not self._is_known_model(model):
            model, version = UNKNOWN_MODEL, None
        with self._lock:
            self._counters[REQUEST_COUNT][(("model_name", model), ("status", status))] += 1
            version_text = "" if version is None else str(version)
            labels = (
                ("model_name", model),
                ("version", version_text),
                ("API", api),
                ("entrypoint", entrypoint),
                ("status", status),
            )
            self._counters[VERSION_REQUEST_COUNT][labels] += 1
            if status == "OK":
                latency_labels = (("model_name", model), ("API", api), ("entrypoint", entrypoint))
                self._histogram(REQUEST_LATENCY, latency_labels).observe(latency_us)
                self._histogram(
                    VERSION_REQUEST_LATENCY,
                    (
                        ("model_name", model),
                        ("version", version_text),
                        ("API", api),
                        ("entrypoint", entrypoint),
                    ),
                ).observe(latency_us)

    def count_logged(self, model: str, outcome: str) -> None:
        """One sampled request of `model` was logged, or dropped (outcome says why)."""
        with self._lock:
            self._counters[REQUEST_LOG_COUNT][(("model_name", model), ("outcome", outcome))] += 1

    def count_schema_check(
        self, model: str, version: int, rows: int, violations: Mapping[tuple[str, str], int]
    ) -> None:
        """One request's `rows` were checked against the version's schema; `violations` maps
        (feature, reason) to the rows outside it. Feature names come from the schema and
        reasons from a fixed set, so clients cannot grow the page."""
        version_labels = (("model_name", model), ("version", str(version)))
        with self._lock:
            self._counters[SCHEMA_CHECKED_ROWS][version_labels] += rows
            for (feature, reason), count in violations.items():
                labels = (*version_labels, ("feature", feature), ("reason", reason))
                self._counters[SCHEMA_VIOLATIONS][labels] += count

    def observe_warmup(self, model_path: str, status: str, latency_us: float) -> None:
        """One warmup replay of the version at `model_path` ended with `status` ("OK", or the
        read error as TF Serving's Status::ToString writes it)."""
        labels = (("model_path", model_path), ("status", status))
        with self._lock:
            self._histogram(MODEL_WARMUP_LATENCY, labels).observe(latency_us)

    def observe_batch(self, rows: int) -> None:
        """One model call of a batcher, `rows` rows big (TF Serving's processed_batch_size)."""
        with self._lock:
            self._histogram(PROCESSED_BATCH_SIZE, (), BATCH_SIZE_BUCKETS).observe(rows)

    def _histogram(
        self, name: str, labels: tuple, buckets: tuple[float, ...] = LATENCY_BUCKETS_US
    ) -> _Histogram:
        histograms = self._histograms[name]
        if labels not in histograms:
            histograms[labels] = _Histogram(buckets)
        return histograms[labels]

    def exposition(self) -> str:
        """The text TF Serving's PrometheusExporter writes: no HELP lines, sorted by name."""
        lines = []
        with self._lock:
            names = sorted(set(self._counters) | set(self._histograms))
            for name in names:
                if name in self._counters:
                    lines.append(f"# TYPE {name} counter")
                    for labels, value in sorted(self._counters[name].items()):
                        lines.append(f"{name}{{{_labels(labels)}}} {value}")
                else:
                    lines.append(f"# TYPE {name} histogram")
                    for labels, histogram in sorted(self._histograms[name].items()):
                        lines.extend(_histogram_lines(name, labels, histogram))
        return "\n".join(lines) + "\n"


def _histogram_lines(name: str, labels: tuple, histogram: _Histogram) -> list[str]:
    prefix = _labels(labels)
    braces = f"{{{prefix}}}" if prefix else ""
    lines, cumulative = [], 0
    for limit, count in zip((*histogram.buckets, None), histogram.counts, strict=True):
        cumulative += count
        le = "+Inf" if limit is None else _number(limit)
        bucket_labels = f'{prefix},le="{le}"' if prefix else f'le="{le}"'
        lines.append(f"{name}_bucket{{{bucket_labels}}} {cumulative}")
    lines.append(f"{name}_sum{braces} {_number(histogram.total)}")
    lines.append(f"{name}_count{braces} {histogram.count}")
    return lines

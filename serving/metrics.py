"""Prometheus metrics in TF Serving's names and exposition layout.

TF Serving exports `:tensorflow:serving:request_count{model_name,status}` and the
`:tensorflow:serving:request_latency{model_name,API,entrypoint}` histogram (microseconds,
exponential buckets 10 * 1.8^i). Dashboards built on those work unchanged. This server also
exports the same counts and latencies per model version, which TF Serving does not break down.
"""

import threading
from collections import defaultdict

# TF Serving's request_latency buckets: Exponential(10, 1.8, 33).
LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
VERSION_REQUEST_COUNT = ":tensorflow:serving:rest:version_request_count"
VERSION_REQUEST_LATENCY = ":tensorflow:serving:rest:version_request_latency"
# Sampled predict requests by outcome (logged or why not); exported only when logging is on.
REQUEST_LOG_COUNT = ":tensorflow:serving:rest:request_log_count"


def _number(value: float) -> str:
    """absl::StrCat(double): %.6g."""
    return f"{value:.6g}"


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"')

    return ",".join(f'{key}="{escape(value)}"' for key, value in pairs)


class _Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS_US) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        index = next(
            (i for i, limit in enumerate(LATENCY_BUCKETS_US) if value < limit),
            len(LATENCY_BUCKETS_US),
        )
        self.counts[index] += 1
        self.total += value
        self.count += 1


class Metrics:
    """Thread-safe request counters and latency histograms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[tuple, int]] = defaultdict(lambda: defaultdict(int))
        self._histograms: dict[str, dict[tuple, _Histogram]] = defaultdict(dict)

    def record(
        self, model: str, version: int | None, api: str, status: str, latency_us: float
    ) -> None:
        """One finished REST request: `api` is Predict, Classify, Regress, GetModelStatus, ..."""
        with self._lock:
            self._counters[REQUEST_COUNT][(("model_name", model), ("status", status))] += 1
            version_text = "" if version is None else str(version)
            labels = (
                ("model_name", model),
                ("version", version_text),
                ("API", api),
                ("status", status),
            )
            self._counters[VERSION_REQUEST_COUNT][labels] += 1
            if status == "OK":
                latency_labels = (("model_name", model), ("API", api), ("entrypoint", "REST"))
                self._histogram(REQUEST_LATENCY, latency_labels).observe(latency_us)
                self._histogram(
                    VERSION_REQUEST_LATENCY,
                    (("model_name", model), ("version", version_text), ("API", api)),
                ).observe(latency_us)

    def count_logged(self, model: str, outcome: str) -> None:
        """One sampled request of `model` was logged, or dropped (outcome says why)."""
        with self._lock:
            self._counters[REQUEST_LOG_COUNT][(("model_name", model), ("outcome", outcome))] += 1

    def _histogram(self, name: str, labels: tuple) -> _Histogram:
        histograms = self._histograms[name]
        if labels not in histograms:
            histograms[labels] = _Histogram()
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
                        cumulative = 0
                        prefix = _labels(labels)
                        for limit, count in zip(
                            (*LATENCY_BUCKETS_US, None), histogram.counts, strict=True
                        ):
                            cumulative += count
                            le = "+Inf" if limit is None else _number(limit)
                            lines.append(f'{name}_bucket{{{prefix},le="{le}"}} {cumulative}')
                        lines.append(f"{name}_sum{{{prefix}}} {_number(histogram.total)}")
                        lines.append(f"{name}_count{{{prefix}}} {histogram.count}")
        return "\n".join(lines) + "\n"

"""Server-side batching of concurrent calls, as TF Serving's --enable_batching does.

Calls to the same model version and signature wait in a queue; a batch thread takes up to
`max_batch_size` rows, or whatever arrived within `batch_timeout_micros` of the first call, runs
the signature once on the concatenated inputs and hands every caller its own rows back. When a
merged call fails because of some caller's inputs, each caller is run on its own so one malformed
request cannot fail the others (TF Serving's batching session has no such isolation).
"""

import collections
import concurrent.futures
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping

import numpy as np

from serving.errors import ServingError

log = logging.getLogger(__name__)

Inputs = Mapping[str, np.ndarray]
Outputs = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """The subset of TF Serving's BatchingParameters this server honours."""

    max_batch_size: int = 64
    batch_timeout_micros: int = 2000
    num_batch_threads: int = 2
    max_enqueued_batches: int = 100

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be positive, got {getattr(self, name)}"
            for name in ("max_batch_size", "num_batch_threads", "max_enqueued_batches")
            if getattr(self, name) < 1
        ]
        if self.batch_timeout_micros < 0:
            problems.append(
                f"batch_timeout_micros must be 0 or more, got {self.batch_timeout_micros}"
            )
        if problems:
            raise ValueError("invalid batching parameters: " + "; ".join(problems))


@dataclasses.dataclass
class _Task:
    inputs: Inputs
    rows: int
    future: concurrent.futures.Future


def _rows(inputs: Inputs) -> int:
    sizes = {value.shape[0] if value.ndim else 1 for value in inputs.values()}
    if len(sizes) != 1:
        raise ServingError.invalid_argument(
            "Batching requires every input to have the same size in the 0th dimension, got "
            + str(sorted(sizes))
        )
    return sizes.pop()


def _is_request_fault(error: BaseException) -> bool:
    """Whether `error` blames the inputs, so in a merged call it may be another caller's fault.

    Only INVALID_ARGUMENT counts: `Servable.run` already turns what TensorFlow raises for bad inputs
    (InvalidArgumentError, and the ValueError/TypeError of a failed conversion or binding) into
    it. Anything else that reaches the batcher (RESOURCE_EXHAUSTED, UNAVAILABLE, a raw exception
    from our own code) is not a request's fault: every caller would just fail again, one by one.
    """
    return isinstance(error, ServingError) and error.code == "INVALID_ARGUMENT"


def _settle(
    future: concurrent.futures.Future,
    result: Outputs | None = None,
    error: BaseException | None = None,
) -> None:
    """Resolves `future`, unless its caller already gave up on it (e.g. the client disconnected)."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        # A cancelled future; raising here would kill the batch thread and stall its queue.
        pass


class Batcher:
    """Batches calls to one function `run(inputs) -> outputs` (one model version and signature).

    `run` must report inputs it cannot process as `ServingError` INVALID_ARGUMENT, as
    `Servable.run` does. A merged call of n callers that fails that way is run again once per
    caller, so each gets its own result or its own error: at most n extra calls, together about
    what the same requests cost without batching. Bisecting would need only about 2 * log2(n)
    calls for a single bad caller, but up to 2n - 2 when several are bad (as under a stream of
    bad requests), its rounds run one after another on the batch thread, and rows that share a
    half with a bad one are run again at every level.

    Attributes:
      isolated_failures: how many merged calls failed for a request fault and were rerun per
        caller (to export as a counter).
    """

    def __init__(
        self,
        run: Callable[[Inputs], Outputs],
        parameters: BatchingParameters,
        *,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        """Starts the batch threads.

        Args:
          run: calls the model on inputs with a batch dimension; returns outputs row-aligned.
          parameters: batch size, timeout, threads and queue bound.
          on_batch: called as `on_batch(size_rows, tasks)` before every call of `run`, also the
            per-caller reruns of a poisoned batch (as TF Serving's
            /tensorflow/serving/batching_session/processed_batch_size histogram observes every
            processed batch). It runs on a batch thread; keep it fast, its errors are logged.
        """
        self._run = run
        self._parameters = parameters
        self._on_batch = on_batch
        self._isolated_failures = 0
        self._counter_lock = threading.Lock()
        self._queue: collections.deque[_Task] = collections.deque()
        self._queued_rows = 0
        self._condition = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"batch-{i}", daemon=True)
            for i in range(parameters.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, inputs: Inputs) -> concurrent.futures.Future:
        """Queues one call; the future resolves to that call's outputs."""
        rows = _rows(inputs)
        if any(value.ndim == 0 for value in inputs.values()):
            raise ServingError.invalid_argument("Batching requires inputs with a batch dimension")
        if rows > self._parameters.max_batch_size:
            raise ServingError.invalid_argument(
                f"Task size {rows} is larger than maximum input batch size "
                f"{self._parameters.max_batch_size}"
            )
        future: concurrent.futures.Future = concurrent.futures.Future()
        capacity = self._parameters.max_batch_size * self._parameters.max_enqueued_batches
        with self._condition:
            if self._closed:
                raise ServingError("UNAVAILABLE", "The batcher is shutting down")
            if self._queued_rows + rows > capacity:
                raise ServingError(
                    "UNAVAILABLE",
                    "The batch scheduling queue to which this task was submitted is full",
                )
            self._queue.append(_Task(inputs, rows, future))
            self._queued_rows += rows
            self._condition.notify()
        return future

    @property
    def isolated_failures(self) -> int:
        with self._counter_lock:
            return self._isolated_failures

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)

    def _take_batch(self) -> list[_Task] | None:
        timeout = self._parameters.batch_timeout_micros / 1e6
        with self._condition:
            while not self._queue and not self._closed:
                self._condition.wait()
            if not self._queue:
                return None
            deadline = time.monotonic() + timeout
            while self._queued_rows < self._parameters.max_batch_size and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            batch, rows = [], 0
            while self._queue and rows + self._queue[0].rows <= self._parameters.max_batch_size:
                task = self._queue.popleft()
                batch.append(task)
                rows += task.rows
            self._queued_rows -= rows
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            self._run_batch(batch)

    def _run_batch(self, batch: list[_Task]) -> None:
        groups: list[list[_Task]] = []
        # Calls whose inputs differ in names or trailing shapes cannot share a batch.
        for task in batch:
            for group in groups:
                head = group[0].inputs
                if list(task.inputs) == list(head) and all(
                    task.inputs[k].shape[1:] == head[k].shape[1:]
                    and task.inputs[k].dtype == head[k].dtype
                    for k in head
                ):
                    group.append(task)
                    break
            else:
                groups.append([task])
        for group in groups:
            self._run_group(group)

    def _run_group(self, group: list[_Task]) -> None:
        try:
            if len(group) == 1:
                merged = group[0].inputs
            else:
                merged = {k: np.concatenate([t.inputs[k] for t in group]) for k in group[0].inputs}
            self._report_batch(sum(task.rows for task in group), len(group))
            outputs = self._run(merged)
        except BaseException as error:  # noqa: BLE001 - every caller must hear about the failure
            if len(group) > 1 and _is_request_fault(error):
                self._isolate(group)
            else:
                for task in group:
                    _settle(task.future, error=error)
            return
        self._hand_out(group, outputs)

    def _isolate(self, group: list[_Task]) -> None:
        """Runs each caller of a merged call that failed on its own, so a bad one fails alone."""
        with self._counter_lock:
            self._isolated_failures += 1
        for task in group:
            if task.future.cancelled():
                continue
            try:
                self._report_batch(task.rows, 1)
                outputs = self._run(task.inputs)
            except BaseException as error:  # noqa: BLE001 - this caller must hear about it
                _settle(task.future, error=error)
                continue
            self._hand_out([task], outputs)

    def _hand_out(self, group: list[_Task], outputs: Outputs) -> None:
        start = 0
        for task in group:
            end = start + task.rows
            try:
                rows = {k: v[start:end] for k, v in outputs.items()}
            except Exception as error:  # noqa: BLE001
                _settle(task.future, error=error)
            else:
                _settle(task.future, result=rows)
            start = end

    def _report_batch(self, size_rows: int, tasks: int) -> None:
        if self._on_batch is None:
            return
        try:
            self._on_batch(size_rows, tasks)
        except Exception:  # noqa: BLE001 - a metrics hook must not fail the predictions
            log.exception("on_batch callback failed for a batch of %d rows", size_rows)

"""Notifier: sends each event to the sinks the notifications file routes it to, never failing the caller.

JSONL lines are written at once; webhooks are delivered by one background thread, so the caller
never waits on a slow receiver. `close()` (or leaving a `with` block) waits at most
`exit_wait_seconds` for deliveries still under way, then gives them up. A delivery that fails or
is given up is logged as a warning and recorded in every JSONL sink of the file.

    with Notifier(config, pipeline="taxi") as notifier:
        notifier.notify(PUSHED, "version 7 pushed (AUC 0.934)", {"version": 7}, ["path: ..."])
"""

import collections
import dataclasses
import datetime
import logging
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from tfx_pipeline.notifications import events as events_lib
from tfx_pipeline.notifications import sinks
from tfx_pipeline.notifications.config import JsonlSink, NotificationConfig, WebhookSink

logger = logging.getLogger(__name__)

NOTIFICATION_RECORD = "notification"
FAILURE_RECORD = "delivery_failed"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one event at one sink."""

    event: str
    sink: str
    ok: bool
    detail: str  # "delivered", "written", or the error


@dataclasses.dataclass
class _Pending:
    sink: WebhookSink
    body: dict[str, Any]
    settled: bool = False


class Notifier:
    """Routes events to sinks for one pipeline; thread-safe; `notify` never raises on delivery.

    Args:
      config: from `read_config`; the empty NotificationConfig() notifies nothing.
      pipeline: the pipeline's name, first in every message.
    """

    def __init__(self, config: NotificationConfig, pipeline: str) -> None:
        self.config = config
        self.pipeline = pipeline
        self._pending: collections.deque[_Pending] = collections.deque()
        self._in_flight: _Pending | None = None
        self._condition = threading.Condition()
        self._closing = False
        self._give_up = threading.Event()
        self._thread: threading.Thread | None = None
        self._outcomes: list[Outcome] = []

    def __enter__(self) -> "Notifier":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def outcomes(self) -> list[Outcome]:
        """Each event's fate at each sink so far, in the order they were settled."""
        with self._condition:
            return list(self._outcomes)

    def notify(
        self,
        kind: str,
        title: str,
        details: Mapping[str, Any] | None = None,
        summary_lines: Sequence[str] = (),
        run_id: str | None = None,
    ) -> None:
        """Sends one event (`kind` from events.EVENT_KINDS; an unknown kind is a ValueError)."""
        self.send(events_lib.Event(kind, title, dict(details or {}), tuple(summary_lines), run_id))

    def send(self, event: events_lib.Event | None) -> None:
        """Sends `event` to the sinks its kind is routed to; None sends nothing."""
        if event is None:
            return
        routed = self.config.sinks_for(event.kind)
        if not routed:
            return
        try:
            body = events_lib.payload(event, self.pipeline)
            for sink in routed:
                if isinstance(sink, JsonlSink):
                    self._write(sink, {"record": NOTIFICATION_RECORD, **body}, event.kind)
                else:
                    self._enqueue(_Pending(sink, body))
        except Exception:  # noqa: BLE001 - a notification must never fail the run that sends it
            logger.exception("notification %s could not be sent", event.kind)

    def close(self, timeout: float | None = None) -> list[Outcome]:
        """Waits for webhook deliveries at most `timeout` s (default: exit_wait_seconds).

        Deliveries still pending then are given up and recorded as failed; the background
        thread is a daemon, so it never holds the process. Returns every outcome.
        """
        wait = self.config.exit_wait_seconds if timeout is None else timeout
        with self._condition:
            self._closing = True
            self._condition.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(wait)
            if thread.is_alive():
                self._give_up.set()
                with self._condition:
                    left = [self._in_flight] if self._in_flight else []
                    left += self._pending
                    self._pending.clear()
                for pending in left:
                    self._settle(
                        pending,
                        sinks.Delivery(
                            False,
                            None,
                            f"not delivered within the {wait:g} s the process waits at exit "
                            "(exit_wait_seconds); it may still have arrived if it was in flight",
                        ),
                    )
        return self.outcomes

    def _enqueue(self, pending: _Pending) -> None:
        with self._condition:
            if self._closing:
                logger.warning(
                    "notification %s to %s dropped: the notifier is closed",
                    pending.body["event"],
                    pending.sink.name,
                )
                return
            self._pending.append(pending)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._deliver_all, name="notifications", daemon=True
                )
                self._thread.start()
            self._condition.notify_all()

    def _deliver_all(self) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._closing:
                    self._condition.wait()
                if not self._pending:
                    return
                pending = self._in_flight = self._pending.popleft()
            body = pending.body
            try:
                delivery = sinks.deliver(
                    pending.sink,
                    events_lib.encode(body),
                    body["event"],
                    body["id"],
                    stop=self._give_up,
                )
            except Exception as error:  # noqa: BLE001 - the thread must outlive any one delivery
                delivery = sinks.Delivery(False, None, f"{type(error).__name__}: {error}")
            with self._condition:
                self._in_flight = None
            self._settle(pending, delivery)

    def _settle(self, pending: _Pending, delivery: sinks.Delivery) -> None:
        """Records a webhook delivery's end once (the worker and close() may both try)."""
        with self._condition:
            if pending.settled:
                return
            pending.settled = True
        kind, sink = pending.body["event"], pending.sink
        if delivery.delivered:
            self._record(Outcome(kind, sink.name, True, "delivered"))
            return
        attempts = "" if delivery.attempts is None else f" after {delivery.attempts} attempts"
        logger.warning(
            "notification %s to webhook %s (%s) failed%s: %s",
            kind,
            sink.name,
            sink.where(),
            attempts,
            delivery.error,
        )
        self._record(Outcome(kind, sink.name, False, f"failed{attempts}: {delivery.error}"))
        failure = {
            "record": FAILURE_RECORD,
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "sink": sink.name,
            "url": sink.where(),
            "attempts": delivery.attempts,
            "error": delivery.error,
            "notification": pending.body,
        }
        for jsonl in self.config.jsonl_sinks():
            self._write(jsonl, failure, kind, record_outcome=False)

    def _write(
        self, sink: JsonlSink, record: dict[str, Any], kind: str, record_outcome: bool = True
    ) -> None:
        try:
            sinks.append_line(sink.path, record)
        except (OSError, ValueError) as error:
            logger.warning("notification %s not written to %s: %s", kind, sink.path, error)
            if record_outcome:
                self._record(Outcome(kind, sink.name, False, f"not written: {error}"))
            return
        if record_outcome:
            self._record(Outcome(kind, sink.name, True, "written"))

    def _record(self, outcome: Outcome) -> None:
        with self._condition:
            self._outcomes.append(outcome)


def describe_outcomes(outcomes: Sequence[Outcome]) -> list[str]:
    """One line per event for the console: 'pushed -> chat: delivered; audit: written'."""
    by_event: dict[str, list[str]] = {}
    for outcome in outcomes:
        by_event.setdefault(outcome.event, []).append(f"{outcome.sink}: {outcome.detail}")
    return [f"{event} -> {'; '.join(parts)}" for event, parts in by_event.items()]

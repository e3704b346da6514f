"""Where events go: a webhook gets each one as signed JSON (retried), a JSONL file one line each.

The webhook's signature (docs/operations.md#notifications has a receiver's check):

    X-Notification-Timestamp: <unix time in whole seconds when this attempt was sent>
    X-Notification-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

over the exact body bytes; a receiver recomputes it, compares in constant time and refuses a
timestamp older than a few minutes, so a captured request cannot be replayed later. Each retry
is signed again with its own timestamp; the body, and its `id`, stay the same.
"""

import dataclasses
import hashlib
import hmac
import http.client
import json
import os
import pathlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from tfx_pipeline.notifications.config import WebhookSink

TIMESTAMP_HEADER = "X-Notification-Timestamp"
SIGNATURE_HEADER = "X-Notification-Signature"
EVENT_HEADER = "X-Notification-Event"
ID_HEADER = "X-Notification-Id"
SIGNATURE_PREFIX = "sha256="
USER_AGENT = "taxi-tfx-notifications/1"
# The answer's body only tells a human what went wrong; a little of it is plenty.
MAX_ANSWER_BYTES = 2048


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 with `secret` over `timestamp`, a dot, then `body`."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


def signed_headers(secret: bytes, body: bytes, event: str, event_id: str, now: float) -> dict:
    timestamp = str(int(now))
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        EVENT_HEADER: event,
        ID_HEADER: event_id,
    }


def retry_delay(sink: WebhookSink, attempt: int) -> float:
    """Seconds to wait before attempt number `attempt` (2, 3, ...): backoff, doubling."""
    return sink.backoff_seconds * 2 ** (attempt - 2)


@dataclasses.dataclass(frozen=True)
class Delivery:
    """How a webhook delivery ended."""

    delivered: bool
    attempts: int | None  # None: unknown (still in flight when the process stopped waiting)
    error: str = ""  # the last attempt's error, or why it was given up


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is the receiver's answer, not an invitation to re-send the signed body elsewhere."""

    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_RefuseRedirects)


def post_once(sink: WebhookSink, body: bytes, headers: Mapping[str, str]) -> tuple[bool, str]:
    """One POST; returns (worth retrying, error), with an empty error on a 2xx answer.

    Connection errors, timeouts, 5xx and 429 are worth retrying; any other answer is final.
    """
    request = urllib.request.Request(sink.url, data=body, headers=dict(headers), method="POST")
    try:
        with _OPENER.open(request, timeout=sink.timeout_seconds) as answer:
            answer.read(MAX_ANSWER_BYTES)
            return False, ""
    except urllib.error.HTTPError as error:
        try:
            text = error.read(MAX_ANSWER_BYTES).decode("utf-8", "replace").strip()
        except (OSError, http.client.HTTPException):
            text = ""
        finally:
            error.close()
        message = f"HTTP {error.code} {error.reason}" + (f": {text[:200]}" if text else "")
        return error.code >= 500 or error.code == 429, message
    except urllib.error.URLError as error:
        return True, f"cannot connect to {sink.where()}: {error.reason}"
    except (OSError, http.client.HTTPException) as error:
        # Timeouts (TimeoutError is an OSError), resets, a malformed answer.
        return True, f"{type(error).__name__} talking to {sink.where()}: {error}"


def deliver(
    sink: WebhookSink,
    body: bytes,
    event: str,
    event_id: str,
    stop: threading.Event,
    clock: Callable[[], float] = time.time,
) -> Delivery:
    """POSTs `body` until it is accepted, refused for good, or out of attempts; never raises.

    `stop` cuts a backoff wait short (the process is exiting): the delivery is then given up.
    """
    error = ""
    for attempt in range(1, sink.attempts + 1):
        if attempt > 1 and stop.wait(retry_delay(sink, attempt)):
            return Delivery(
                False, attempt - 1, f"{error}; no retry: the process stopped waiting to exit"
            )
        headers = signed_headers(sink.secret, body, event, event_id, clock())
        retry, error = post_once(sink, body, headers)
        if not error:
            return Delivery(True, attempt)
        if not retry:
            return Delivery(False, attempt, error)
    return Delivery(False, sink.attempts, error)


def append_line(path: pathlib.Path, record: Mapping[str, Any]) -> None:
    """Appends `record` as one JSON line: one write() on an O_APPEND descriptor.

    Concurrent writers (the run, the watch loop, the monitor) therefore never interleave
    within a line. Raises OSError.
    """
    line = json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    data = (line + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(descriptor, data)
        if written != len(data):
            raise OSError(f"short write to {path}: {written} of {len(data)} bytes (disk full?)")
    finally:
        os.close(descriptor)

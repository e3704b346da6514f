"""The events a notification can be about, one event, and the JSON payload every sink receives.

A new kind of event is one constant and one line in EVENT_KINDS; the notifications file, the
docs and the tests take the list from here.
"""

import dataclasses
import datetime
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

RUN_FAILED = "run_failed"
DATA_REFUSED = "data_refused"
NOT_BLESSED = "not_blessed"
PUSHED = "pushed"
ROLLBACK = "rollback"
MONITOR_ALERT = "monitor_alert"
LIVE_QUALITY_DROP = "live_quality_drop"

# Every event kind, with what it means (the notifications file may route only these).
EVENT_KINDS: dict[str, str] = {
    RUN_FAILED: "a pipeline run failed (a component or the runner itself)",
    DATA_REFUSED: "the DataGate refused the new span: anomalies break the data policy",
    NOT_BLESSED: "the run finished but the Evaluator or the InfraValidator did not bless the model",
    PUSHED: "a new version was pushed to the serving directory",
    ROLLBACK: "python -m serving.rollback took versions out of service (seen by the watch loop)",
    MONITOR_ALERT: "python -m tfx_pipeline.monitor found skew in the served traffic",
    LIVE_QUALITY_DROP: "the served model's quality on labelled traffic dropped",
}

# Slack reads these three as markup in `text`; its documented escapes keep them literal.
_SLACK_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))


@dataclasses.dataclass(frozen=True)
class Event:
    """One thing that happened, as the caller tells it.

    Attributes:
      kind: one of EVENT_KINDS.
      title: the one-line summary after the pipeline's name ("version 7 pushed (AUC 0.934)").
      details: structured facts for machines (JSON-serialisable; others are sent as strings).
      summary_lines: a few lines for people, shown under the title.
      run_id: the pipeline run it is about, when there is one.
    """

    kind: str
    title: str
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    summary_lines: Sequence[str] = ()
    run_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(
                f"unknown notification event {self.kind!r}; known: {', '.join(EVENT_KINDS)}"
            )


def slack_escape(text: str) -> str:
    for plain, escaped in _SLACK_ESCAPES:
        text = text.replace(plain, escaped)
    return text


def payload(event: Event, pipeline: str, now: datetime.datetime | None = None) -> dict[str, Any]:
    """The JSON object every sink gets: Slack's `text`, then the structured fields.

    Slack's incoming webhooks show `text` and ignore the other fields; any other receiver reads
    `event`, `pipeline`, `run_id`, `time`, `details` and can drop a retried delivery by `id`.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    lines = [f"{pipeline}: {event.title}", *event.summary_lines]
    return {
        "text": slack_escape("\n".join(lines)),
        "id": uuid.uuid4().hex,
        "event": event.kind,
        "pipeline": pipeline,
        "run_id": event.run_id,
        "time": now.isoformat(timespec="seconds"),
        "title": event.title,
        "summary": list(event.summary_lines),
        "details": plain(dict(event.details)),
    }


def plain(value: Any) -> Any:
    """`value` as strict JSON data: NaN and infinities become null, other objects strings."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def encode(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact UTF-8 JSON."""
    text = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")

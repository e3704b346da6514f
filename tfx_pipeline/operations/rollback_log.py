"""The serving directory's rollback log, followed: each rollback logged since the last look, as an event.

`python -m serving.rollback` appends one JSON line per rollback to `rollbacks.jsonl` in the model
folder (serving/ and the pipeline never import each other; tests/test_contracts.py holds the file
name and its fields together). The watch loop asks `RollbackLogFollower.new_events()` each cycle.
How many lines were notified is kept under the output directory: a restarted loop notifies no
rollback twice, and a log that was there before notifications were set up is not news.
"""

import json
import logging
import os
import pathlib
from typing import Any

from tfx_pipeline.notifications import events

LOG_NAME = "rollbacks.jsonl"
STATE_NAME = "rollbacks-notified.json"

logger = logging.getLogger(__name__)


def complete_lines(path: pathlib.Path) -> list[str]:
    """The log's lines that end in a newline (a line being appended is left for the next look)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return data.decode("utf-8", "replace").split("\n")[:-1]


def rollback_event(line: str, log_path: pathlib.Path) -> events.Event:
    """One logged rollback as a `rollback` event."""
    try:
        record: dict[str, Any] = json.loads(line)
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except ValueError:
        return events.Event(
            events.ROLLBACK,
            f"rollback logged, but its line in {log_path} is not readable",
            {"log": str(log_path), "line": line[:500]},
        )
    reason = record.get("reason") or "no reason given"
    moved = ", ".join(str(v) for v in record.get("moved_aside", [])) or "?"
    return events.Event(
        events.ROLLBACK,
        f"rolled back to version {record.get('to_version')} "
        f"(from {record.get('from_version')}): {reason}",
        {**record, "model_dir": str(log_path.parent), "log": str(log_path)},
        [
            f"by {record.get('user', '?')} at {record.get('time', '?')}",
            f"moved aside: {moved} (in {log_path.parent})",
        ],
    )


class RollbackLogFollower:
    """New lines of one model folder's rollback log, as events; state kept in `state_dir`."""

    def __init__(self, model_dir: pathlib.Path, state_dir: pathlib.Path) -> None:
        self.log_path = model_dir / LOG_NAME
        self.state_path = state_dir / STATE_NAME
        self._key = str(model_dir.resolve())

    def new_events(self) -> list[events.Event]:
        """Rollbacks logged since the last call (of any follower on this state); never raises.

        The first look at a log records its length and returns nothing; a log shorter than
        recorded was replaced, and all its lines are new.
        """
        try:
            lines = complete_lines(self.log_path)
            state = self._read_state()
            seen = state.get(self._key)
            if not isinstance(seen, int) or seen < 0:
                seen = len(lines)
            elif seen > len(lines):
                seen = 0
            if state.get(self._key) != len(lines):
                self._write_state({**state, self._key: len(lines)})
        except OSError as error:
            logger.warning("rollback log %s not followed this cycle: %s", self.log_path, error)
            return []
        return [rollback_event(line, self.log_path) for line in lines[seen:]]

    def _read_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:
            logger.warning("%s is not JSON; starting it afresh", self.state_path)
            return {}
        return state if isinstance(state, dict) else {}

    def _write_state(self, state: dict[str, Any]) -> None:
        # Written beside and renamed: a crash never leaves half a state file.
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_path.with_name(f".{self.state_path.name}.partial")
        partial.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        os.replace(partial, self.state_path)

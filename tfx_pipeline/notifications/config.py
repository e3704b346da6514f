"""The notifications file (`--notifications PATH`): the sinks, and which events go to each.

    {
      "sinks": {
        "team-chat": {"type": "webhook", "url": "https://hooks.slack.com/services/...",
                      "secret_env": "TAXI_WEBHOOK_SECRET"},
        "audit": {"type": "jsonl", "path": "notifications.jsonl"}
      },
      "events": {"run_failed": ["team-chat", "audit"], "pushed": ["audit"]}
    }

An event kind not under "events" goes nowhere; no file, no notifications. `read_config` checks
everything up front (keys, event kinds, sink names, the URL, numbers, that the secret's
environment variable is set) and raises ConfigProblems naming every problem.
"""

import argparse
import dataclasses
import json
import math
import os
import pathlib
import urllib.parse
from typing import Any

from tfx_pipeline.notifications.events import EVENT_KINDS
from tfx_pipeline.problems import ConfigProblems, raise_if_any

WEBHOOK = "webhook"
JSONL = "jsonl"

# (default, lowest, highest) of each number; the bounds catch milliseconds typed as seconds.
TIMEOUT_SECONDS = (5.0, 0.001, 60.0)
ATTEMPTS = (4, 1, 10)
BACKOFF_SECONDS = (1.0, 0.0, 60.0)
EXIT_WAIT_SECONDS = (10.0, 0.0, 300.0)

TOP_LEVEL_KEYS = {"sinks", "events", "exit_wait_seconds"}
SINK_KEYS = {
    WEBHOOK: {"type", "url", "secret_env", "timeout_seconds", "attempts", "backoff_seconds"},
    JSONL: {"type", "path"},
}
REQUIRED_SINK_KEYS = {WEBHOOK: ("url", "secret_env"), JSONL: ("path",)}


@dataclasses.dataclass(frozen=True)
class WebhookSink:
    """POST each event as signed JSON to `url`; retried on connection errors, 5xx and 429."""

    name: str
    url: str
    secret_env: str
    secret: bytes = dataclasses.field(repr=False)
    timeout_seconds: float = TIMEOUT_SECONDS[0]  # per attempt (each connect and read)
    attempts: int = ATTEMPTS[0]  # in all, the first one included
    backoff_seconds: float = BACKOFF_SECONDS[0]  # before the 2nd attempt; doubles each time

    def where(self) -> str:
        """The URL without its path: Slack's webhook path is itself a secret, so logs omit it."""
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


@dataclasses.dataclass(frozen=True)
class JsonlSink:
    """Append each event, and each failed webhook delivery, as one JSON line to `path`."""

    name: str
    path: pathlib.Path


Sink = WebhookSink | JsonlSink


@dataclasses.dataclass(frozen=True)
class NotificationConfig:
    """Sinks by name and the sink names of each event kind; the empty config notifies nothing."""

    sinks: dict[str, Sink] = dataclasses.field(default_factory=dict)
    routes: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    exit_wait_seconds: float = EXIT_WAIT_SECONDS[0]
    source: pathlib.Path | None = None  # the file it was read from

    def sinks_for(self, kind: str) -> list[Sink]:
        return [self.sinks[name] for name in self.routes.get(kind, ())]

    def jsonl_sinks(self) -> list[JsonlSink]:
        return [sink for sink in self.sinks.values() if isinstance(sink, JsonlSink)]


def add_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The `--notifications PATH` flag, the same for every command that notifies."""
    parser.add_argument(
        "--notifications",
        type=pathlib.Path,
        metavar="PATH",
        help="JSON file naming the sinks (a signed webhook, a JSONL file) and which events go to "
        "each (docs/operations.md#notifications); without it nothing is notified",
    )


def read_config(path: pathlib.Path | str) -> NotificationConfig:
    """Reads and checks a notifications file; raises ConfigProblems naming every problem."""
    path = pathlib.Path(path)
    context = f"notifications file {path}"
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigProblems([f"{context} does not exist"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigProblems([f"{context} cannot be read: {error}"]) from None
    except ValueError as error:
        raise ConfigProblems([f"{context} is not JSON: {error}"]) from None
    return parse_config(content, base_dir=path.resolve().parent, source=path, context=context)


def parse_config(
    content: Any,
    base_dir: pathlib.Path,
    source: pathlib.Path | None = None,
    context: str = "notifications",
) -> NotificationConfig:
    """Checks the file's content; relative JSONL paths are taken from `base_dir`."""
    if not isinstance(content, dict):
        raise_if_any(["must be a JSON object with 'sinks' and 'events'"], context)
    problems: list[str] = []
    unknown = sorted(set(content) - TOP_LEVEL_KEYS)
    if unknown:
        problems.append(
            f"unknown keys {unknown}; expected only {sorted(TOP_LEVEL_KEYS)} at the top level"
        )
    sinks = _parse_sinks(content.get("sinks"), base_dir, problems)
    declared = set(content["sinks"]) if isinstance(content.get("sinks"), dict) else set()
    routes = _parse_routes(content.get("events"), declared, problems)
    exit_wait = _number(content, "exit_wait_seconds", EXIT_WAIT_SECONDS, float, "", problems)
    raise_if_any(problems, context)
    return NotificationConfig(
        sinks=sinks, routes=routes, exit_wait_seconds=exit_wait, source=source
    )


def _parse_sinks(raw: Any, base_dir: pathlib.Path, problems: list[str]) -> dict[str, Sink]:
    if raw is None:
        problems.append("'sinks' is missing: name at least one sink (a webhook or a jsonl file)")
        return {}
    if not isinstance(raw, dict) or not raw:
        problems.append("'sinks' must be a non-empty object of sink name -> settings")
        return {}
    sinks: dict[str, Sink] = {}
    for name, settings in raw.items():
        where = f"sink {name!r}"
        if not isinstance(settings, dict):
            problems.append(f"{where} must be an object with a 'type'")
            continue
        kind = settings.get("type")
        if kind not in SINK_KEYS:
            problems.append(f"{where}: type must be one of {sorted(SINK_KEYS)}, got {kind!r}")
            continue
        unknown = sorted(set(settings) - SINK_KEYS[kind])
        if unknown:
            problems.append(
                f"{where}: unknown keys {unknown}; a {kind} sink takes {sorted(SINK_KEYS[kind])}"
            )
        missing = [key for key in REQUIRED_SINK_KEYS[kind] if key not in settings]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        before = len(problems)
        sink = (_webhook if kind == WEBHOOK else _jsonl)(name, settings, base_dir, problems)
        if len(problems) == before and not unknown:
            sinks[name] = sink
    return sinks


def _webhook(name: str, settings: dict, _: pathlib.Path, problems: list[str]) -> WebhookSink:
    where = f"sink {name!r}"
    url = settings["url"]
    if not isinstance(url, str):
        problems.append(f"{where}: url must be a string, got {url!r}")
        url = ""
    else:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # The URL itself is not repeated: a Slack webhook's path is a secret.
            problems.append(
                f"{where}: url must be an http:// or https:// URL with a host "
                f"(got scheme {parts.scheme!r}, host {parts.hostname!r})"
            )
    secret_env = settings["secret_env"]
    secret = b""
    if not isinstance(secret_env, str) or not secret_env:
        problems.append(
            f"{where}: secret_env must name an environment variable, got {secret_env!r}"
        )
    elif not os.environ.get(secret_env):
        problems.append(
            f"{where}: environment variable {secret_env} (secret_env, the HMAC signing secret) "
            "is not set or empty; export it before running"
        )
    else:
        secret = os.environ[secret_env].encode("utf-8")

    def number(key: str, bounds: tuple[float, float, float], kind: type) -> Any:
        return _number(settings, key, bounds, kind, where, problems)

    return WebhookSink(
        name=name,
        url=url,
        secret_env=str(secret_env),
        secret=secret,
        timeout_seconds=number("timeout_seconds", TIMEOUT_SECONDS, float),
        attempts=number("attempts", ATTEMPTS, int),
        backoff_seconds=number("backoff_seconds", BACKOFF_SECONDS, float),
    )


def _jsonl(name: str, settings: dict, base_dir: pathlib.Path, problems: list[str]) -> JsonlSink:
    raw = settings["path"]
    if not isinstance(raw, str) or not raw.strip():
        problems.append(f"sink {name!r}: path must be a file path, got {raw!r}")
        return JsonlSink(name=name, path=base_dir)
    path = base_dir / pathlib.Path(raw).expanduser()
    if path.is_dir():
        problems.append(f"sink {name!r}: path {path} is a folder; name a file to append to")
    return JsonlSink(name=name, path=path)


def _parse_routes(raw: Any, declared: set[str], problems: list[str]) -> dict[str, tuple[str, ...]]:
    if raw is None:
        problems.append(
            f"'events' is missing: map event kinds ({', '.join(EVENT_KINDS)}) to sink names"
        )
        return {}
    if not isinstance(raw, dict):
        problems.append("'events' must be an object of event kind -> list of sink names")
        return {}
    routes = {}
    for kind, names in raw.items():
        if kind not in EVENT_KINDS:
            problems.append(f"unknown event {kind!r}; known events: {', '.join(EVENT_KINDS)}")
            continue
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            problems.append(f"event {kind!r}: expected a list of sink names, got {names!r}")
            continue
        # A declared sink that failed its own checks is reported there, not again here.
        # With no usable 'sinks' at all, that one problem says it.
        unknown = [n for n in names if n not in declared] if declared else []
        if unknown:
            problems.append(
                f"event {kind!r}: no sink named {', '.join(map(repr, unknown))} under 'sinks'"
            )
        routes[kind] = tuple(dict.fromkeys(names))
    return routes


def _number(
    settings: dict,
    key: str,
    bounds: tuple[float, float, float],
    kind: type,
    where: str,
    problems: list[str],
) -> Any:
    default, low, high = bounds
    value = settings.get(key, default)
    label = f"{where}: {key}" if where else key
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int and not (is_number and float(value).is_integer()):
        problems.append(f"{label} must be a whole number, got {value!r}")
        return default
    if not is_number or not math.isfinite(value):
        problems.append(f"{label} must be a number, got {value!r}")
        return default
    if not low <= value <= high:
        problems.append(f"{label} must be within [{low:g}, {high:g}], got {value!r}")
        return default
    return kind(value)

"""Model lifecycle as TF Serving runs it: poll base paths, load new versions, route, unload old ones.

Each configured model has a base path holding integer version folders (the Pusher's layout). A
poll lists them, applies the model's version policy (latest N, all, or specific versions), loads
wanted versions that are not loaded yet and only then retires the ones no longer wanted, so a
request always finds a fully loaded version. A version that fails to load is logged and marked
with its error; it is retried only when its files change, and never served.
"""

import dataclasses
import enum
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from serving.errors import ServingError

log = logging.getLogger(__name__)


class VersionPolicy(enum.Enum):
    LATEST = "latest"
    ALL = "all"
    SPECIFIC = "specific"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One served model: what TF Serving's ModelConfig says about it."""

    name: str
    base_path: str
    policy: VersionPolicy = VersionPolicy.LATEST
    latest_count: int = 1
    specific_versions: tuple[int, ...] = ()
    labels: tuple[tuple[str, int], ...] = ()
    # TF Serving's logging_config: set when the model config file asks to log this model.
    log_sampling_rate: float | None = None
    log_filename_prefix: str = ""

    def wanted(self, available: Iterable[int]) -> set[int]:
        """The versions on disk that this policy serves."""
        versions = sorted(set(available))
        if self.policy is VersionPolicy.ALL:
            return set(versions)
        if self.policy is VersionPolicy.SPECIFIC:
            return set(versions) & set(self.specific_versions)
        return set(versions[-self.latest_count :]) if versions else set()


class State(enum.Enum):
    """TF Serving's ModelVersionStatus states, in the spelling its JSON uses."""

    START = "START"
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    UNLOADING = "UNLOADING"
    END = "END"


@dataclasses.dataclass
class VersionStatus:
    version: int
    state: State
    error_code: str = "OK"
    error_message: str = ""


@dataclasses.dataclass
class LoadedVersion:
    """A version ready to answer requests; `servable` is whatever the loader returned."""

    model_name: str
    version: int
    path: str
    servable: Any


def version_folders(base_path: str) -> dict[int, str]:
    """Integer-named sub-folders of `base_path` (other names are ignored, as TF Serving does)."""
    try:
        entries = list(os.scandir(base_path))
    except FileNotFoundError:
        return {}
    return {
        int(entry.name): entry.path
        for entry in entries
        if entry.name.isdigit() and entry.is_dir(follow_symlinks=False)
    }


def folder_signature(path: str) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and mtimes of every file below `path`: changes when a version is rewritten."""
    signature = []
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            try:
                stat = os.stat(full)
            except OSError:
                continue
            signature.append((os.path.relpath(full, path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(signature))


class ModelManager:
    """Keeps the wanted versions of every model loaded and answers which one serves a request.

    Args:
      specs: the models to serve.
      loader: loads one version folder and returns the servable; raises on a bad version.
      poll_seconds: how often the base paths are listed (TF Serving's
        --file_system_poll_wait_seconds); 0 polls only when `poll` is called.
      on_change: called after the set of loaded versions changed (e.g. to reset batchers).
    """

    def __init__(
        self,
        specs: Iterable[ModelSpec],
        loader: Callable[[str], Any],
        poll_seconds: float = 1.0,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._specs = {spec.name: spec for spec in specs}
        self._loader = loader
        self._poll_seconds = poll_seconds
        self._on_change = on_change
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._loaded: dict[str, dict[int, LoadedVersion]] = {name: {} for name in self._specs}
        self._status: dict[str, dict[int, VersionStatus]] = {name: {} for name in self._specs}
        self._failed: dict[tuple[str, int], tuple] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def model_names(self) -> list[str]:
        return sorted(self._specs)

    def spec(self, name: str) -> ModelSpec | None:
        return self._specs.get(name)

    def start(self) -> None:
        """Loads what is on disk now, then keeps polling in a background thread."""
        self.poll()
        if self._poll_seconds > 0:
            self._thread = threading.Thread(
                target=self._poll_forever, name="version-poller", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _poll_forever(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - the poller must survive anything a disk can do
                log.exception("polling the model base paths failed; retrying next poll")

    def poll(self) -> None:
        """One pass over every model: load new wanted versions, then retire unwanted ones."""
        with self._poll_lock:
            changed = False
            for spec in self._specs.values():
                changed |= self._poll_model(spec)
            if changed and self._on_change is not None:
                self._on_change()

    def _poll_model(self, spec: ModelSpec) -> bool:
        on_disk = version_folders(spec.base_path)
        wanted = spec.wanted(on_disk)
        with self._lock:
            loaded = set(self._loaded[spec.name])
        changed = False
        for version in sorted(wanted - loaded, reverse=True):
            changed |= self._load(spec, version, on_disk[version])
        with self._lock:
            now_loaded = set(self._loaded[spec.name])
        # Retire old versions only when at least one wanted version serves, so that a broken
        # new version never takes the working one out of service.
        if now_loaded & wanted:
            for version in sorted(now_loaded - wanted):
                self._unload(spec.name, version)
                changed = True
        elif not wanted:
            for version in sorted(now_loaded):
                self._unload(spec.name, version)
                changed = True
        return changed

    def _load(self, spec: ModelSpec, version: int, path: str) -> bool:
        key = (spec.name, version)
        signature = folder_signature(path)
        if self._failed.get(key) == signature:
            return False  # already failed with exactly these files; wait until they change
        with self._lock:
            self._status[spec.name][version] = VersionStatus(version, State.LOADING)
        started = time.monotonic()
        try:
            servable = self._loader(path)
        except Exception as error:  # noqa: BLE001 - any failure means "do not serve this version"
            message = f"Failed to load servable {spec.name} version {version} from {path}: {error}"
            log.error(message)
            self._failed[key] = signature
            with self._lock:
                self._status[spec.name][version] = VersionStatus(
                    version, State.END, error_code="UNKNOWN", error_message=message
                )
            return False
        self._failed.pop(key, None)
        with self._lock:
            self._loaded[spec.name][version] = LoadedVersion(spec.name, version, path, servable)
            self._status[spec.name][version] = VersionStatus(version, State.AVAILABLE)
        log.info(
            "Successfully loaded servable version {name: %s version: %d} in %.1f s",
            spec.name,
            version,
            time.monotonic() - started,
        )
        return True

    def _unload(self, name: str, version: int) -> None:
        with self._lock:
            self._loaded[name].pop(version, None)
            self._status[name][version] = VersionStatus(version, State.END)
        log.info("Unloaded servable version {name: %s version: %d}", name, version)

    def resolve(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> LoadedVersion:
        """The loaded version a request addresses; raises ServingError(NOT_FOUND) like TF Serving."""
        spec = self._specs.get(name)
        if spec is None:
            raise ServingError.not_found(
                f"Servable not found for request: {_request_text(name, version, label)}"
            )
        if label is not None:
            labels = dict(spec.labels)
            if label not in labels:
                raise ServingError.invalid_argument(f"Unrecognized servable version label: {label}")
            version = labels[label]
        with self._lock:
            versions = self._loaded[name]
            if version is None:
                if versions:
                    return versions[max(versions)]
            elif version in versions:
                return versions[version]
        raise ServingError.not_found(
            f"Servable not found for request: {_request_text(name, version, label)}"
        )

    def statuses(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """Version statuses for GET /v1/models/{name}[/versions/{v}], newest first.

        Like TF Serving, versions that were unloaded or failed stay listed (state END), and a
        label in the status URL is ignored.
        """
        if name not in self._specs:
            raise ServingError.not_found(f"Could not find any versions of model {name}")
        with self._lock:
            statuses = dict(self._status[name])
        if version is not None:
            if version not in statuses:
                raise ServingError.not_found(f"Could not find version {version} of model {name}")
            return [statuses[version]]
        if not statuses:
            raise ServingError.not_found(f"Could not find any versions of model {name}")
        return [statuses[v] for v in sorted(statuses, reverse=True)]

    def loaded_versions(self, name: str) -> list[int]:
        with self._lock:
            return sorted(self._loaded.get(name, {}))


def _request_text(name: str, version: int | None, label: str | None) -> str:
    """TF Serving's ServableRequest::DebugString."""
    if version is not None:
        return f"Specific({name}, {version})"
    return f"Latest({name})"

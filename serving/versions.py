"""Model lifecycle as TF Serving runs it: poll base paths, load new versions, route, unload old ones.

Each configured model has a base path holding integer version folders (the Pusher's layout). A
poll lists them, applies the model's version policy (latest N, all, or specific versions), loads
wanted versions that are not loaded yet and only then retires the ones no longer wanted, so a
request always finds a fully loaded version. A version that fails to load is logged and marked
with its error; it is retried only when its files change, and never served.

Where this differs from TF Serving 2.16.1 (sources/storage_path/file_system_storage_path_source.cc):
- Each model is polled on its own. TF Serving stops the whole poll at the first base path it
  cannot list (PollFileSystemForConfig returns on the first error), so a base path that is a
  file freezes every other model too; here the others keep polling, and the broken model keeps
  its loaded versions (as TF Serving does for a base path it cannot find).
- TF Serving aspires every child whose name parses as an integer (Env::GetChildren does not look
  at the type) and lets the load fail for a file or a dangling symlink; here those are skipped.
  Every skipped child is logged once, with the reason, not on every poll.
- A symlink to a folder is a version, as in TF Serving, whose loader opens the path and so
  follows the link, wherever it points. Following it grants nothing new: whoever can create the
  link in the base path can as well copy any model there. Each such link is logged once with
  the folder it resolves to.
"""

import dataclasses
import enum
import gc
import logging
import os
import re
import threading
import time
import weakref
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
    # What its requests' rows are checked against (serving/request_schema.py), set by the
    # server once the version is warmed up; None: not checked.
    request_schema: Any = None


# ASCII digits only: str.isdigit() also accepts digits such as "²" that int() refuses.
VERSION_NAME = re.compile(r"[0-9]+")
# TF Serving parses version names as int64 (strings::safe_strto64).
MAX_VERSION = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class BasePathListing:
    """One listing of a base path.

    Attributes:
      versions: version number -> folder to load (a symlink to a folder counts).
      skipped: name -> why that child is not a version.
      symlinks: version number -> the folder its symlink resolves to.
    """

    versions: dict[int, str]
    skipped: dict[str, str]
    symlinks: dict[int, str]


def _why_not_a_version(entry: os.DirEntry) -> str | None:
    """Why this child of a base path is not a version folder, or None when it is one."""
    if not VERSION_NAME.fullmatch(entry.name):
        return "its name is not a version number"
    if int(entry.name) > MAX_VERSION:
        return "its number is beyond int64, which TF Serving cannot parse"
    try:
        if entry.is_dir():  # follows a symlink, as TF Serving's loader does
            return None
    except OSError as error:  # e.g. a symlink loop
        return f"it cannot be read ({error.strerror or error})"
    if entry.is_symlink():
        target = os.readlink(entry.path)
        if not os.path.exists(entry.path):
            return f"it is a dangling symlink (to {target})"
        return f"it is a symlink to a file ({target}), not a folder"
    return "it is a file, not a folder"


def list_base_path(base_path: str) -> BasePathListing:
    """The version folders of `base_path` and why every other child is not one.

    Raises OSError (or ValueError for an impossible path) when `base_path` cannot be listed:
    missing, a file, unreadable.
    """
    versions: dict[int, str] = {}
    names: dict[int, str] = {}
    skipped: dict[str, str] = {}
    symlinks: dict[int, str] = {}
    with os.scandir(base_path) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        reason = _why_not_a_version(entry)
        if reason is not None:
            skipped[entry.name] = reason
            continue
        version = int(entry.name)
        if version in names:
            # "7" and "007": TF Serving warns and serves one of them, the last it lists.
            skipped[names[version]] = f"{entry.name} names the same version and is served instead"
            symlinks.pop(version, None)
        versions[version] = entry.path
        names[version] = entry.name
        if entry.is_symlink():
            symlinks[version] = os.path.realpath(entry.path)
    return BasePathListing(versions, skipped, symlinks)


def version_folders(base_path: str) -> dict[int, str]:
    """Integer-named sub-folders of `base_path`, symlinks to folders included ({} if missing)."""
    try:
        return list_base_path(base_path).versions
    except FileNotFoundError:
        return {}


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
      warmup: called with each newly loaded version while it is still LOADING; what it raises
        fails the load (TF Serving runs SavedModel warmup inside the loader).
      release_delay_seconds: how long a retired version is kept before the manager lets go of
        it and collects its garbage, so that neither its teardown nor the collection runs
        beside the new version's first requests (see `_release_later`, `_collect_released`);
        0 lets go and collects at once.
    """

    def __init__(
        self,
        specs: Iterable[ModelSpec],
        loader: Callable[[str], Any],
        poll_seconds: float = 1.0,
        on_change: Callable[[], None] | None = None,
        warmup: Callable[[LoadedVersion], None] | None = None,
        release_delay_seconds: float = 1.0,
    ) -> None:
        self._specs = {spec.name: spec for spec in specs}
        self._loader = loader
        self._warmup = warmup
        self._release_delay_seconds = release_delay_seconds
        self._poll_seconds = poll_seconds
        self._on_change = on_change
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._loaded: dict[str, dict[int, LoadedVersion]] = {name: {} for name in self._specs}
        self._status: dict[str, dict[int, VersionStatus]] = {name: {} for name in self._specs}
        self._failed: dict[tuple[str, int], tuple] = {}
        # What was last logged per model, so that a poll every second logs a problem once.
        self._poll_problems: dict[str, str] = {}
        self._skipped: dict[str, dict[str, str]] = {name: {} for name in self._specs}
        self._symlinks: dict[str, dict[int, str]] = {name: {} for name in self._specs}
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
        last_problem = None
        while not self._stop.wait(self._poll_seconds):
            try:
                self.poll()
                last_problem = None
            except Exception as error:  # noqa: BLE001 - the poller must survive anything
                if repr(error) != last_problem:
                    log.exception("polling the models failed; retrying every poll")
                last_problem = repr(error)

    def poll(self) -> None:
        """One pass over every model: load new wanted versions, then retire unwanted ones.

        Models are polled one by one: a model whose base path cannot be listed, or whose poll
        fails in any other way, keeps its loaded versions and does not hold the others back.
        """
        with self._poll_lock:
            changed = False
            for spec in self._specs.values():
                before = self.loaded_versions(spec.name)
                try:
                    self._poll_model(spec)
                except Exception as error:  # noqa: BLE001 - one model must not stop the others
                    self._report_poll_problem(spec, error)
                else:
                    self._clear_poll_problem(spec)
                changed |= self.loaded_versions(spec.name) != before
            if changed and self._on_change is not None:
                self._on_change()

    def reload(self, specs: Iterable[ModelSpec]) -> None:
        """Serves exactly `specs` from now on (TF Serving's HandleReloadConfigRequest).

        Models no longer listed are unloaded (their versions stay listed as END until the
        model is configured again); new ones are loaded before this returns; changed policies
        and labels apply at once.
        """
        new_specs = {spec.name: spec for spec in specs}
        with self._poll_lock:
            with self._lock:
                for name in new_specs:
                    for table in (self._loaded, self._status, self._skipped, self._symlinks):
                        table.setdefault(name, {})
                removed = sorted(set(self._specs) - set(new_specs))
                self._specs = new_specs
            for name in removed:
                for version in self.loaded_versions(name):
                    self._unload(name, version)
                self._poll_problems.pop(name, None)
            if removed and self._on_change is not None:
                self._on_change()
        self.poll()

    def _report_poll_problem(self, spec: ModelSpec, error: Exception) -> None:
        """Logs why `spec` cannot be polled, once per distinct reason."""
        reason = f"{type(error).__name__}: {error}"
        if self._poll_problems.get(spec.name) == reason:
            return
        self._poll_problems[spec.name] = reason
        loaded = self.loaded_versions(spec.name)
        log.log(
            logging.WARNING if isinstance(error, FileNotFoundError) else logging.ERROR,
            "Cannot poll servable %s at base path %s (%s); %s. Other models are polled as "
            "usual; retrying every poll, logged again only if the reason changes",
            spec.name,
            spec.base_path,
            reason,
            f"its loaded versions {loaded} keep serving" if loaded else "no version is loaded",
            exc_info=not isinstance(error, OSError),  # anything else is a bug: show where
        )

    def _clear_poll_problem(self, spec: ModelSpec) -> None:
        if self._poll_problems.pop(spec.name, None) is not None:
            log.info("Polling servable %s at base path %s works again", spec.name, spec.base_path)

    def _report_listing(self, spec: ModelSpec, listing: BasePathListing) -> None:
        """Logs each skipped child and each symlinked version once (again only if it changes)."""
        known_skipped = self._skipped[spec.name]
        for name, reason in sorted(listing.skipped.items()):
            if known_skipped.get(name) != reason:
                # An integer name is likely meant as a version; other names are expected
                # (staging folders, rolled-back versions, the rollback log).
                log.log(
                    logging.WARNING if VERSION_NAME.fullmatch(name) else logging.INFO,
                    "Servable %s: not serving %s: %s",
                    spec.name,
                    os.path.join(spec.base_path, name),
                    reason,
                )
        self._skipped[spec.name] = dict(listing.skipped)
        known_symlinks = self._symlinks[spec.name]
        for version, target in sorted(listing.symlinks.items()):
            if known_symlinks.get(version) != target:
                log.info(
                    "Servable %s: version %d is a symlink to %s; it is served from there, as TF "
                    "Serving does",
                    spec.name,
                    version,
                    target,
                )
        self._symlinks[spec.name] = dict(listing.symlinks)

    def _poll_model(self, spec: ModelSpec) -> None:
        listing = list_base_path(spec.base_path)
        self._report_listing(spec, listing)
        on_disk = listing.versions
        wanted = spec.wanted(on_disk)
        with self._lock:
            loaded = set(self._loaded[spec.name])
        for version in sorted(wanted - loaded, reverse=True):
            self._load(spec, version, on_disk[version])
        with self._lock:
            now_loaded = set(self._loaded[spec.name])
        # Retire old versions only when at least one wanted version serves, so that a broken
        # new version never takes the working one out of service.
        if now_loaded & wanted:
            for version in sorted(now_loaded - wanted):
                self._unload(spec.name, version)
        elif not wanted:
            for version in sorted(now_loaded):
                self._unload(spec.name, version)

    def _load(self, spec: ModelSpec, version: int, path: str) -> None:
        key = (spec.name, version)
        signature = folder_signature(path)
        if self._failed.get(key) == signature:
            return  # already failed with exactly these files; wait until they change
        with self._lock:
            self._status[spec.name][version] = VersionStatus(version, State.LOADING)
        started = time.monotonic()
        try:
            loaded = LoadedVersion(spec.name, version, path, self._loader(path))
            # The full collection walks the whole heap and so evicts the CPU caches: the first
            # call after it takes about 1.5x a steady one. Run before warmup, it leaves warmup's
            # requests as the last work before the version serves.
            gc.collect()
            if self._warmup is not None:
                self._warmup(loaded)
        except Exception as error:  # noqa: BLE001 - any failure means "do not serve this version"
            message = f"Failed to load servable {spec.name} version {version} from {path}: {error}"
            log.error(message)
            self._failed[key] = signature
            # An error with a TF status (a warmup failure) is reported as TF Serving's loader
            # reports it: its own code and message.
            failed = (
                VersionStatus(version, State.END, error.code, error.message)
                if isinstance(error, ServingError)
                else VersionStatus(version, State.END, "UNKNOWN", message)
            )
            with self._lock:
                self._status[spec.name][version] = failed
            return
        self._failed.pop(key, None)
        _freeze_heap()
        with self._lock:
            self._loaded[spec.name][version] = loaded
            self._status[spec.name][version] = VersionStatus(version, State.AVAILABLE)
        log.info(
            "Successfully loaded servable version {name: %s version: %d} in %.1f s",
            spec.name,
            version,
            time.monotonic() - started,
        )

    def _unload(self, name: str, version: int) -> None:
        with self._lock:
            retired = self._loaded[name].pop(version, None)
            self._status[name][version] = VersionStatus(version, State.END)
        log.info("Unloaded servable version {name: %s version: %d}", name, version)
        if retired is None:
            return
        alive = _weak_servable(retired)
        if self._release_delay_seconds > 0:
            self._release_later([retired], alive)
        else:
            del retired  # the collection must find nothing here holding it
            self._collect_released(name, version, alive, RELEASE_ATTEMPTS)

    def _release_later(self, kept: list[LoadedVersion], alive: Callable[[], Any]) -> None:
        """Keeps the retired version in `kept` for `release_delay_seconds`, then lets go of it.

        Letting go of the last reference tears the SavedModel down: each of its TensorFlow
        resources (the taxi model's vocabulary tables) runs a destroy function that TensorFlow
        traces on first use, 25-50 ms of Python that takes the GIL in turns with the request
        threads. Right after a swap that lands on the new version's first requests (measured:
        up to 10-27x a steady call); a moment later the swap's first requests are answered.
        Requests still running on the version hold their own reference either way.
        """
        (retired,) = kept
        name, version = retired.model_name, retired.version

        def release() -> None:
            kept.clear()
            self._collect_released(name, version, alive, RELEASE_ATTEMPTS)

        self._start_timer(f"release-{name}-{version}", release)

    def _start_timer(self, name: str, function: Callable[[], None]) -> None:
        timer = threading.Timer(self._release_delay_seconds, function)
        timer.name = name
        timer.daemon = True
        timer.start()

    def _collect_released(
        self, name: str, version: int, alive: Callable[[], Any], attempts_left: int
    ) -> None:
        """Frees a released version's garbage: collects the whole heap, frozen part included.

        Most of a SavedModel lives in reference cycles, which only the collector frees, and
        `_freeze_heap` hid them from it when the version loaded. The collection walks every
        object TensorFlow made (about 440k with the taxi model: 350-570 ms holding the GIL in
        the server on the 2-core machine), which is why it runs here, a release delay after
        the swap, and only when a version was released. A version that a request still holds
        survives it and would be frozen again, kept until the process ends: it is collected
        again a release delay later, at most RELEASE_ATTEMPTS times in all.
        """
        freed, seconds = _collect_heap()
        if alive() is None:
            log.info(
                "Released servable version {name: %s version: %d}: a full garbage collection "
                "freed %d objects in %.0f ms",
                name,
                version,
                freed,
                seconds * 1000,
            )
        elif attempts_left > 1:
            log.info(
                "Servable version {name: %s version: %d} is still in use after its release; "
                "garbage collection (%.0f ms) runs again in %.1f s",
                name,
                version,
                seconds * 1000,
                self._release_delay_seconds,
            )
            self._start_timer(
                f"release-{name}-{version}",
                lambda: self._collect_released(name, version, alive, attempts_left - 1),
            )
        else:
            log.warning(
                "Servable version {name: %s version: %d} is still referenced after %d garbage "
                "collections; its memory stays in use",
                name,
                version,
                RELEASE_ATTEMPTS,
            )

    def resolve(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> LoadedVersion:
        """The loaded version a request addresses; raises ServingError(NOT_FOUND) like TF Serving.

        A label is looked up first, as ServerCore::ServableRequestFromModelSpec does: an unknown
        label (of any model, known or not) is INVALID_ARGUMENT, not NOT_FOUND.
        """
        spec = self._specs.get(name)
        if label is not None:
            labels = dict(spec.labels) if spec is not None else {}
            if label not in labels:
                raise ServingError.invalid_argument(f"Unrecognized servable version label: {label}")
            version = labels[label]
        if spec is None:
            raise ServingError.not_found(
                f"Servable not found for request: {_request_text(name, version, label)}"
            )
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


# A release collects again a release delay later while a request still holds the version.
RELEASE_ATTEMPTS = 3
# Freezing (after a load) and a release's unfreeze-collect-freeze run one at a time.
_heap_lock = threading.Lock()


def _freeze_heap() -> None:
    """Moves every object alive now (the loaded models, TensorFlow's own) out of the collector's
    sight, so the cyclic GC passes that large requests trigger scan only the request's objects:
    with TensorFlow's heap in view, parsing 2M empty JSON arrays took 2.6 s instead of 0.3 s.
    The garbage was collected before warmup (see `_load`), so little of it is frozen; freezing
    itself walks no objects. A retired version's objects are frozen too: its release unfreezes
    them to free them (`_collect_heap`)."""
    with _heap_lock:
        gc.freeze()


def _collect_heap() -> tuple[int, float]:
    """Unfreezes the heap, collects all of it and freezes what survived.

    Unfrozen objects join the oldest generation, so only a full collection can see a retired
    version: one of generations 0-1 frees nothing of it. Returns the number of objects the
    collector found unreachable and the seconds it all took.
    """
    started = time.perf_counter()
    with _heap_lock:
        gc.unfreeze()
        freed = gc.collect()
        gc.freeze()
    return freed, time.perf_counter() - started


def _weak_servable(retired: LoadedVersion) -> Callable[[], Any]:
    """A weak reference to the retired servable; for one that takes none (a str), a callable
    that says it is gone, as nothing can tell otherwise."""
    try:
        return weakref.ref(retired.servable)
    except TypeError:
        return lambda: None

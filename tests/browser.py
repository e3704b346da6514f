"""Opens a generated HTML page in real headless Chromium for tests: DOM, screenshot, fetch attempts.

One browser launch per page, offline: `render` gives the DOM after load and layout, a screenshot,
and every network request the page attempted (read from Chromium's own net log), so a test can
prove a report is self-contained. The DOM helpers use only the standard library's HTML parser.
"""

import dataclasses
import functools
import html.parser
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from urllib.parse import urlsplit

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
LAUNCH_TIMEOUT_SECONDS = 60
# A screenshot is blank when fewer than this fraction of its pixels differ from its most common
# colour: 0.01% is 256 pixels of a 1280x2000 window, a 16x16 square. Measured there: an empty page
# and one with a lone "." differ in 0 pixels, a page.document holding only the title "Report" in
# about 770 (0.03%), one with a title, a section heading and a one-row table in about 3,200
# (0.125%). Report pages are mostly white, so 1% would call a small real report blank.
BLANK_PIXEL_FRACTION = 0.0001

# Everything the browser would fetch or report on its own, switched off; what still gets through
# (see `page_requests`) is told apart from the page's requests and never reaches the network.
PHONES_HOME = (
    "AutofillServerCommunication",
    "CertificateTransparencyComponentUpdater",
    "DialMediaRouteProvider",
    "MediaRouter",
    "NetworkTimeServiceQuerying",
    "OptimizationGuideModelDownloading",
    "OptimizationHints",
    "OptimizationHintsFetching",
    "Translate",
)
BROWSER_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers' small /dev/shm crashes large screenshots
    "--hide-scrollbars",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-component-extensions-with-background-pages",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--no-pings",
    f"--disable-features={','.join(PHONES_HOME)}",
)
# Without a network namespace: no name resolves, and every connection, loopback included (which
# Chromium otherwise sends around a proxy), goes to a proxy on a port nothing listens on.
OFFLINE_FLAGS = (
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
)
NAMESPACE_COMMANDS = (("unshare", "--net"), ("unshare", "--map-root-user", "--net"))

# The page is a local file: requests made for it carry the site file:// first in their network
# isolation (or anonymization) key, and an initiator that is an origin.
PAGE_SITE = "file://"
BROWSER_INITIATOR = "not an origin"
NOT_NETWORK = ("file:", "data:", "about:", "blob:", "chrome:", "chrome-extension:", "devtools:")
# A socket pool group: optional privacy-mode prefix ("pm/"), the destination, the key in <>.
SOCKET_GROUP = re.compile(r"^(?:[a-z]+/)?(?P<origin>[a-z][a-z0-9+.-]*://\S+) <(?P<key>.*)>$")

VOID_ELEMENTS = frozenset(
    "area base br col embed hr img input link meta param source track wbr".split()
)
NOT_TEXT = frozenset({"script", "style", "template"})
# Where a reader sees a break between words: text on either side of these is kept apart.
SEPARATE_TEXT = frozenset(
    "address article aside blockquote br caption dd details div dl dt figcaption figure footer"
    " h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary table tbody td tfoot th"
    " thead tr ul".split()
)


class ChromiumError(RuntimeError):
    """Chromium failed, hung or left out a result; the message ends with its stderr."""


def find_chromium() -> str | None:
    """The browser to run: $CHROMIUM (a name or path), else the first of CHROMIUM_NAMES on PATH."""
    configured = os.environ.get("CHROMIUM")
    if configured:
        return shutil.which(configured)
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@functools.cache
def network_namespace_command() -> tuple[str, ...] | None:
    """A command prefix that runs a program without network (a new, empty namespace), if any."""
    if shutil.which("unshare") is None:
        return None
    for command in NAMESPACE_COMMANDS:
        try:
            probe = subprocess.run([*command, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return command
    return None


@dataclasses.dataclass
class _Element:
    tag: str
    attributes: dict[str, str]
    children: list["_Element | str"] = dataclasses.field(default_factory=list)

    def descendants(self) -> Iterator["_Element"]:
        for child in self.children:
            if isinstance(child, _Element):
                yield child
                yield from child.descendants()

    def raw_text(self) -> str:
        parts = []
        for child in self.children:
            if isinstance(child, str):
                parts.append(child)
            elif child.tag in SEPARATE_TEXT:
                parts.append(f" {child.raw_text()} ")
            elif child.tag not in NOT_TEXT:
                parts.append(child.raw_text())
        return "".join(parts)

    def text(self) -> str:
        return " ".join(self.raw_text().split())


class _TreeBuilder(html.parser.HTMLParser):
    """Chromium's serialized DOM as a tree (it closes every non-void element it opens)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Element("#document", {})
        self._open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = _Element(tag, {name: value or "" for name, value in attrs})
        self._open[-1].children.append(element)
        if tag not in VOID_ELEMENTS:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open[-1].children.append(_Element(tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self._open) - 1, 0, -1):
            if self._open[depth].tag == tag:
                del self._open[depth:]
                return

    def handle_data(self, data: str) -> None:
        self._open[-1].children.append(data)


def _table_rows(table: _Element) -> list[list[str]]:
    """Cell texts of each row of `table`, not of the tables nested in its cells."""
    rows = []
    pending = list(reversed(table.children))
    while pending:
        node = pending.pop()
        if not isinstance(node, _Element) or node.tag == "table":
            continue
        if node.tag == "tr":
            rows.append([cell.text() for cell in node.children if _is_cell(cell)])
        else:
            pending.extend(reversed(node.children))
    return rows


def _is_cell(node: "_Element | str") -> bool:
    return isinstance(node, _Element) and node.tag in ("td", "th")


@dataclasses.dataclass
class Rendered:
    """What Chromium made of a page.

    dom: the serialized DOM after load; screenshot: the PNG of the window; requests: every URL the
    page made the browser request or connect to (`page_requests`); isolation: how the browser was
    kept offline, "netns" (a new network namespace: no interface but a downed loopback) or
    "flags" (no name resolves, every connection goes to a dead proxy).
    The DOM helpers match tag and attribute names in lowercase, as the parser gives them.
    """

    dom: str
    screenshot: pathlib.Path
    requests: list[str]
    isolation: str

    @functools.cached_property
    def _root(self) -> _Element:
        builder = _TreeBuilder()
        builder.feed(self.dom)
        builder.close()
        return builder.root

    @functools.cached_property
    def _by_id(self) -> dict[str, _Element]:
        by_id: dict[str, _Element] = {}
        for element in self._root.descendants():
            if "id" in element.attributes:
                by_id.setdefault(element.attributes["id"], element)
        return by_id

    def _element(self, element_id: str) -> _Element:
        try:
            return self._by_id[element_id]
        except KeyError:
            known = ", ".join(sorted(self._by_id)[:20]) or "none"
            raise KeyError(f"no element with id {element_id!r}; ids on the page: {known}") from None

    def element_ids(self) -> set[str]:
        return set(self._by_id)

    def text(self, element_id: str) -> str:
        """Text of the element and its descendants as a reader sees it: no script or style,
        blocks, cells and line breaks apart, whitespace collapsed to single spaces."""
        return self._element(element_id).text()

    def tables(self, element_id: str | None = None) -> list[list[list[str]]]:
        """Every table in the element (itself included) or page: its rows' cell texts, head first."""
        scope = self._root if element_id is None else self._element(element_id)
        found = [scope] if scope.tag == "table" else []
        found += [element for element in scope.descendants() if element.tag == "table"]
        return [_table_rows(table) for table in found]

    def count(
        self,
        tag: str,
        attr: str | None = None,
        value: str | None = None,
        within: str | None = None,
    ) -> int:
        """Elements `tag` (with attribute `attr`, equal to `value` when given; for class, `value`
        may be one of its names), inside the element with id `within` or anywhere."""
        scope = self._root if within is None else self._element(within)
        tag, attr = tag.lower(), attr.lower() if attr else None
        return sum(
            1
            for element in scope.descendants()
            if element.tag == tag and _attribute_matches(element, attr, value)
        )

    def screenshot_is_blank(self) -> bool:
        """Nearly one colour: under BLANK_PIXEL_FRACTION of pixels differ from the commonest."""
        from PIL import Image

        with Image.open(self.screenshot) as image:
            pixels = image.convert("RGB")
            total = pixels.width * pixels.height
            commonest = max(count for count, _ in pixels.getcolors(maxcolors=total))
        return (total - commonest) / total < BLANK_PIXEL_FRACTION


def _attribute_matches(element: _Element, attr: str | None, value: str | None) -> bool:
    if attr is None:
        return True
    if attr not in element.attributes:
        return False
    actual = element.attributes[attr]
    if value is None or actual == value:
        return True
    return attr == "class" and value in actual.split()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def _for_page(key: str | None) -> bool:
    """A network isolation or anonymization key names the top-level site first."""
    return key is not None and key.startswith(PAGE_SITE)


def page_requests(net_log: dict) -> list[str]:
    """URLs the page made the browser request, then origins it only connected to, in log order.

    Requests are the net log's URL_REQUEST sources (their REQUEST_ALIVE and URL_REQUEST_START_JOB
    events carry the URL, redirects add more). Despite BROWSER_FLAGS, Chromium 156 still asks
    update.googleapis.com for an on-demand component (the on-device model manifest), and other
    builds may ask for more. Such a request is the browser's own only when both hold: no origin
    initiated it (initiator "not an origin") and its network isolation key is not the page's
    (file://). Everything the page causes fails that test: subresources, its favicon and
    prefetches have an origin as initiator ("null", the file's opaque origin) and the page's key;
    navigations it starts (frames, a refresh) have "file://" as initiator. A request whose start
    was not logged is kept: unknown counts as the page's.

    `<link rel=preconnect>` and `<link rel=dns-prefetch>` open connections or look names up
    without any request, and the page's Content-Security-Policy does not stop them. They appear
    as speculative host resolutions and as socket groups keyed by the page's site; their origin
    is listed when no request above already names it. (Other resolutions repeat a request's
    host, e.g. the network quality estimator's, or with OFFLINE_FLAGS the mapped "~notfound".)
    """
    types = net_log["constants"]["logEventTypes"]
    url_request = net_log["constants"]["logSourceType"]["URL_REQUEST"]
    request_urls: dict[int, list[str]] = {}
    request_starts: dict[int, dict] = {}
    connected: list[str] = []
    for event in net_log["events"]:
        params = event.get("params") or {}
        source_id = event["source"]["id"]
        if event["source"]["type"] == url_request and "url" in params:
            urls = request_urls.setdefault(source_id, [])
            if params["url"] not in urls:
                urls.append(params["url"])
            if event["type"] == types["URL_REQUEST_START_JOB"]:
                request_starts.setdefault(source_id, params)
        elif event["type"] == types["HOST_RESOLVER_MANAGER_REQUEST"] and params.get(
            "is_speculative"
        ):
            if _for_page(params.get("network_anonymization_key")):
                connected.append(_origin(params["host"]))
        elif isinstance(params.get("group_id"), str):
            group = SOCKET_GROUP.match(params["group_id"])
            if group and _for_page(group["key"]):
                connected.append(_origin(group["origin"]))

    requested: list[str] = []
    for source_id, urls in request_urls.items():
        start = request_starts.get(source_id)
        browsers_own = (
            start is not None
            and start.get("initiator") == BROWSER_INITIATOR
            and not _for_page(start.get("network_isolation_key"))
        )
        if not browsers_own:
            requested += [url for url in urls if url not in requested]
    requested = [url for url in requested if not url.startswith(NOT_NETWORK)]
    requested_origins = {_origin(url) for url in requested}
    for origin in connected:
        if origin not in requested_origins and origin not in requested:
            requested.append(origin)
    return requested


def _stderr_tail(stderr: str, lines: int = 15) -> str:
    # Chromium logs every failed D-Bus call (there is no bus in CI): noise, left out.
    kept = [line for line in stderr.splitlines() if "dbus" not in line.lower()]
    return "\n".join(kept[-lines:]) or "(nothing)"


def _run_browser(command: list[str], page: str) -> subprocess.CompletedProcess:
    """Runs Chromium in its own process group, so a hung browser is killed with its children."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=LAUNCH_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        raise ChromiumError(
            f"chromium did not finish {page} within {LAUNCH_TIMEOUT_SECONDS} s; "
            f"its stderr ends:\n{_stderr_tail(stderr)}"
        ) from None
    if process.returncode != 0:
        raise ChromiumError(
            f"chromium exited with status {process.returncode} on {page}; "
            f"its stderr ends:\n{_stderr_tail(stderr)}"
        )
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _read_net_log(path: pathlib.Path, stderr: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ChromiumError(
            f"chromium's net log {path} is missing or incomplete ({error}); "
            f"its stderr ends:\n{_stderr_tail(stderr)}"
        ) from None


def render(
    html_path: pathlib.Path,
    out_dir: pathlib.Path,
    width: int = 1280,
    height: int = 2000,
    *,
    isolation: str = "auto",
) -> Rendered:
    """Opens `html_path` in headless Chromium, offline, in one launch.

    Args:
        html_path: the page, opened as a file:// URL.
        out_dir: receives `<stem>.png` (the screenshot) and `<stem>.netlog.json`; the throwaway
            browser profile is made and removed in it.
        width, height: the window, and so the screenshot, in CSS pixels.
        isolation: "auto" (a network namespace when `unshare` can make one, else flags),
            "netns" or "flags"; the fallback is tested by asking for it.

    Returns:
        What the browser made of the page; see `Rendered`.

    Raises:
        ChromiumError: no browser, or it failed, hung past LAUNCH_TIMEOUT_SECONDS, or left out
            the DOM, screenshot or net log.
    """
    executable = find_chromium()
    if executable is None:
        raise ChromiumError(
            f"no Chromium: set CHROMIUM or put one of {', '.join(CHROMIUM_NAMES)} on PATH"
        )
    if isolation not in ("auto", "netns", "flags"):
        raise ValueError(f"isolation must be 'auto', 'netns' or 'flags', got {isolation!r}")
    namespace = network_namespace_command() if isolation in ("auto", "netns") else None
    if isolation == "netns" and namespace is None:
        raise ChromiumError("isolation='netns' asked for, but `unshare --net` cannot run here")

    page = html_path.resolve().as_uri()
    out_dir.mkdir(parents=True, exist_ok=True)
    screenshot = out_dir / f"{html_path.stem}.png"
    net_log_path = out_dir / f"{html_path.stem}.netlog.json"
    # Left from an earlier render into out_dir, they would pass for this launch's.
    screenshot.unlink(missing_ok=True)
    net_log_path.unlink(missing_ok=True)
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=out_dir)
    command = [
        *(namespace or ()),
        executable,
        *BROWSER_FLAGS,
        *(() if namespace else OFFLINE_FLAGS),
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        f"--screenshot={screenshot}",
        "--dump-dom",
        f"--log-net-log={net_log_path}",
        "--net-log-capture-mode=Default",
        page,
    ]
    try:
        finished = _run_browser(command, page)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    # Chromium exits 0 with neither when the page navigates away (a meta refresh) meanwhile.
    missing = [
        name
        for name, present in (
            ("DOM", finished.stdout.strip()),
            ("screenshot", screenshot.is_file()),
        )
        if not present
    ]
    if missing:
        raise ChromiumError(
            f"chromium gave no {' and no '.join(missing)} for {page}; "
            f"its stderr ends:\n{_stderr_tail(finished.stderr)}"
        )
    return Rendered(
        dom=finished.stdout,
        screenshot=screenshot,
        requests=page_requests(_read_net_log(net_log_path, finished.stderr)),
        isolation="netns" if namespace else "flags",
    )

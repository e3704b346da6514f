"""The browser harness (tests/browser.py) sees what a real Chromium renders and fetches, offline."""

import http.server
import pathlib
import threading
import urllib.error
import urllib.request

import pytest

from tests.browser import Rendered, render
from tfx_pipeline.reporting.html.page import document, section, table

EXTERNAL_IMAGE = "http://203.0.113.7/x.png"
EXTERNAL_STYLESHEET = "https://example.invalid/a.css"


class NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads the server's connections instead."""


class CountingServer(http.server.ThreadingHTTPServer):
    """Records every connection it accepts, before any HTTP is spoken."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), NotFound)
        self.connections: list[tuple[str, int]] = []

    def verify_request(self, request, client_address) -> bool:
        self.connections.append(client_address)
        return True


@pytest.fixture
def loopback_probe():
    """A server on this machine's loopback; the browser must never reach it."""
    server = CountingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/probe.png"
    # The probe itself must be reachable, or no connection from the browser proves nothing.
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(url, timeout=10)
    assert len(server.connections) == 1
    server.connections.clear()
    yield url, server
    server.shutdown()
    server.server_close()


@pytest.mark.usefixtures("chromium")
def test_report_page_renders_offline(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "report.html"
    metrics = table(
        ["metric", "value"], [["auc", "0.91"], ["loss", "<0.3 & falling>"]], numeric=[1]
    )
    page.write_text(
        document(
            "Run report",
            section("summary", "Summary", metrics),
            subtitle="run 7",
            nav=[("summary", "Summary")],
        )
    )

    rendered = render(page, tmp_path / "browser")

    assert {"summary"} <= rendered.element_ids()
    assert rendered.text("summary") == "Summary metric value auc 0.91 loss <0.3 & falling>"
    assert rendered.tables("summary") == [
        [["metric", "value"], ["auc", "0.91"], ["loss", "<0.3 & falling>"]]
    ]
    assert rendered.tables() == rendered.tables("summary")
    assert rendered.count("td", within="summary") == 4
    assert rendered.count("td", "class", "num", within="summary") == 2
    assert rendered.count("a", "href", "#summary") == 1
    assert rendered.screenshot.is_file()
    assert not rendered.screenshot_is_blank()
    assert rendered.requests == []
    assert rendered.isolation in ("netns", "flags")


@pytest.mark.usefixtures("chromium")
@pytest.mark.parametrize("isolation", ["auto", "flags"])
def test_fetches_are_detected_and_reach_nothing(
    tmp_path: pathlib.Path, loopback_probe: tuple[str, CountingServer], isolation: str
) -> None:
    probe_url, probe = loopback_probe
    page = tmp_path / "fetching.html"
    # No Content-Security-Policy here, so the browser tries every fetch.
    page.write_text(
        "<!DOCTYPE html><html><head><title>fetching</title>"
        f'<link rel=stylesheet href="{EXTERNAL_STYLESHEET}"></head>'
        f'<body><p id="body">fetching</p><img src="{EXTERNAL_IMAGE}"><img src="{probe_url}">'
        "</body></html>"
    )

    rendered = render(page, tmp_path / "browser", isolation=isolation)

    assert sorted(rendered.requests) == sorted([EXTERNAL_IMAGE, EXTERNAL_STYLESHEET, probe_url])
    assert probe.connections == []
    if isolation == "flags":
        assert rendered.isolation == "flags"
    assert rendered.text("body") == "fetching"


@pytest.mark.usefixtures("chromium")
def test_blank_page_screenshot_is_blank(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><head><title>blank</title></head><body></body></html>")

    rendered = render(page, tmp_path / "browser")

    assert rendered.screenshot_is_blank()
    assert rendered.requests == []


def test_dom_helpers_read_nested_tables_and_void_elements(tmp_path: pathlib.Path) -> None:
    dom = (
        '<html><body><div id="outer"><table id="t"><tbody>'
        "<tr><th>name</th><th>detail</th></tr>"
        "<tr><td>a<br>b</td><td><table><tbody><tr><td>inner</td></tr></tbody></table></td></tr>"
        '</tbody></table><img src="data:,"><span class="badge ok">ok</span>'
        "<style>p { color: red }</style></div></body></html>"
    )
    rendered = Rendered(dom=dom, screenshot=tmp_path / "none.png", requests=[], isolation="none")

    assert rendered.tables("t") == [[["name", "detail"], ["a b", "inner"]], [["inner"]]]
    assert rendered.text("outer") == "name detail a b inner ok"
    assert rendered.count("td", within="t") == 3
    assert rendered.count("span", "class", "ok") == 1
    assert rendered.count("span", "class", "fail") == 0
    assert rendered.count("img", within="outer") == 1
    with pytest.raises(KeyError, match="no element with id 'missing'"):
        rendered.text("missing")

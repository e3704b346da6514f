"""The REST listener against clients that stall, vanish, lie about encodings or ask for everything."""

import gzip
import json
import socket
import time
import urllib.request

import pytest

from serving.app import ServerSettings
from serving.server import ModelServer
from serving.versions import ModelSpec

HEADER_TIMEOUT = 0.5
MAX_CONNECTIONS = 20


@pytest.fixture(scope="module")
def guarded(model_root):
    settings = ServerSettings(
        max_request_bytes=64 * 1024,
        header_timeout_seconds=HEADER_TIMEOUT,
        idle_timeout_seconds=HEADER_TIMEOUT,
        max_connections=MAX_CONNECTIONS,
        request_timeout_seconds=1.0,
    )
    spec = ModelSpec(name="tiny", base_path=str(model_root / "tiny"))
    with ModelServer([spec], port=0, settings=settings, poll_seconds=0, access_log=False) as server:
        yield server


def raw_exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


def post(port: int, body: bytes, headers: str = "") -> bytes:
    head = (
        f"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n{headers}\r\n"
    )
    return raw_exchange(port, head.encode() + body)


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def metrics(server: ModelServer) -> str:
    return urllib.request.urlopen(server.url + "/monitoring/prometheus/metrics").read().decode()


def ok(server: ModelServer) -> bool:
    answer = post(server.port, json.dumps({"instances": [[1, 1]]}).encode())
    return answer.startswith(b"HTTP/1.1 200")


def test_half_sent_requests_are_dropped_and_connections_capped(guarded):
    stalled = []
    for _ in range(MAX_CONNECTIONS + 10):
        sock = socket.create_connection(("127.0.0.1", guarded.port), timeout=5)
        sock.sendall(b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\n")  # never finished
        stalled.append(sock)
    try:
        # Past the cap, a connection is closed at once.
        assert closed_by_server(stalled[-1])
        started = time.monotonic()
        # The stalled ones are closed once their header deadline passes...
        for sock in stalled[:MAX_CONNECTIONS]:
            assert closed_by_server(sock)
        assert time.monotonic() - started < HEADER_TIMEOUT + 3
        # ...and the server serves again.
        assert guarded.api.connections.open_connections <= 1
        assert ok(guarded)
    finally:
        for sock in stalled:
            sock.close()


def test_a_body_that_never_completes_gets_504_and_frees_its_connection(guarded):
    head = b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    answer = raw_exchange(guarded.port, head + b'{"instances"')
    assert answer.startswith(b"HTTP/1.1 504")
    assert b"--rest_api_timeout_in_ms" in answer


def test_an_aborted_upload_is_neither_an_error_nor_counted(guarded, caplog):
    before = metrics(guarded)
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
            sock.sendall(
                b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
                b'{"instances": [[1,'
            )
    time.sleep(0.3)
    assert ok(guarded)
    after = metrics(guarded)
    assert "INTERNAL" not in after
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    count = ':tensorflow:serving:request_count{model_name="tiny",status="OK"}'
    ok_before = int(before.split(count)[1].split()[0]) if count in before else 0
    assert int(after.split(count)[1].split()[0]) == ok_before + 1


def test_a_gzip_header_on_a_plain_body_is_a_client_error(guarded):
    body = json.dumps({"instances": [[1, 1]]}).encode()
    answer = post(guarded.port, body, "Content-Encoding: gzip\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"Malformed request body" in answer and b"Traceback" not in answer
    assert post(guarded.port, gzip.compress(body), "Content-Encoding: gzip\r\n").startswith(
        b"HTTP/1.1 200"
    )


def test_a_gzip_bomb_is_refused_by_its_inflated_size(guarded):
    bomb = gzip.compress(b'{"instances": [' + b"[]," * 2_000_000 + b"[]]}")
    assert len(bomb) < 64 * 1024
    started = time.monotonic()
    answer = post(guarded.port, bomb, "Content-Encoding: gzip\r\n")
    assert answer.startswith(b"HTTP/1.1 429")
    assert time.monotonic() - started < 5
    assert ok(guarded)


def test_error_messages_quote_a_bounded_part_of_the_request(guarded):
    body = json.dumps({"signature_name": "s" * 20_000, "instances": [[1, 1]]}).encode()
    answer = post(guarded.port, body)
    assert answer.startswith(b"HTTP/1.1 400")
    error = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    limit = ServerSettings().max_error_chars
    assert len(error) == limit + len("...TRUNCATED") and error.endswith("...TRUNCATED")


def test_unknown_model_names_do_not_grow_the_metrics_page(guarded):
    for index in range(50):
        raw_exchange(
            guarded.port,
            f"GET /v1/models/nope{index}/metadata HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
        )
    text = metrics(guarded)
    assert "nope" not in text
    assert 'model_name=":unknown",status="NOT_FOUND"} ' in text


def test_cors_preflight_is_answered_as_tf_serving_answers_it(guarded, model_root):
    # http_server.cc ProcessRequest: OPTIONS under /v1/ is 200 with an http(s) Origin, else
    # 400 (FAILED_PRECONDITION); no body; CORS headers only with --rest_api_enable_cors_support.
    def options(port, origin=None):
        head = "OPTIONS /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        if origin:
            head += f"Origin: {origin}\r\n"
        answer = raw_exchange(port, (head + "\r\n").encode())
        head_text, _, body = answer.partition(b"\r\n\r\n")
        return head_text.decode(), body

    head, body = options(guarded.port, "https://app.example")
    assert head.startswith("HTTP/1.1 200") and body == b""
    assert "Content-Type" not in head and "Access-Control" not in head
    head, body = options(guarded.port)
    assert head.startswith("HTTP/1.1 400") and body == b""
    spec = ModelSpec(name="tiny", base_path=str(model_root / "tiny"))
    settings = ServerSettings(enable_cors=True)
    with ModelServer([spec], port=0, settings=settings, poll_seconds=0, access_log=False) as cors:
        head, _ = options(cors.port, "http://localhost:3000")
        assert "Access-Control-Allow-Origin: *" in head
        assert "Access-Control-Allow-Methods: POST, GET" in head
        assert "Access-Control-Allow-Headers: Content-Type" in head
        answer = post(cors.port, json.dumps({"instances": [[1, 1]]}).encode())
        assert answer.startswith(b"HTTP/1.1 200") and b"Access-Control-Allow-Origin: *" in answer

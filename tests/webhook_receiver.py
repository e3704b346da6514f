"""A local webhook receiver that checks each signature with docs/operations.md's own snippet.

Shared by the notification unit tests and the e2e runs that notify.
"""

import http.server
import json
import re
import threading

from tests.conftest import REPO_ROOT

SECRET = "s3cret-for-tests"
SECRET_ENV = "TAXI_TEST_WEBHOOK_SECRET"
OPERATIONS_DOC = REPO_ROOT / "docs" / "operations.md"


def documented_verifier():
    """`verify_signature` exactly as docs/operations.md shows it to receivers."""
    blocks = re.findall(r"```python\n(.*?)```", OPERATIONS_DOC.read_text(), flags=re.DOTALL)
    (source,) = [block for block in blocks if "def verify_signature" in block]
    namespace: dict = {}
    exec(source, namespace)  # our own documentation, run as a receiver would run it
    return namespace["verify_signature"]


class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST and answers the scripted statuses.

    Every request's signature is checked with the documented verifier; once the script runs
    out it answers 200 to a valid signature and 401 to any other.
    """

    def __init__(self, secret: bytes, statuses: list[int] | None = None) -> None:
        self.secret = secret
        self.statuses = list(statuses or [])
        self.requests: list[dict] = []
        self.verify = documented_verifier()
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                valid = receiver.verify(receiver.secret, self.headers, body)
                with receiver._lock:
                    receiver.requests.append(
                        {"headers": dict(self.headers), "body": body, "valid": valid}
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else None
                status = status or (200 if valid else 401)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T0/B0/token"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def bodies(self) -> list[dict]:
        with self._lock:
            return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

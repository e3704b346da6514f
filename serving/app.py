"""The HTTP front end: TF Serving's REST routes, status codes, headers and bodies on aiohttp.

aiohttp rather than the standard library's http.server: it is asyncio-based, so thousands of
idle keep-alive connections cost no threads, it parses HTTP in C (llhttp), and it is actively
maintained. Model work never runs on the event loop: parsing, TensorFlow calls and response
formatting run in a thread pool (or the batcher), so a slow request does not stall others.
"""

import asyncio
import concurrent.futures
import dataclasses
import logging
import re
import time
import urllib.parse
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from tensorflow.core.framework import types_pb2

from serving import json_parse, json_tensor
from serving.batching import BatchingParameters
from serving.connections import ConnectionGuard, ConnectionLimits
from serving.errors import HTTP_STATUS_BY_CODE, ServingError, cut
from serving.inference import Inference
from serving.json_writer import error_body, proto_json
from serving.metrics import Metrics
from serving.servable import DEFAULT_SIGNATURE, Servable

log = logging.getLogger(__name__)

PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
REST_PATH = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE,
)
JSON_HEADERS = {"Content-Type": "application/json"}
# AddCORSHeaders (http_rest_api_util.cc), on every /v1/ answer with --rest_api_enable_cors_support.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    "Access-Control-Allow-Headers": "Content-Type",
}
# libevent's error page, which TF Serving answers for paths outside /v1/.
NOT_FOUND_PAGE = "<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n</BODY></HTML>\n"
INT64_MAX = 2**63 - 1
# Route verb -> the API label TF Serving's metrics use.
API_NAMES = {
    "predict": "Predict",
    "classify": "Classify",
    "regress": "Regress",
    "status": "GetModelStatus",
    "metadata": "GetModelMetadata",
}


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """Behaviour of the HTTP layer (the models come from the ModelManager).

    `request_timeout_seconds` is TF Serving's --rest_api_timeout_in_ms: a call not answered by
    then gets 504 DEADLINE_EXCEEDED (its body must also have arrived within that time).
    """

    max_request_bytes: int = 16 * 1024 * 1024
    num_threads: int = 8
    batching: BatchingParameters | None = None
    request_timeout_seconds: float = 30.0
    max_connections: int = 1000
    header_timeout_seconds: float = 10.0
    idle_timeout_seconds: float = 75.0
    # Error messages quote parts of the request; longer ones are cut (TF Serving's gRPC side cuts
    # at 1024 characters; its REST side does not, so a huge request echoes back whole there).
    max_error_chars: int = 4096
    enable_cors: bool = False

    @property
    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            self.max_connections, self.header_timeout_seconds, self.idle_timeout_seconds
        )


@dataclasses.dataclass(frozen=True)
class _Route:
    verb: str  # predict, classify, regress, status, metadata
    model: str
    version: int | None
    label: str | None


class _ClientGone(Exception):
    """The client went away before its request body arrived."""


class _Reply(Exception):
    """A complete, non-JSON answer (TF Serving's empty-body 400s)."""

    def __init__(self, status: int, body: bytes = b"") -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _route(method: str, raw_path: str) -> _Route:
    malformed = ServingError.invalid_argument(f"Malformed request: {method} {raw_path}")
    if method == "POST":
        match = PREDICTION_PATH.fullmatch(raw_path)
        if not match:
            raise malformed
        name, version, label, verb = match.groups()
        if verb not in ("predict", "classify", "regress"):
            raise malformed
    elif method == "GET":
        match = STATUS_PATH.fullmatch(raw_path)
        if not match:
            raise malformed
        name, version, label, subresource = match.groups()
        if name is None:
            raise ServingError.invalid_argument("Missing model name in request.")
        verb = "metadata" if subresource == "metadata" else "status"
    else:
        raise malformed
    try:
        name = urllib.parse.unquote(name, errors="strict")
        label = urllib.parse.unquote(label, errors="strict") if label is not None else None
    except UnicodeDecodeError:
        raise _Reply(400) from None
    parsed_version = None
    if version is not None:
        parsed_version = int(version)
        if parsed_version > INT64_MAX:
            raise _Reply(400)
    return _Route(verb, name, parsed_version, label)


def _tensor_info(info: Any) -> dict:
    return {
        "dtype": types_pb2.DataType.Name(info.dtype),
        "tensor_shape": {
            "dim": [{"size": dim.size, "name": dim.name} for dim in info.tensor_shape.dim],
            "unknown_rank": info.tensor_shape.unknown_rank,
        },
        "name": info.name,
    }


def metadata_body(model: str, version: int, servable: Servable) -> bytes:
    """GetModelMetadata JSON in TF Serving's concatenated layout."""
    signatures = {
        name: {
            "inputs": {k: _tensor_info(v) for k, v in sorted(sig.inputs.items())},
            "outputs": {k: _tensor_info(v) for k, v in sorted(sig.outputs.items())},
            "method_name": sig.method_name,
            "defaults": {},
        }
        for name, sig in sorted(servable.signature_defs.items())
    }
    spec = proto_json({"name": model, "signature_name": "", "version": version})
    signature_json = proto_json({"signature_def": signatures})
    text = (
        '{\n"model_spec":' + spec + ',\n"metadata": {"signature_def": ' + signature_json + "}\n}\n"
    )
    return text.encode("utf-8")


def status_body(statuses: list) -> bytes:
    return proto_json(
        {
            "model_version_status": [
                {
                    "version": status.version,
                    "state": status.state.value,
                    "status": {
                        "error_code": status.error_code,
                        "error_message": status.error_message,
                    },
                }
                for status in statuses
            ]
        }
    ).encode("utf-8")


class RestApi:
    """TF Serving's REST API over the shared Inference calls."""

    def __init__(self, inference: Inference, settings: ServerSettings, metrics: Metrics) -> None:
        self.inference = inference
        self.manager = inference.manager
        self.settings = settings
        self.metrics = metrics
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.num_threads, thread_name_prefix="rest"
        )
        self.connections = ConnectionGuard(settings.connection_limits)

    def close(self) -> None:
        self.connections.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.connections.request_started(request.transport)
        try:
            return await self._answer(request)
        finally:
            self.connections.request_finished(request.transport)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path
        if request.rel_url.raw_path == PROMETHEUS_PATH:
            if raw_path != PROMETHEUS_PATH:
                return web.Response(
                    status=400,
                    body=f"Unexpected path: {raw_path}. Should be {PROMETHEUS_PATH}".encode(),
                    headers={"Content-Type": "text/plain"},
                )
            return web.Response(
                body=self.metrics.exposition().encode(), headers={"Content-Type": "text/plain"}
            )
        if not REST_PATH.fullmatch(raw_path):
            return web.Response(
                status=404,
                body=NOT_FOUND_PAGE.encode(),
                headers={"Content-Type": "text/html", "Connection": "close"},
            )
        if request.method == "OPTIONS":
            return self._preflight(request)
        started = time.perf_counter()
        route = None
        version = None
        try:
            route = _route(request.method, raw_path)
            # A deadline on this task, not asyncio.wait_for: that runs the call as a task of its
            # own, one more task and loop pass per request.
            async with asyncio.timeout(self.settings.request_timeout_seconds):
                version, payload = await self._read_and_dispatch(route, request)
            status, code = 200, "OK"
        except _Reply as reply:
            return web.Response(status=reply.status, body=reply.body, headers=self._headers())
        except _ClientGone:
            # Nobody is left to answer, and it is not the server's failure: not counted.
            return web.Response(status=400, headers=self._headers())
        except ServingError as error:
            status, code = error.http_status, error.code
            payload = error_body(self._quoted(error.message))
        except TimeoutError:
            status, code = 504, "DEADLINE_EXCEEDED"
            payload = error_body(
                "The request was not answered within "
                f"{self.settings.request_timeout_seconds * 1000:g} ms (--rest_api_timeout_in_ms)"
            )
        except Exception:  # noqa: BLE001 - a request must never take the server down
            log.exception("unexpected error serving %s %s", request.method, raw_path)
            status, code = 500, "INTERNAL"
            payload = error_body("Internal error while serving this request; see the server log")
        if route is not None:
            self.metrics.record(
                route.model,
                version,
                API_NAMES[route.verb],
                code,
                (time.perf_counter() - started) * 1e6,
            )
        return web.Response(status=status, body=payload, headers=self._headers())

    def _headers(self, content_type: bool = True) -> dict[str, str]:
        headers = dict(JSON_HEADERS) if content_type else {}
        if self.settings.enable_cors:
            headers.update(CORS_HEADERS)
        return headers

    def _preflight(self, request: web.Request) -> web.Response:
        """A CORS preflight, answered as http_server.cc answers any OPTIONS under /v1/.

        With or without --rest_api_enable_cors_support: 200 when an http(s) Origin is given,
        else 400 (FAILED_PRECONDITION); no body and no Content-Type either way.
        """
        origin = request.headers.get("Origin", "")
        code = "OK" if re.search(r"https?://", origin) else "FAILED_PRECONDITION"
        self.metrics.record("", None, "", code, 0.0)
        return web.Response(status=HTTP_STATUS_BY_CODE[code], headers=self._headers(False))

    def _quoted(self, message: str) -> str:
        return cut(message, self.settings.max_error_chars)

    async def _read_and_dispatch(
        self, route: _Route, request: web.Request
    ) -> tuple[int | None, bytes]:
        body = await self._read_body(request)
        return await self._dispatch(route, body)

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.settings.max_request_bytes
        if request.content_length is not None and request.content_length > limit:
            raise ServingError(
                "RESOURCE_EXHAUSTED",
                f"Request body of {request.content_length} bytes exceeds the limit of {limit} "
                "bytes (--max_request_bytes)",
            )
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise ServingError(
                "RESOURCE_EXHAUSTED",
                f"Request body exceeds the limit of {limit} bytes (--max_request_bytes)",
            ) from None
        except (ConnectionError, aiohttp.ClientConnectionError) as error:
            raise _ClientGone() from error
        except RequestPayloadError as error:
            if request.transport is None or request.transport.is_closing():
                raise _ClientGone() from error
            # A body that does not decode as its Content-Encoding says (e.g. gzip) is the
            # client's fault; aiohttp's own words name what was wrong.
            raise ServingError.invalid_argument(f"Malformed request body: {error}") from None

    async def _dispatch(self, route: _Route, body: bytes) -> tuple[int | None, bytes]:
        loop = asyncio.get_running_loop()
        if route.verb == "status":
            statuses = self.manager.statuses(route.model, route.version)
            return None, status_body(statuses)
        if route.verb == "metadata":
            loaded = self.manager.resolve(route.model, route.version, route.label)
            payload = await loop.run_in_executor(
                self._pool, metadata_body, loaded.model_name, loaded.version, loaded.servable
            )
            return loaded.version, payload
        if route.verb == "predict":
            return await self._predict(route, body)
        return await loop.run_in_executor(self._pool, self._classify_or_regress, route, body)

    async def _predict(self, route: _Route, body: bytes) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        version, payload, pending = await loop.run_in_executor(
            self._pool, self._start_predict, route, body
        )
        if pending is not None:  # batched: wait on the loop, not in a pool thread
            future, formatter = pending
            outputs = await asyncio.wrap_future(future)
            payload = await loop.run_in_executor(self._pool, formatter, outputs)
        return version, payload

    def _start_predict(self, route: _Route, body: bytes) -> tuple:
        """Parses and submits a predict call; formats it too when it already finished."""
        request = json_parse.request_object(body)
        name = json_tensor.signature_name(request)
        loaded = self.manager.resolve(route.model, route.version, route.label)
        signature = loaded.servable.signature_def(name or None)
        inputs, rows = json_tensor.predict_inputs(request, signature, name)
        future = self.inference.submit_predict(loaded, name or DEFAULT_SIGNATURE, inputs)
        formatter = json_tensor.row_response if rows else json_tensor.columnar_response
        if future.done():
            return loaded.version, formatter(future.result()), None
        return loaded.version, None, (future, formatter)

    def _classify_or_regress(self, route: _Route, body: bytes) -> tuple[int, bytes]:
        # TF Serving's order: the JSON is read into a request first, then the model is looked
        # up, then the signature is checked (http_rest_api_handler.cc ProcessClassifyRequest).
        request = json_parse.request_object(body)
        name = json_tensor.signature_name(request)
        examples = json_tensor.serialized_examples(request)
        loaded = self.manager.resolve(route.model, route.version, route.label)
        if route.verb == "classify":
            result = self.inference.classify(loaded, name, examples)
            outputs = {
                key: value
                for key, value in (("classes", result.classes), ("scores", result.scores))
                if value is not None
            }
            return loaded.version, json_tensor.classify_response(outputs, len(examples))
        values = self.inference.regress(loaded, name, examples)
        return loaded.version, json_tensor.regress_response({"outputs": values}, len(examples))


def build_app(api: RestApi) -> web.Application:
    app = web.Application(client_max_size=api.settings.max_request_bytes)
    app.router.add_route("*", "/{tail:.*}", api.handle)
    return app

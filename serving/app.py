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
from collections.abc import Callable
from typing import Any

from aiohttp import web
from tensorflow.core.framework import types_pb2

from serving import json_tensor
from serving.batching import Batcher, BatchingParameters
from serving.errors import ServingError
from serving.json_writer import error_body, proto_json
from serving.metrics import Metrics
from serving.request_log import RequestLogger
from serving.servable import Servable
from serving.versions import ModelManager

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
    """Behaviour of the HTTP layer (the models come from the ModelManager)."""

    max_request_bytes: int = 16 * 1024 * 1024
    num_threads: int = 8
    batching: BatchingParameters | None = None


@dataclasses.dataclass(frozen=True)
class _Route:
    verb: str  # predict, classify, regress, status, metadata
    model: str
    version: int | None
    label: str | None


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
    """TF Serving's REST API over a ModelManager."""

    def __init__(
        self,
        manager: ModelManager,
        settings: ServerSettings,
        metrics: Metrics,
        request_log: RequestLogger | None = None,
    ) -> None:
        self.manager = manager
        self.settings = settings
        self.metrics = metrics
        self.request_log = request_log
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.num_threads, thread_name_prefix="rest"
        )
        self._batchers: dict[tuple[str, int, str], Batcher] = {}

    def close(self) -> None:
        for batcher in self._batchers.values():
            batcher.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def prune_batchers(self) -> None:
        """Drops batchers of versions that are no longer loaded (ModelManager on_change hook)."""
        for key in list(self._batchers):
            if key[1] not in self.manager.loaded_versions(key[0]):
                self._batchers.pop(key).close()

    def _batcher(self, model: str, version: int, signature: str, run: Callable) -> Batcher:
        key = (model, version, signature)
        if key not in self._batchers:
            self._batchers[key] = Batcher(run, self.settings.batching)
        return self._batchers[key]

    async def handle(self, request: web.Request) -> web.StreamResponse:
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
        started = time.perf_counter()
        route = None
        version = None
        try:
            route = _route(request.method, raw_path)
            body = await self._read_body(request)
            version, payload = await self._dispatch(route, body)
            status, code = 200, "OK"
        except _Reply as reply:
            return web.Response(status=reply.status, body=reply.body, headers=JSON_HEADERS)
        except ServingError as error:
            status, code, payload = error.http_status, error.code, error_body(error.message)
        except RecursionError:
            status, code = 400, "INVALID_ARGUMENT"
            payload = error_body("The request nests JSON too deeply to process")
        except Exception as error:  # noqa: BLE001 - a request must never take the server down
            log.exception("unexpected error serving %s %s", request.method, raw_path)
            status, code = 500, "INTERNAL"
            payload = error_body(f"Internal error: {type(error).__name__}: {error}")
        if route is not None:
            self.metrics.record(
                route.model,
                version,
                API_NAMES[route.verb],
                code,
                (time.perf_counter() - started) * 1e6,
            )
        return web.Response(status=status, body=payload, headers=JSON_HEADERS)

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
        if self.settings.batching is None:
            return await loop.run_in_executor(self._pool, self._predict_now, route, body)
        loaded, name, inputs, rows = await loop.run_in_executor(
            self._pool, self._prepare_predict, route, body
        )
        servable = loaded.servable
        batcher = self._batcher(
            loaded.model_name, loaded.version, name, lambda batch: servable.run(name, batch)
        )
        outputs = await asyncio.wrap_future(batcher.submit(inputs))
        self._log_request(loaded, name, inputs, outputs)
        formatter = json_tensor.row_response if rows else json_tensor.columnar_response
        return loaded.version, await loop.run_in_executor(self._pool, formatter, outputs)

    def _prepare_predict(self, route: _Route, body: bytes) -> tuple:
        request = json_tensor.request_object(body)
        name = json_tensor.signature_name(request)
        loaded = self.manager.resolve(route.model, route.version, route.label)
        signature = loaded.servable.signature_def(name or None)
        inputs, rows = json_tensor.predict_inputs(request, signature, name)
        return loaded, name or "serving_default", inputs, rows

    def _predict_now(self, route: _Route, body: bytes) -> tuple[int, bytes]:
        loaded, name, inputs, rows = self._prepare_predict(route, body)
        outputs = loaded.servable.run(name, inputs)
        self._log_request(loaded, name, inputs, outputs)
        formatter = json_tensor.row_response if rows else json_tensor.columnar_response
        return loaded.version, formatter(outputs)

    def _log_request(self, loaded: Any, signature: str, inputs: dict, outputs: dict) -> None:
        """Hands an answered predict request to the request log (a queue put, no file IO)."""
        if self.request_log is not None:
            self.request_log.submit(loaded.model_name, loaded.version, signature, inputs, outputs)

    def _classify_or_regress(self, route: _Route, body: bytes) -> tuple[int, bytes]:
        request = json_tensor.request_object(body)
        name = json_tensor.signature_name(request) or "serving_default"
        loaded = self.manager.resolve(route.model, route.version, route.label)
        signature = loaded.servable.signature_def(name)
        if len(signature.inputs) != 1:
            raise ServingError.invalid_argument("Expected one input Tensor.")
        examples = json_tensor.serialized_examples(request)
        (input_name,) = signature.inputs
        wanted = {"classes", "scores"} if route.verb == "classify" else {"outputs"}
        if not wanted & set(signature.outputs):
            raise ServingError.invalid_argument(
                f"Expected {route.verb} signature outputs named {' or '.join(sorted(wanted))}; "
                f"signature {name} has {', '.join(sorted(signature.outputs)) or 'none'}"
            )
        outputs = loaded.servable.run(name, {input_name: examples})
        if route.verb == "classify":
            return loaded.version, json_tensor.classify_response(outputs, len(examples))
        return loaded.version, json_tensor.regress_response(outputs, len(examples))


def build_app(api: RestApi) -> web.Application:
    app = web.Application(client_max_size=api.settings.max_request_bytes)
    app.router.add_route("*", "/{tail:.*}", api.handle)
    return app

"""ModelServer: the model manager, the REST and gRPC listeners, started and stopped as one."""

import asyncio
import logging
import threading

from aiohttp import web

from serving.app import RestApi, ServerSettings, build_app
from serving.grpc_api import GrpcServer, GrpcSettings
from serving.inference import Inference
from serving.metrics import Metrics
from serving.request_log import ModelLogging, RequestLogger, RequestLogSettings
from serving.request_schema import RequestSchemaCheck, RequestSchemaSettings
from serving.servable import Servable
from serving.versions import LoadedVersion, ModelManager, ModelSpec
from serving.warmup import Warmup, WarmupSettings

log = logging.getLogger(__name__)
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tf'


class ModelServer:
    """Serves `specs` until `stop()` over REST on host:port and, when `grpc_port` is set, gRPC.

    A port of 0 picks a free port (see `.port` and `.grpc_port` once started); `port=None`
    serves no REST. Like tensorflow_model_server, it loads what is on disk before it listens,
    and replays each version's warmup requests before serving it (`warmup`, on by default).
    Each version's request rows are checked against its schema (`request_schema`).
    """

    def __init__(
        self,
        specs: list[ModelSpec],
        host: str = "127.0.0.1",
        port: int | None = 8501,
        settings: ServerSettings | None = None,
        poll_seconds: float = 1.0,
        access_log: bool = True,
        request_log: RequestLogSettings | None = None,
        grpc_port: int | None = None,
        grpc_settings: GrpcSettings | None = None,
        grpc_socket_path: str | None = None,
        warmup: WarmupSettings | None = None,
        request_schema: RequestSchemaSettings | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.settings = settings or ServerSettings()
        self.manager = ModelManager(
            specs,
            loader=Servable,
            poll_seconds=poll_seconds,
            on_change=lambda: self.inference.prune_batchers(),
            warmup=self._prepare_version,
        )
        self.metrics = Metrics(is_known_model=lambda name: self.manager.spec(name) is not None)
        self.schema_check = RequestSchemaCheck(
            request_schema or RequestSchemaSettings(),
            lambda model, version, result: self.metrics.count_schema_check(
                model, version, result.rows, result.counts
            ),
        )
        model_logging = {
            spec.name: ModelLogging(spec.log_sampling_rate, spec.log_filename_prefix)
            for spec in specs
            if spec.log_sampling_rate is not None
        }
        self.request_log = None
        if (request_log is not None and request_log.directory is not None) or model_logging:
            self.request_log = RequestLogger(
                request_log or RequestLogSettings(), model_logging, self.metrics.count_logged
            )
        self.inference = Inference(
            self.manager,
            self.settings.batching,
            self.request_log,
            on_batch=lambda rows, calls: self.metrics.observe_batch(rows),
            schema_check=self.schema_check,
        )
        self.warmup = Warmup(
            self.inference,
            warmup or WarmupSettings(),
            (grpc_settings or GrpcSettings()).max_elements,
            on_latency=self.metrics.observe_warmup,
        )
        self.api = RestApi(self.inference, self.settings, self.metrics)
        self.grpc: GrpcServer | None = None
        grpc_addresses = []
        if grpc_port is not None:
            grpc_addresses.append(_grpc_address(host, grpc_port))
        if grpc_socket_path:
            grpc_addresses.append(f"unix:{grpc_socket_path}")
        if grpc_addresses:
            self.grpc = GrpcServer(self.inference, self.metrics, grpc_addresses, grpc_settings)
        self._access_log = access_log
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def _prepare_version(self, loaded: LoadedVersion) -> None:
        """Readies a version that is still LOADING: its warmup, then the schema its requests
        are checked against. Set after warmup, so warmup requests (not clients') are neither
        counted nor refused, as TF Serving keeps them out of its request log."""
        self.warmup(loaded)
        loaded.request_schema = self.schema_check.schema_for(
            loaded.model_name, loaded.version, loaded.path
        )

    @property
    def grpc_port(self) -> int | None:
        return self.grpc.port if self.grpc is not None else None

    def start(self) -> "ModelServer":
        """Loads the models, then listens in background threads; returns once both accept."""
        if self.request_log is not None:
            self.request_log.start(self.manager.model_names)
        self.manager.start()
        try:
            if self.grpc is not None:
                self.grpc.start()
            if self.port is not None:
                self._thread = threading.Thread(target=self._serve, name="http", daemon=True)
                self._thread.start()
                self._started.wait()
                if self._error is not None:
                    raise self._error
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._listen())
        except BaseException as error:  # noqa: BLE001 - reported to start()'s caller
            self._error = error
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    async def _listen(self) -> None:
        app = build_app(self.api)
        self._runner = web.AppRunner(
            app,
            access_log=logging.getLogger("serving.access") if self._access_log else None,
            access_log_format=ACCESS_LOG_FORMAT,
            handle_signals=False,
            keepalive_timeout=self.settings.idle_timeout_seconds,
        )
        await self._runner.setup()
        # Our own listener rather than aiohttp's TCPSite: every connection passes the guard
        # (connection cap, header and idle deadlines).
        make_handler = self._runner.server
        assert make_handler is not None
        self._listener = await asyncio.get_running_loop().create_server(
            self.api.connections.protocol_factory(make_handler),
            self.host,
            self.port,
            reuse_address=True,
        )
        self.port = self._listener.sockets[0].getsockname()[1]
        log.info("Exporting HTTP/REST API at:%s:%d ...", self.host, self.port)

    async def _close_http(self) -> None:
        if self._listener is not None:
            self._listener.close()
            await self._listener.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._close_http(), self._loop)
            try:
                future.result(timeout=10)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.grpc is not None:
            self.grpc.stop()
        self.manager.stop()
        self.api.close()
        self.inference.close()
        if self.request_log is not None:
            self.request_log.close()

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

"""ModelServer: the model manager, the REST app and the HTTP listener, started and stopped as one."""

import asyncio
import logging
import threading

from aiohttp import web

from serving.app import RestApi, ServerSettings, build_app
from serving.metrics import Metrics
from serving.request_log import ModelLogging, RequestLogger, RequestLogSettings
from serving.servable import Servable
from serving.versions import ModelManager, ModelSpec

log = logging.getLogger(__name__)
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tf'


class ModelServer:
    """Serves `specs` on host:port until `stop()`; `port=0` picks a free port (see `.port`).

    Like tensorflow_model_server, it loads what is on disk before it starts listening.
    """

    def __init__(
        self,
        specs: list[ModelSpec],
        host: str = "127.0.0.1",
        port: int = 8501,
        settings: ServerSettings | None = None,
        poll_seconds: float = 1.0,
        access_log: bool = True,
        request_log: RequestLogSettings | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.metrics = Metrics()
        self.manager = ModelManager(
            specs,
            loader=Servable,
            poll_seconds=poll_seconds,
            on_change=lambda: self.api.prune_batchers(),
        )
        model_logging = {
            spec.name: ModelLogging(spec.log_sampling_rate, spec.log_filename_prefix)
            for spec in specs
            if spec.log_sampling_rate is not None
        }
        self.request_log = None
        if request_log is not None or model_logging:
            self.request_log = RequestLogger(
                request_log or RequestLogSettings(), model_logging, self.metrics.count_logged
            )
        self.api = RestApi(
            self.manager, settings or ServerSettings(), self.metrics, self.request_log
        )
        self._access_log = access_log
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> "ModelServer":
        """Loads the models, then listens in a background thread; returns once it accepts."""
        if self.request_log is not None:
            self.request_log.start(self.manager.model_names)
        self.manager.start()
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self.manager.stop()
            if self.request_log is not None:
                self.request_log.close()
            raise self._error
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
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # noqa: SLF001
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("Exporting HTTP/REST API at:%s:%d ...", self.host, self.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            try:
                future.result(timeout=10)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.manager.stop()
        self.api.close()
        if self.request_log is not None:
            self.request_log.close()

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

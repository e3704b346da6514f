"""Connection limits for the REST listener: how many may be open, and how long one may stall.

aiohttp waits for a request's headers as long as the client likes and keeps idle connections for
an hour, so a client that opens connections and sends half a request holds a file descriptor each
for ever. Here every connection has a deadline while no request is being answered: its request
headers must arrive within `header_timeout_seconds` of connecting (or of the previous answer,
plus `idle_timeout_seconds`), and connections past `max_connections` are closed at once.
Bodies have their own deadline, enforced where they are read (see `app.RestApi`).
"""

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = 1000
    header_timeout_seconds: float = 10.0
    idle_timeout_seconds: float = 75.0


class _Guarded(asyncio.Protocol):
    """Wraps aiohttp's per-connection protocol; tells the guard when the connection opens and ends."""

    def __init__(self, inner: asyncio.Protocol, guard: "ConnectionGuard") -> None:
        self._inner = inner
        self._guard = guard
        self._admitted = False
        self.transport: asyncio.Transport | None = None
        self.deadline: float | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self._admitted = self._guard.admit(self)
        if not self._admitted:
            transport.abort()
            return
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._admitted:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.release(self)
        if self._admitted:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class ConnectionGuard:
    """Tracks open connections, refuses those past the cap and closes those that stall."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._open: dict[Any, _Guarded] = {}  # transport -> its protocol
        self._sweeper: asyncio.Task | None = None
        self.refused = 0
        self.timed_out = 0

    def protocol_factory(self, make_inner: Callable[[], asyncio.Protocol]) -> Callable:
        return lambda: _Guarded(make_inner(), self)

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def admit(self, protocol: _Guarded) -> bool:
        if len(self._open) >= self.limits.max_connections:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning(
                    "%d connections open: refused a new one (%d refused so far; "
                    "--rest_api_max_connections)",
                    len(self._open),
                    self.refused,
                )
            return False
        protocol.deadline = time.monotonic() + self.limits.header_timeout_seconds
        self._open[protocol.transport] = protocol
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        return True

    def release(self, protocol: _Guarded) -> None:
        self._open.pop(protocol.transport, None)

    def request_started(self, transport: Any) -> None:
        """The request's headers arrived: no deadline while it is being read and answered."""
        protocol = self._open.get(transport)
        if protocol is not None:
            protocol.deadline = None

    def request_finished(self, transport: Any) -> None:
        """Answered: the next request's headers are due within the idle plus header timeout."""
        protocol = self._open.get(transport)
        if protocol is not None:
            protocol.deadline = (
                time.monotonic()
                + self.limits.idle_timeout_seconds
                + self.limits.header_timeout_seconds
            )

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.limits.header_timeout_seconds / 2))
            now = time.monotonic()
            for transport, protocol in list(self._open.items()):
                if protocol.deadline is not None and now > protocol.deadline:
                    self.timed_out += 1
                    self._open.pop(transport, None)
                    transport.abort()

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()

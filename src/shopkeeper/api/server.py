"""How uvicorn serves the app: a deadline on reading a request's headers, and logs without request data.

uvicorn bounds an idle keep-alive connection (`timeout_keep_alive`) but not one that trickles its
request line and headers a byte at a time. The protocols here add that deadline: a connection whose
headers are not complete within `header_timeout` seconds of its first byte (or of its opening) gets a
408 and is closed. The body's own deadline is an ASGI guard (`shopkeeper.api.guards.BodyDeadline`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shopkeeper.api.logs import uvicorn_log_config
from shopkeeper.settings import Settings

_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class HeaderDeadline:
    """Mixed into a uvicorn HTTP protocol. `seconds` is set once per process, from the settings, by
    `configure_header_timeout` (uvicorn builds protocols itself, one per connection)."""

    seconds: float = 10.0
    transport: asyncio.Transport
    cycle: Any
    loop: asyncio.AbstractEventLoop
    _header_timer: asyncio.TimerHandle | None = None

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or bool(self.cycle.response_complete)

    def _start_header_timer(self) -> None:
        if self._header_timer is None and self.seconds > 0:
            self._header_timer = self.loop.call_later(self.seconds, self._headers_too_slow)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._start_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_headers():
            self._start_header_timer()
        super().data_received(data)  # type: ignore[misc]
        if not self._waiting_for_headers():
            self._stop_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        # uvicorn's keep-alive timer bounds the wait for the next request's first byte; ours starts then.
        self._stop_header_timer()

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.transport.write(_TIMED_OUT)
            self.transport.close()


class HttpToolsWithHeaderDeadline(HeaderDeadline, HttpToolsProtocol):
    """uvicorn's httptools protocol (its default, and faster) with the header deadline."""


def configure_header_timeout(settings: Settings) -> None:
    HeaderDeadline.seconds = settings.header_timeout


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The options every shopkeeper server runs uvicorn with (one worker or several, and the tests')."""
    configure_header_timeout(settings)
    return {
        "http": HttpToolsWithHeaderDeadline,
        "log_level": settings.log_level,
        "log_config": uvicorn_log_config(),
        # No access log: paths carry people's ids, and logs must not hold personal data.
        "access_log": False,
    }

"""ASGI guards around the app: a deadline on reading a request's body, and a clean answer to any error.

`UnexpectedErrors` replaces Starlette's last-resort handling, which sends its 500 and then raises the
error again: uvicorn then prints the traceback with its message (request data) and drops the
keep-alive connection with no `Connection: close`.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopkeeper.api.logs import redacted_traceback
from shopkeeper.errors import RequestTimeout

log = logging.getLogger("shopkeeper.api")


class BodyDeadline:
    """The whole body must arrive within `seconds` of the request's headers, else a 408 that closes
    the connection (a client trickling its body would hold a connection, and a worker's slot, for good)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.seconds
        complete = False

        async def receive_in_time() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise RequestTimeout(
                    f"the body did not arrive within {self.seconds:g} s; send it at once", field="body"
                ) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, receive_in_time, send)


class UnexpectedErrors:
    """Any error no handler answered: logged with its route and a traceback whose messages are withheld,
    and answered with a JSON 500 and `Connection: close` (or, once a response has started, the
    connection is closed, which is all that is left to do)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception as exc:
            route = getattr(scope.get("route"), "path", "?")
            # The route's template and the error's type; the traceback without messages (request data).
            log.error(
                "unexpected %s on %s %s\n%s",
                type(exc).__name__,
                scope.get("method"),
                route,
                redacted_traceback(exc),
            )
            if started:
                return  # uvicorn closes a connection whose response did not complete
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_UNEXPECTED_BODY)).encode()),
                (b"connection", b"close"),
            ]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": _UNEXPECTED_BODY})


_UNEXPECTED_BODY = orjson.dumps(
    {"error": {"code": "internal_error", "message": "an unexpected error; nothing was stored", "field": None}}
)

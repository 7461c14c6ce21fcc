"""Raw connections to a live server: an unexpected error answers cleanly on a keep-alive connection
(issue 12, item 10), and a client trickling its headers or its body is cut off with a 408 (item 12)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.conftest import serving_app

from shopkeeper.api.app import create_app
from shopkeeper.settings import Settings
from shopkeeper.store import Store

READ_TIMEOUTS = {"header_timeout": 1.0, "body_timeout": 1.0}
TRICKLE_FOR = 20.0  # seconds a trickling client would go on for, far past the 1 s timeouts


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int, str, Store]]:
    """A live server with 1 s read timeouts: (host, port, admin key, store)."""
    store = Store.open(f"sqlite:///{tmp_path / 'shop.db'}")
    admin_key, _ = store.keys.create("admin", name="tests")
    settings = Settings(database_url=str(store.engine.url), **READ_TIMEOUTS)
    with serving_app(create_app(settings, store=store), settings) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port), admin_key, store
    store.close()


def _request(method: str, path: str, admin_key: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer {admin_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length: (status, headers in lower case, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection without answering (after {data!r})"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:]))
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection in the middle of a response"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_an_unexpected_error_answers_json_500_and_the_connection_stays_sound(
    server: tuple[str, int, str, Store],
) -> None:
    host, port, admin_key, store = server

    def explode(*_: Any, **__: Any) -> None:
        raise RuntimeError("an unexpected failure holding secret-value-77")

    store.catalog.upsert = explode  # type: ignore[method-assign]
    item = orjson.dumps({"title": "Mug", "price": 3.0})
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(_request("PUT", "/v1/items/sku-1", admin_key, item))
        status, headers, body = _read_response(sock)
        assert status == 500
        assert orjson.loads(body)["error"]["code"] == "internal_error"
        assert b"secret-value-77" not in body
        # Either the server said it closes, or the same connection answers the next request.
        if headers.get("connection", "").lower() == "close":
            assert _closed(sock)
        else:
            sock.sendall(_request("GET", "/healthz", admin_key))
            assert _read_response(sock)[0] == 200


def _trickle(sock: socket.socket, data: bytes) -> bytes:
    """Send `data` a byte every 0.2 s until the server answers or closes; what it answered."""
    deadline = time.monotonic() + TRICKLE_FOR
    sock.settimeout(0.2)
    for byte in data:
        assert time.monotonic() < deadline, "the server let a trickling client hold the connection"
        try:
            sock.sendall(bytes([byte]))
            answered = sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return b""
        return answered
    raise AssertionError("the whole request was trickled in without the server cutting it off")


def test_a_client_trickling_its_headers_gets_408_and_is_closed(server: tuple[str, int, str, Store]) -> None:
    host, port, _, _ = server
    with socket.create_connection((host, port), timeout=10) as sock:
        headers = b"POST /v1/batch HTTP/1.1\r\nHost: shop\r\n" + b"X-Padding: " + b"a" * 500 + b"\r\n\r\n"
        answered = _trickle(sock, headers)
        assert answered.startswith(b"HTTP/1.1 408"), answered
        sock.settimeout(10)
        assert _closed(sock)


def test_a_silent_connection_is_closed(server: tuple[str, int, str, Store]) -> None:
    host, port, _, _ = server
    with socket.create_connection((host, port), timeout=TRICKLE_FOR) as sock:
        assert sock.recv(65536).startswith(b"HTTP/1.1 408")  # it never sent a byte
        assert _closed(sock)


def test_a_client_trickling_its_body_gets_408_and_is_closed(server: tuple[str, int, str, Store]) -> None:
    host, port, admin_key, _ = server
    body = orjson.dumps({"batch": [{"type": "track", "userId": "u", "event": "E"}] * 20})
    request = _request("POST", "/v1/items/batch", admin_key, body)
    head, _, rest = request.partition(b"\r\n\r\n")
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head + b"\r\n\r\n")
        answered = _trickle(sock, rest)
        assert answered.startswith(b"HTTP/1.1 408"), answered
        assert b"request_timeout" in answered or b"connection: close" in answered.lower()
        sock.settimeout(10)
        while not _closed(sock):
            pass

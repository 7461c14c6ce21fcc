"""What the bad-input tests share: one live server per backend, and small HTTP helpers."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson
from tests.conftest import serving

from shopkeeper.store import Store

KB = 1024
SINGLE = ("track", "identify", "page", "screen", "group", "alias")
TRACKING = (*SINGLE, "batch")
VALID: dict[str, dict[str, Any]] = {
    "track": {"userId": "u-1", "event": "Product Viewed"},
    "identify": {"userId": "u-1", "traits": {"plan": "pro"}},
    "page": {"userId": "u-1", "name": "Home"},
    "screen": {"userId": "u-1", "name": "Home"},
    "group": {"userId": "u-1", "groupId": "g-1"},
    "alias": {"userId": "u-1", "previousId": "anon-1"},
}


# ---- a live server shared by the table-driven cases ---------------------------------------------------


@dataclass
class Server:
    url: str
    write_key: str
    admin_key: str
    store: Store
    http: httpx.Client

    @property
    def backend(self) -> str:
        return self.store.backend


def serve(url: str, http: httpx.Client) -> Iterator[Server]:
    store = Store.open(url)
    write_key, _ = store.keys.create("write", name="errors")
    admin_key, _ = store.keys.create("admin", name="errors")
    try:
        with serving(store, log_level="critical") as server_url:
            yield Server(server_url, write_key, admin_key, store, http)
    finally:
        store.close()


# ---- helpers -------------------------------------------------------------------------------------------


def post(
    server: Server,
    kind: str,
    body: Any = None,
    *,
    content: bytes | None = None,
    headers: dict[str, Any] | None = None,
    key: str | None = "write",
) -> httpx.Response:
    """POST to /v1/{kind}: `body` is sent as UTF-8 JSON, `content` as raw bytes."""
    data = content if content is not None else orjson.dumps(body)
    auth = None
    if key == "write":
        auth = (server.write_key, "")
    elif key is not None:
        auth = (key, "")
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return server.http.post(f"{server.url}/v1/{kind}", content=data, headers=all_headers, auth=auth)


def admin_get(server: Server, path: str, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or server.admin_key}"}
    return server.http.get(f"{server.url}{path}", headers=headers)


def assert_error(
    response: httpx.Response, status: int, code: str, field: str | None, *, named: bool = True
) -> dict[str, Any]:
    """The contract's error shape, exactly, with `field`; `named`: the message names the field too."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert list(body) == ["error"], body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "field"}, error
    assert error["code"] == code, error
    assert error["field"] == field, error
    assert isinstance(error["message"], str), error
    assert error["message"].strip(), error
    if named and field and "[" not in field.rsplit(".", 1)[-1] and field not in ("body", "Authorization"):
        assert field.rsplit(".", 1)[-1] in error["message"], f"the message does not name the field: {error}"
    return error


def message(kind: str, **changes: Any) -> dict[str, Any]:
    """A valid message of `kind` (with its `type`), with fields changed; None removes a field."""
    out = {"type": kind, **VALID[kind], **changes}
    return {k: v for k, v in out.items() if v is not None}


def single_body(kind: str, **changes: Any) -> dict[str, Any]:
    out = {**VALID[kind], **changes}
    return {k: v for k, v in out.items() if v is not None}


def batch_of(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"batch": list(messages)}


def valid_body(kind: str) -> dict[str, Any]:
    return batch_of(*(message(k) for k in SINGLE)) if kind == "batch" else dict(VALID[kind])


def raw_http(server: Server, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (httpx would fix a bad Content-Length) and read the whole answer."""
    parts = urlsplit(server.url)
    answer = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def raw_post(
    server: Server, kind: str, body: bytes, header_lines: list[bytes]
) -> tuple[int, dict[str, str], bytes]:
    credentials = base64.b64encode(f"{server.write_key}:".encode()).decode()
    head = [
        f"POST /v1/{kind} HTTP/1.1".encode(),
        b"Host: 127.0.0.1",
        f"Authorization: Basic {credentials}".encode(),
        b"Content-Type: application/json",
        b"Connection: close",
        *header_lines,
    ]
    return raw_http(server, b"\r\n".join(head) + b"\r\n\r\n" + body)


def padded(kind: str, size: int) -> dict[str, Any]:
    """A valid message of `kind` whose JSON is about `size` bytes (the padding is in properties/traits)."""
    room = "traits" if kind in ("identify", "group") else "properties"
    return message(kind, **{room: {"pad": "x" * max(0, size - 120)}})


def read_events(server: Server, external_id: str) -> list[dict[str, Any]]:
    response = admin_get(server, f"/v1/people/{quote(external_id, safe='')}/events")
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events

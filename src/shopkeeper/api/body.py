"""Reading request bodies safely: size limits before parsing, gzip with a bomb guard, strict JSON."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from shopkeeper.errors import InvalidInput, PayloadTooLarge


async def read_json(request: Request, limit: int) -> Any:
    """The parsed JSON body, refusing anything over `limit` bytes (after decompression) with a 413."""
    return parse_json(await read_body(request, limit))


async def read_body(request: Request, limit: int) -> bytes:
    """The body's bytes, inflated when gzipped, refusing anything over `limit` bytes with a 413."""
    declared = request.headers.get("content-length")
    if declared is not None:
        declared = declared.strip()
        if not declared.isdigit():
            raise InvalidInput("Content-Length must be a number", field="Content-Length")
        if int(declared) > limit:
            raise PayloadTooLarge(_too_large(limit), field="body")
    raw = bytearray()
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise PayloadTooLarge(_too_large(limit), field="body")
    except ClientDisconnect:
        raise InvalidInput(
            "the client went away before sending the whole body", field="body", code="client_disconnected"
        ) from None
    data = bytes(raw)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        data = _gunzip(data, limit)
    elif encoding not in ("identity", ""):
        raise InvalidInput(
            f"Content-Encoding {encoding!r} is not supported; send gzip or nothing", field="Content-Encoding"
        )
    return data


MAX_DEPTH = 64


def parse_json(data: bytes) -> Any:
    """Every JSON body's one parser: strict JSON, nested at most MAX_DEPTH deep, integers within 64 bits.

    Deeper nesting is refused up front with a 400 that names the limit: past 254 levels orjson cannot
    write a value back, and past 1024 it cannot read one.
    """
    if not data.strip():
        raise InvalidInput("the body is empty; send a JSON object", field="body")
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc).lower():
            raise _too_deep() from None
        raise InvalidInput(f"the body is not valid JSON: {exc}", field="body", code="invalid_json") from None
    # A body with fewer brackets than the limit cannot be nested too deep: most skip the walk.
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH and _nested_deeper(parsed, MAX_DEPTH):
        raise _too_deep()
    if _has_long_digit_run(data):
        _check_integers(data)
    return parsed


def _nested_deeper(value: Any, room: int) -> bool:
    """Whether `value` holds arrays or objects nested more than `room` deep (the outermost is one)."""
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    if children is None:
        return False
    if room == 0:
        return True
    return any(_nested_deeper(child, room - 1) for child in children if isinstance(child, dict | list))


def _too_deep() -> InvalidInput:
    return InvalidInput(
        f"the body nests arrays and objects more than {MAX_DEPTH} deep; flatten it",
        field="body",
        code="invalid_json",
    )


# orjson reads integers beyond 64 bits as floats, silently rounding them. Bodies with a run of 19+ digits
# are rare, so only those are read again, exactly, to refuse such integers instead of changing them.
# Finding the run: every digit becomes "0" (one C pass), then one substring search; a regex over a
# 500 KB batch costs far more.
_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_RUN = b"0" * 19
_INT64 = 2**63


def _has_long_digit_run(data: bytes) -> bool:
    return _LONG_RUN in data.translate(_DIGITS_TO_ZERO)


def _check_integers(data: bytes) -> None:
    """Refuse integers beyond 64 bits, naming where they are (`properties.n`, `batch[2].properties.n`)."""
    path = _find_big_integer(json.loads(data), "")
    if path is not None:
        raise InvalidInput(f"{path} is an integer beyond 64 bits; send it as a string", field=path)


def _find_big_integer(value: Any, path: str) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return path or "body" if not -_INT64 <= value < _INT64 else None
    children: Iterable[tuple[str, Any]] = ()
    if isinstance(value, dict):
        children = ((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
    elif isinstance(value, list):
        children = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    for child_path, child in children:
        found = _find_big_integer(child, child_path)
        if found is not None:
            return found
    return None


def _gunzip(data: bytes, limit: int) -> bytes:
    """Inflate every gzip member (RFC 1952 allows several), stopping past `limit` (a gzip bomb guard)."""
    out = bytearray()
    rest = data
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise InvalidInput(
                f"the body is not valid gzip: {exc}", field="body", code="invalid_gzip"
            ) from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(_too_large(limit) + " once decompressed", field="body")
        if not inflater.eof:
            raise InvalidInput("the gzip body is truncated", field="body", code="invalid_gzip")
        rest = inflater.unused_data
        if not rest:
            return bytes(out)
        if not rest.startswith(b"\x1f\x8b"):
            raise InvalidInput(
                "there are bytes after the end of the gzip data", field="body", code="invalid_gzip"
            )


def _too_large(limit: int) -> str:
    return f"the body may be at most {limit // 1024} KB"


# The JSON routes whose bodies FastAPI reads into a model (decide, experiments): at most this much.
MODEL_BODY_LIMIT = 256 * 1024


class JsonBodyRoute(APIRoute):
    """A route whose body FastAPI reads into a pydantic model, read first by `read_body` and
    `parse_json` (size limit, gzip, the nesting cap), then handed to FastAPI already parsed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def read_then_handle(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH"):
                data = await read_body(request, MODEL_BODY_LIMIT)
                request._body = data  # Starlette's cache: FastAPI reads the body from here
                if data.strip() and _says_json(request.headers.get("content-type")):
                    request._json = parse_json(data)
            return await handler(request)

        return read_then_handle


def _says_json(content_type: str | None) -> bool:
    if not content_type:
        return True
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))

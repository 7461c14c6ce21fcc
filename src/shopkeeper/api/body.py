"""Reading request bodies safely: size limits before parsing, gzip with a bomb guard, strict JSON."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from starlette.requests import Request

from shopkeeper.errors import InvalidInput, PayloadTooLarge


async def read_json(request: Request, limit: int) -> Any:
    """The parsed JSON body, refusing anything over `limit` bytes (after decompression) with a 413."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidInput("Content-Length must be a number", field="Content-Length")
        if int(declared) > limit:
            raise PayloadTooLarge(_too_large(limit), field="body")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise PayloadTooLarge(_too_large(limit), field="body")
    data = bytes(raw)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        data = _gunzip(data, limit)
    elif encoding not in ("identity", ""):
        raise InvalidInput(
            f"Content-Encoding {encoding!r} is not supported; send gzip or nothing", field="Content-Encoding"
        )
    if not data.strip():
        raise InvalidInput("the body is empty; send a JSON object", field="body")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}", field="body", code="invalid_json") from None


def _gunzip(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"the body is not valid gzip: {exc}", field="body", code="invalid_gzip") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(_too_large(limit) + " once decompressed", field="body")
    if not inflater.eof:
        raise InvalidInput("the gzip body is truncated", field="body", code="invalid_gzip")
    return out


def _too_large(limit: int) -> str:
    return f"the body may be at most {limit // 1024} KB"

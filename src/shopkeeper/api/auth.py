"""Who is calling: write keys (HTTP Basic username, or `writeKey` in the body) and admin keys (Bearer only:
Basic is there for Segment's SDKs, which send a write key that way; an admin key never goes in a page)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from shopkeeper.errors import AuthenticationError, PermissionDenied
from shopkeeper.store.keys import ApiKey, SqlKeyStore

WRITE_KEY_HELP = "send the write key as the HTTP Basic username, or as writeKey in the body"
ADMIN_AS_BASIC = "admin keys are accepted only as a Bearer token: send Authorization: Bearer <admin key>"


def sent_as_basic(request: Request) -> bool:
    """Whether the Authorization header is HTTP Basic (which only write keys may use)."""
    return request.headers.get("authorization", "").lstrip()[:6].lower() == "basic "


def key_from_header(request: Request) -> str | None:
    """The key in the Authorization header: Basic (the username) or Bearer. None when there is none."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and credentials.strip():
        return credentials.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):  # ValueError: non-ASCII characters in the header
            raise AuthenticationError(
                "the Basic credentials are not valid base64", field="Authorization"
            ) from None
        username = decoded.partition(":")[0]
        if username:
            return username
    raise AuthenticationError(
        "the Authorization header must be Basic <write key> or Bearer <key>", field="Authorization"
    )


async def known_key(keys: SqlKeyStore, raw: str) -> ApiKey | None:
    """The active key `raw` names, or None, without blocking the event loop: the cache answers nearly
    always; a miss waits here (not in a worker thread) until the keys may be read again, then reads."""
    asked_at = time.monotonic()
    answered, key = keys.authenticate_cached(raw)
    if answered:
        return key
    await asyncio.sleep(keys.wait_before_reading())
    return await run_in_threadpool(partial(keys.authenticate, raw, asked_at=asked_at))


async def write_key(keys: SqlKeyStore, raw: str | None, body: Any = None) -> ApiKey:
    """The write key this tracking call carries; admin keys are refused (write keys only ingest)."""
    if raw is None and isinstance(body, dict):
        candidate = body.get("writeKey")
        raw = candidate if isinstance(candidate, str) and candidate else None
    if raw is None:
        raise AuthenticationError(f"no write key: {WRITE_KEY_HELP}", field="Authorization")
    key = await known_key(keys, raw)
    if key is None:
        raise AuthenticationError("unknown or revoked write key", field="Authorization")
    if key.kind != "write":
        raise PermissionDenied("tracking endpoints take a write key, not an admin key", field="Authorization")
    return key


async def admin_key_async(keys: SqlKeyStore, request: Request) -> ApiKey:
    """The admin key the request carries (Bearer), checked."""
    raw = key_from_header(request)
    if raw is None:
        raise AuthenticationError(
            "send the admin key as: Authorization: Bearer <admin key>", field="Authorization"
        )
    return _admin(await known_key(keys, raw), request)


def _admin(key: ApiKey | None, request: Request) -> ApiKey:
    if key is None:
        raise AuthenticationError("unknown or revoked key", field="Authorization")
    if key.kind == "admin" and sent_as_basic(request):
        raise AuthenticationError(ADMIN_AS_BASIC, field="Authorization")
    if key.kind != "admin":
        raise PermissionDenied(
            "this endpoint needs an admin key; write keys may only ingest", field="Authorization"
        )
    return key

"""Rate limits: token buckets per key and per client address, kept in each worker's memory.

Every request to a limited route takes a token from its address's bucket and from its key's bucket
(the key or link token in the `Authorization` header; a write key sent in the body is limited by address
only). A request that finds a bucket empty is answered 429 `rate_limited` with `Retry-After`, before it
is authenticated or touches the database. Each answer 401 (a failed authentication) also takes a token
from the address's failure bucket, and a failed link token from its failed-link bucket: while one of
those is empty, every limited request from that address is answered 429, so guessing keys or links
costs a minute per few tries.

Routes fall in three classes, each with its own rate (`SHOPKEEPER_RATE_LIMIT_*`): tracking (the Segment
routes: generous, a browser write key carries a whole shop's traffic), links (a person's own link: a
preference centre makes a few calls a page) and admin (everything else under `/v1/`). Health checks,
the preference-centre page and the OpenAPI document are never limited.

The buckets live in the worker's memory, so each of `serve --workers N` keeps its own: the limits hold
per worker, and a client spread over N workers gets up to N times them. The middleware is plain ASGI and
does no I/O: a few dictionary lookups per request.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopkeeper.api.tracking import TRACKING_PATHS
from shopkeeper.privacy.tokens import looks_like_token
from shopkeeper.settings import Settings

TRACKING, LINK, ADMIN = "tracking", "link", "admin"
BURST_SECONDS = 2.0  # a bucket holds this many seconds' worth of requests
KEPT = 50_000  # buckets per limit before the full (idle) ones are dropped
_TRACKING = frozenset(TRACKING_PATHS)


@dataclass(frozen=True, slots=True)
class Limits:
    """Requests per second per key and per address for each class (0: off), and failures per minute
    per address."""

    tracking: float = 1000.0
    link: float = 10.0
    admin: float = 1000.0
    failed_auth_per_minute: float = 30.0
    failed_links_per_minute: float = 10.0


class TokenBucket:
    """One bucket per name: `rate` tokens a second, holding at most `burst`. Not thread-safe: it is used
    from the event loop only, between awaits."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._buckets: dict[str, list[float]] = {}  # name -> [tokens, monotonic time of that count]

    def _level(self, name: str, now: float) -> list[float]:
        bucket = self._buckets.get(name)
        if bucket is None:
            if len(self._buckets) >= KEPT:
                self._drop_full(now)
            bucket = self._buckets[name] = [self.burst, now]
        else:
            bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
        return bucket

    def wait(self, name: str, now: float) -> float:
        """Seconds until `name` has a token (0 when it has one now); takes nothing."""
        bucket = self._buckets.get(name)
        if bucket is None:
            return 0.0
        level = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        return 0.0 if level >= 1.0 else (1.0 - level) / self.rate

    def take(self, name: str, now: float) -> float:
        """Take a token: 0 when there was one, else the seconds until there will be (nothing taken)."""
        bucket = self._level(name, now)
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return 0.0
        return (1.0 - bucket[0]) / self.rate

    def _drop_full(self, now: float) -> None:
        idle = self.burst / self.rate
        self._buckets = {n: b for n, b in self._buckets.items() if now - b[1] < idle}


class RateLimits:
    """The ASGI middleware: see the module docstring."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self._per_second: dict[str, tuple[TokenBucket, TokenBucket]] = {
            kind: (TokenBucket(rate, rate * BURST_SECONDS), TokenBucket(rate, rate * BURST_SECONDS))
            for kind, rate in ((TRACKING, limits.tracking), (LINK, limits.link), (ADMIN, limits.admin))
            if rate > 0
        }
        self._failures = _per_minute(limits.failed_auth_per_minute)
        self._failed_links = _per_minute(limits.failed_links_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        kind = TRACKING if path in _TRACKING else ADMIN if path.startswith("/v1/") else None
        if kind is None:
            await self.app(scope, receive, send)
            return
        credential = _credential(scope)
        if credential is not None and kind == ADMIN and looks_like_token(credential):
            kind = LINK
        client = scope.get("client")
        address = client[0] if client else "unknown"
        now = time.monotonic()
        refusal = self._refusal(kind, address, credential, now)
        if refusal is not None:
            await _too_many(send, *refusal)
            return
        status = 0

        async def watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watching)
        if status == 401:
            now = time.monotonic()
            if self._failures is not None:
                self._failures.take(address, now)
            if kind == LINK and self._failed_links is not None:
                self._failed_links.take(address, now)

    def _refusal(
        self, kind: str, address: str, credential: str | None, now: float
    ) -> tuple[float, str] | None:
        """(seconds to wait, why) when this request must wait; None when it may go on."""
        if self._failures is not None and (wait := self._failures.wait(address, now)):
            return wait, "too many failed authentications from this address"
        if (
            kind == LINK
            and self._failed_links is not None
            and (wait := self._failed_links.wait(address, now))
        ):
            return wait, "too many invalid links from this address"
        buckets = self._per_second.get(kind)
        if buckets is None:
            return None
        by_address, by_key = buckets
        if wait := by_address.take(address, now):
            return wait, f"too many {kind} requests from this address"
        if credential is not None and (wait := by_key.take(credential, now)):
            return wait, f"too many {kind} requests with this key"
        return None


def _per_minute(count: float) -> TokenBucket | None:
    return TokenBucket(count / 60.0, count) if count > 0 else None


def _credential(scope: Scope) -> str | None:
    """The key or link token in the Authorization header (Bearer, or Basic's username); None if none."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, rest = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer":
                return rest.strip() or None
            if scheme.lower() == "basic":
                try:
                    return base64.b64decode(rest.strip(), validate=True).decode().partition(":")[0] or None
                except (binascii.Error, ValueError):
                    return None
            return None
    return None


async def _too_many(send: Send, wait: float, why: str) -> None:
    seconds = max(1, math.ceil(wait))
    body = orjson.dumps(
        {"error": {"code": "rate_limited", "message": f"{why}: try again in {seconds} s", "field": None}}
    )
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(seconds).encode()),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def limits_from(settings: Settings) -> Limits:
    """The limits that `Settings` configures."""
    return Limits(
        tracking=settings.rate_limit_tracking,
        link=settings.rate_limit_link,
        admin=settings.rate_limit_admin,
        failed_auth_per_minute=settings.rate_limit_failed_auth,
        failed_links_per_minute=settings.rate_limit_failed_links,
    )

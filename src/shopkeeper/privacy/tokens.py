"""Signed, expiring links for one person: an HMAC token, so there is no password to manage.

A token is `pt1.<payload>.<signature>`: the payload is base64url JSON `{"id": external id, "exp": unix
seconds}`, the signature HMAC-SHA256 over `pt1.<payload>` with the shop's signing secret. It names the person
by an id the shop already uses, so a link stops working once the person is erased.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import select

from shopkeeper.errors import AuthenticationError
from shopkeeper.settings import Settings
from shopkeeper.store import Store
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.schema import shop_secrets
from shopkeeper.store.traits import insert_ignoring_duplicates

PREFIX = "pt1"
SECRET_NAME = "link_signing_key"
DEFAULT_TTL = timedelta(days=30)
EXPIRED = "this link has expired: ask the shop for a new one"
INVALID = "this link is not valid: it may have been changed or cut short"


def looks_like_token(raw: str) -> bool:
    return raw.startswith(PREFIX + ".")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, message: str) -> str:
    return _b64(hmac.new(secret, message.encode(), hashlib.sha256).digest())


def issue_token(
    secret: bytes, external_id: str, *, ttl: timedelta = DEFAULT_TTL, now: datetime | None = None
) -> str:
    """A link token for the person known by `external_id`, valid for `ttl`."""
    expires = int(((now or datetime.now(UTC)) + ttl).timestamp())
    body = f"{PREFIX}.{_b64(orjson.dumps({'id': external_id, 'exp': expires}))}"
    return f"{body}.{_sign(secret, body)}"


def read_token(secret: bytes, token: str, *, now: datetime | None = None) -> str:
    """The external id a valid token names. Raises AuthenticationError for a tampered or expired one."""
    prefix, _, rest = token.partition(".")
    payload, _, signature = rest.partition(".")
    if prefix != PREFIX or not payload or not signature:
        raise AuthenticationError(INVALID, field="token")
    if not hmac.compare_digest(_sign(secret, f"{prefix}.{payload}"), signature):
        raise AuthenticationError(INVALID, field="token")
    try:
        claims = orjson.loads(_unb64(payload))
    except (binascii.Error, ValueError):
        raise AuthenticationError(INVALID, field="token") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("id"), str):
        raise AuthenticationError(INVALID, field="token")
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= (now or datetime.now(UTC)).timestamp():
        raise AuthenticationError(EXPIRED, field="token")
    external_id: str = claims["id"]
    return external_id


def signing_secret(store: Store, settings: Settings) -> bytes:
    """The secret that signs links: `SHOPKEEPER_SECRET_KEY` when set, else one the shop generated once
    and keeps in its database, so that every worker (and every restart) signs and checks alike."""
    if settings.secret_key:
        return settings.secret_key.encode()
    engine = store.engine
    with engine.connect() as conn:
        found = conn.scalar(select(shop_secrets.c.value).where(shop_secrets.c.name == SECRET_NAME))
    if found is not None:
        return bytes(found)
    with write_transaction(engine) as conn:
        conn.execute(
            insert_ignoring_duplicates(conn, shop_secrets),
            {"name": SECRET_NAME, "value": secrets.token_bytes(32)},
        )
        value = conn.scalar(select(shop_secrets.c.value).where(shop_secrets.c.name == SECRET_NAME))
    assert value is not None
    return bytes(value)

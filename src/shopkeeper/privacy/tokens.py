"""Signed, expiring links for one person: an HMAC token, so there is no password to manage.

A token is `pt2.<payload>.<signature>`: the payload is base64url JSON `{"p": person id, "g": generation,
"exp": unix seconds}`, the signature HMAC-SHA256 over `pt2.<payload>` with the shop's signing secret. It
names the internal person it was issued for and that person's generation (`people.generation`), not an
external id: an external id can be moved to someone else by an `alias`, a person id and its generation
cannot. So a link stops working once its person is erased, merged away, or re-created under the same userId
(SQLite may even give the new person the same id; the generation differs). `pt1` links, which named an
external id, are refused like any other invalid link.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

import orjson

from shopkeeper.errors import AuthenticationError, NotFound
from shopkeeper.settings import Settings
from shopkeeper.store import Store
from shopkeeper.store.identity import LinkedPerson

PREFIX = "pt2"
RETIRED_PREFIXES = ("pt1",)  # link formats of earlier releases: recognised, and refused
SECRET_NAME = "link_signing_key"
DEFAULT_TTL = timedelta(days=30)
EXPIRED = "this link has expired: ask the shop for a new one"
INVALID = "this link is not valid: it may have been changed or cut short"


def looks_like_token(raw: str) -> bool:
    return any(raw.startswith(prefix + ".") for prefix in (PREFIX, *RETIRED_PREFIXES))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, message: str) -> str:
    return _b64(hmac.new(secret, message.encode(), hashlib.sha256).digest())


def issue_token(
    secret: bytes, person: LinkedPerson, *, ttl: timedelta = DEFAULT_TTL, now: datetime | None = None
) -> str:
    """A link token for this person at this generation, valid for `ttl`."""
    expires = int(((now or datetime.now(UTC)) + ttl).timestamp())
    claims = {"p": person.person_id, "g": person.generation, "exp": expires}
    body = f"{PREFIX}.{_b64(orjson.dumps(claims))}"
    return f"{body}.{_sign(secret, body)}"


def linked_person(store: Store, external_id: str) -> LinkedPerson:
    """The person known by `external_id` as a link names them: person id and current generation."""
    person_id = store.identities.find_person(external_id)
    generation = None if person_id is None else store.identities.generation_of(person_id)
    if person_id is None or generation is None:
        raise NotFound(f"no person is known by the id {external_id!r}", field="id")
    return LinkedPerson(person_id, generation)


def issue_link(
    store: Store,
    secret: bytes,
    external_id: str,
    *,
    ttl: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
) -> str:
    """A link token for the person known by `external_id` now. Raises NotFound for an unknown id."""
    return issue_token(secret, linked_person(store, external_id), ttl=ttl, now=now)


def read_token(secret: bytes, token: str, *, now: datetime | None = None) -> LinkedPerson:
    """The person a validly signed, unexpired token names. Raises AuthenticationError for a tampered,
    expired or old-format one. Whether the person is still there, at that generation, is `find_person`'s
    question (`verify_token` asks it)."""
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
    if not isinstance(claims, dict) or not all(type(claims.get(name)) is int for name in ("p", "g")):
        raise AuthenticationError(INVALID, field="token")
    if type(claims.get("exp")) is not int or claims["exp"] <= (now or datetime.now(UTC)).timestamp():
        raise AuthenticationError(EXPIRED, field="token")
    return LinkedPerson(claims["p"], claims["g"])


def verify_token(store: Store, secret: bytes, token: str) -> LinkedPerson:
    """`read_token`, and the person still there at the token's generation; else the same "not valid"
    401 as a tampered link (a link for someone erased or merged away says no more than that)."""
    person = read_token(secret, token)
    if store.identities.find_person(person) is None:
        raise AuthenticationError(INVALID, field="token")
    return person


def signing_secret(store: Store, settings: Settings) -> bytes:
    """The secret that signs links: `SHOPKEEPER_SECRET_KEY` when set, else one the shop generated once
    and keeps in its database, so that every worker (and every restart) signs and checks alike."""
    if settings.secret_key:
        return settings.secret_key.encode()
    return store.keys.secret(SECRET_NAME, lambda: secrets.token_bytes(32))

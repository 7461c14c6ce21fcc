"""API keys: write keys only ingest, admin keys manage. Only a key's sha256 is stored, never the key.

The secrets the shop makes for itself (the key that signs links) are kept here too."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import orjson
from sqlalchemy import Engine, insert, select, update

from shopkeeper.errors import InvalidInput, NotFound
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.schema import api_keys, shop_secrets
from shopkeeper.store.traits import insert_ignoring_duplicates

MISS_READS_EVERY = 1.0  # seconds: an unknown key makes the keys be read again at most this often

KeyKind = Literal["write", "admin"]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored: never the secret itself, only its hash and a short prefix to recognise it."""

    id: int
    kind: KeyKind
    prefix: str
    name: str
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.allowed_origins or origin in self.allowed_origins


KEY_PREFIXES: dict[KeyKind, str] = {"write": "sk_write_", "admin": "sk_admin_"}
_PREFIXES = tuple(KEY_PREFIXES.values())  # every key this shop has ever made starts with one


def hash_key(raw: str) -> str:
    """Keys are 192 random bits, so a plain sha256 is enough: there is nothing to brute-force."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def normalize_origin(origin: str) -> str:
    origin = origin.strip().rstrip("/")
    if origin != "*" and not origin.startswith(("http://", "https://")):
        raise InvalidInput(f"an origin looks like https://shop.example, not {origin!r}", field="origin")
    return origin


class SqlKeyStore:
    """Creates, lists and revokes keys, and authenticates them through a short-lived in-memory cache."""

    def __init__(self, engine: Engine, *, cache_seconds: float = 5.0) -> None:
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._cache: dict[str, ApiKey] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def create(
        self, kind: KeyKind, *, name: str = "", origins: list[str] | None = None
    ) -> tuple[str, ApiKey]:
        """A new key: returns the secret (shown once) and its stored record."""
        if kind not in KEY_PREFIXES:
            raise InvalidInput("a key's kind is write or admin", field="kind")
        allowed = tuple(normalize_origin(o) for o in origins or [])
        if allowed and kind != "write":
            raise InvalidInput(
                "only write keys are used from browsers; admin keys take no origins", field="origin"
            )
        raw = KEY_PREFIXES[kind] + secrets.token_urlsafe(24)
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            key_id = conn.execute(
                insert(api_keys).values(
                    kind=kind,
                    key_hash=hash_key(raw),
                    prefix=raw[: len(KEY_PREFIXES[kind]) + 4],
                    name=name,
                    allowed_origins=orjson.dumps(list(allowed)).decode(),
                    created_at=now,
                )
            ).inserted_primary_key
        assert key_id is not None
        self._loaded_at = float("-inf")
        return raw, ApiKey(int(key_id[0]), kind, raw[: len(KEY_PREFIXES[kind]) + 4], name, allowed, now)

    def list(self) -> list[ApiKey]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.id)).all()
        return [_to_key(r) for r in rows]

    def revoke(self, key_id: int) -> None:
        with write_transaction(self._engine) as conn:
            done = conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            ).rowcount
        if not done:
            raise NotFound(f"no active key with id {key_id}", field="id")
        self._loaded_at = float("-inf")

    def authenticate(self, raw: str, *, asked_at: float | None = None) -> ApiKey | None:
        """The active key `raw` names, or None. Revocations take effect within `cache_seconds`; a key made
        elsewhere (the CLI, another worker) is found on its first use, at most a second after the last
        read. `asked_at`: when the caller was asked (`time.monotonic()`), if it has already waited."""
        asked_at = time.monotonic() if asked_at is None else asked_at
        answered, key = self.authenticate_cached(raw)
        if answered:
            return key
        if self._loaded_at < asked_at:  # nobody has read the keys since: wait for the limit, then read
            time.sleep(self.wait_before_reading())
            self._reload(since=asked_at)
        return self._cache.get(hash_key(raw))

    def authenticate_cached(self, raw: str) -> tuple[bool, ApiKey | None]:
        """`authenticate`'s answer when the cache can give it without the database: (True, key) on a
        fresh hit; else (False, None). An async caller answers at once, and reads only when it must."""
        if not raw.startswith(_PREFIXES):
            return True, None  # not shaped like any key this shop makes (a link token, a typo): no read
        key = self._cache.get(hash_key(raw))
        if key is not None and time.monotonic() - self._loaded_at <= self._cache_seconds:
            return True, key
        return False, None

    def wait_before_reading(self) -> float:
        """How long a miss waits before the keys are read again: the keys are read at most once a second,
        so unknown keys cannot hammer the database (and a guesser is slowed down)."""
        return max(0.0, MISS_READS_EVERY - (time.monotonic() - self._loaded_at))

    def allowed_origins(self) -> set[str]:
        """Every origin any active write key allows: what a CORS preflight may be told."""
        now = time.monotonic()
        if now - self._loaded_at > self._cache_seconds:
            self._reload(since=now)
        return {o for key in self._cache.values() if key.kind == "write" for o in key.allowed_origins}

    def secret(self, name: str, new: Callable[[], bytes]) -> bytes:
        """The shop's own secret `name` (the key that signs links, say): made with `new` the first time
        it is asked for, kept in the database, and the same for every worker after that."""
        with self._engine.connect() as conn:
            found = conn.scalar(select(shop_secrets.c.value).where(shop_secrets.c.name == name))
        if found is not None:
            return bytes(found)
        with write_transaction(self._engine) as conn:
            conn.execute(insert_ignoring_duplicates(conn, shop_secrets), {"name": name, "value": new()})
            value = conn.scalar(select(shop_secrets.c.value).where(shop_secrets.c.name == name))
        assert value is not None
        return bytes(value)

    def _reload(self, *, since: float) -> None:
        """Read the active keys, unless a read that began after `since` has already done so."""
        with self._lock:
            if self._loaded_at >= since:
                return
            began = time.monotonic()
            with self._engine.connect() as conn:
                rows = conn.execute(select(api_keys).where(api_keys.c.revoked_at.is_(None))).all()
            self._cache = {r.key_hash: _to_key(r) for r in rows}
            self._loaded_at = began


def _to_key(row: object) -> ApiKey:
    r = row._mapping  # type: ignore[attr-defined]
    return ApiKey(
        id=int(r["id"]),
        kind=r["kind"],
        prefix=r["prefix"],
        name=r["name"],
        allowed_origins=tuple(orjson.loads(r["allowed_origins"])),
        created_at=r["created_at"],
        revoked_at=r["revoked_at"],
    )

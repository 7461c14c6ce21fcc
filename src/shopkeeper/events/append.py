"""The one write path of events: a message from the API and an order from an import are stored alike.

`new_event` works out a message's rows and binds them for the driver, before the caller takes the write
lock. `append_messages` then stores, inside the caller's write transaction, each message not stored yet
(its messageId decides): it resolves the message's person (the stitching rules are
`shopkeeper.store.identity`'s; an `alias` sent with a write key is not trusted), appends the event and
the interactions it implies, and marks the person's profile dirty. The caller commits, and only then
acknowledges: an acknowledged message survives a crash of the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypedDict

import orjson
from sqlalchemy import Connection, Dialect

from shopkeeper.store.event_log import APPEND_EVENTS, SqlEventLog, kept_revenue
from shopkeeper.store.identity import IdentityKind, IdentityResolver
from shopkeeper.store.interactions import APPEND_INTERACTIONS, Found, append_interactions, interactions_of
from shopkeeper.store.traits import mark_dirty


class NewEvent(TypedDict):
    """One message, ready to append: what identity resolution reads, and its rows bound for the driver."""

    message_id: str
    type: str
    user_id: str | None
    anonymous_id: str | None
    previous_id: str | None
    trusted: bool  # the shop's own code; a write key's message may not merge known people
    email: str | None  # an identify's email, a lookup id
    timestamp: datetime
    parsed: dict[str, Any]  # the message as stored
    bound: tuple[Any, ...]  # the events row, all but the person (`EVENT_COLUMNS` order)
    interactions: list[Found]  # its interactions rows, all but the person, bound


class Appended(NamedTuple):
    """What `append_messages` did: each message's person (None: stored already), and the people made."""

    persons: list[int | None]
    people_created: int


def new_event(
    dialect: Dialect,
    payload: dict[str, Any],
    *,
    event: str | None,
    timestamp: datetime,
    received_at: datetime,
    key_id: int | None = None,
    email: str | None = None,
) -> NewEvent:
    """A message's rows, from its payload as it will be stored (with its `messageId`, the spec's ids as
    strings, and our fields). `event`: a track's event, a page's or screen's name. `key_id`: the write
    key that sent it (None: the shop's own code, trusted)."""
    message_id = payload["messageId"]
    kind = payload["type"]
    user_id, anonymous_id = payload.get("userId"), payload.get("anonymousId")
    encoded = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z).decode()
    revenue = kept_revenue(kind, event, payload)
    row = (message_id, kind, event, user_id, anonymous_id, timestamp, received_at, key_id, revenue, encoded)
    # Only their time needs binding (a float quantity is left as it is; tests/store/test_bulk.py checks
    # both), and they share it: bound once.
    at = APPEND_INTERACTIONS.bind_value(dialect, "at", timestamp)
    found = interactions_of(payload, at) if kind == "track" else []
    return {
        "message_id": message_id,
        "type": kind,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "previous_id": payload.get("previousId"),
        "trusted": key_id is None,
        "email": email,
        "timestamp": timestamp,
        "parsed": payload,
        "bound": APPEND_EVENTS.bind(dialect, row),
        "interactions": found,
    }


def append_messages(conn: Connection, messages: Sequence[NewEvent], now: datetime) -> Appended:
    """Store the messages not stored yet, in the caller's write transaction. The messages are only read,
    so that the caller can write them again after a failed transaction."""
    seen = SqlEventLog.existing_message_ids(conn, (m["message_id"] for m in messages))
    fresh: list[NewEvent] = []
    is_fresh: list[bool] = []
    for message in messages:
        new = message["message_id"] not in seen
        if new:
            seen.add(message["message_id"])
            fresh.append(message)
        is_fresh.append(new)
    if not fresh:
        return Appended([None] * len(messages), 0)
    resolver = IdentityResolver(conn, now)
    resolver.preload(_ids_of(fresh))
    resolved: list[int] = []
    for m in fresh:
        if m["type"] == "alias":
            assert m["previous_id"] is not None and m["user_id"] is not None
            person = resolver.alias(m["previous_id"], m["user_id"], m["message_id"], trusted=m["trusted"])
        else:
            person = resolver.resolve(m["user_id"], m["anonymous_id"], m["message_id"])
        if m["email"]:
            resolver.link_email(m["email"], person, m["message_id"])
        resolved.append(person)
    resolver.flush()
    persons = [resolver.final_person(person) for person in resolved]
    SqlEventLog.append_bound(conn, ((*m["bound"], person) for m, person in zip(fresh, persons, strict=True)))
    append_interactions(
        conn,
        ((*found, person) for m, person in zip(fresh, persons, strict=True) for found in m["interactions"]),
        bound=True,
    )
    everyone = set(persons)
    mark_dirty(conn, everyone)
    each = iter(persons)
    return Appended([next(each) if new else None for new in is_fresh], len(everyone & resolver.created))


def _ids_of(messages: list[NewEvent]) -> set[tuple[IdentityKind, str]]:
    """Every id the messages name, for the resolver to read in one query."""
    keys: set[tuple[IdentityKind, str]] = set()
    for m in messages:
        if m["user_id"]:
            keys.add(("user_id", m["user_id"]))
        if m["anonymous_id"]:
            keys.add(("anonymous_id", m["anonymous_id"]))
        if m["previous_id"]:
            keys.add(("user_id", m["previous_id"]))
            keys.add(("anonymous_id", m["previous_id"]))
        if m["email"]:
            keys.add(("email", m["email"]))
    return keys

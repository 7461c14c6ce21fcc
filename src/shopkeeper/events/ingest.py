"""Ingestion: validate Segment messages, correct clock skew, stitch identities, append to the log.

One call is one transaction: either every message of a batch is stored (or recognised as a resend), or
none is and the caller gets a 4xx naming the field. The call returns only after the commit, so an
acknowledged message survives a crash of the process.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from shopkeeper.errors import InvalidInput, PayloadTooLarge
from shopkeeper.events.spec import Message, MessageType, parse_message
from shopkeeper.privacy.consent import Purposes, record_from_events
from shopkeeper.store import Store
from shopkeeper.store.bulk import BulkInsert
from shopkeeper.store.deadline import unavailable_from
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.event_log import APPEND_EVENTS, IngestResult
from shopkeeper.store.identity import IdentityKind, IdentityResolver
from shopkeeper.store.interactions import interaction_rows
from shopkeeper.store.schema import interactions, profile_dirty

_STAMPS = ("timestamp", "sentAt")
_INTERACTION_COLUMNS = ("item_id", "kind", "at", "quantity", "message_id", "person_id")
_INSERT_INTERACTIONS = BulkInsert(interactions, _INTERACTION_COLUMNS)
# traits.mark_dirty's rows, written the lean way: a batch marks about one person per message.
_MARK_DIRTY = BulkInsert(profile_dirty, ("person_id",), skip_duplicates=True)


class Ingestor:
    """Takes raw messages in, stores them once each. Thread-safe; one per process is enough."""

    def __init__(
        self, store: Store, *, max_message_bytes: int = 32 * 1024, purposes: Purposes | None = None
    ) -> None:
        self._store = store
        self._purposes = purposes or Purposes()  # for consent carried in `context.consent`
        self._max_message_bytes = max_message_bytes
        # One writer per process: calls that arrive while a write is under way are committed together
        # by the next writer (group commit), so a busy server pays one commit for many calls.
        self._lock = threading.Lock()
        self._pending: list[_Job] = []
        self._pending_lock = threading.Lock()

    def ingest(
        self,
        raw_messages: Sequence[Any],
        *,
        type_: MessageType | None = None,
        where: str = "batch",
        context: dict[str, Any] | None = None,
        integrations: dict[str, Any] | None = None,
        sent_at: datetime | None = None,
        key_id: int | None = None,
        received_at: datetime | None = None,
    ) -> IngestResult:
        """Validate and store messages. `where` names them in errors (`batch[3].userId`)."""
        received_at = received_at or datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        for index, raw in enumerate(raw_messages):
            at = f"{where}[{index}]." if len(raw_messages) > 1 or where == "batch" else ""
            self._check_size(raw, at)
            message = parse_message(raw, where=at, type_=type_)
            rows.append(self._to_row(raw, message, context, integrations, sent_at, received_at, key_id))
        return self._store_rows(rows, received_at)

    def _check_size(self, raw: Any, at: str) -> None:
        """The spec's per-message limit, on the message as sent (compact JSON), not as we store it."""
        try:
            size = len(orjson.dumps(raw, option=orjson.OPT_NON_STR_KEYS)) if isinstance(raw, dict) else 0
        except orjson.JSONEncodeError:  # nested past orjson's limit (over HTTP, parse_json refuses it first)
            raise InvalidInput("the message nests too deep", field=at.rstrip(".") or "body") from None
        if size > self._max_message_bytes:
            raise PayloadTooLarge(
                f"a message may be at most {self._max_message_bytes // 1024} KB; "
                f"this one is {size / 1024:.1f} KB",
                field=at.rstrip(".") or "body",
            )

    def _to_row(
        self,
        raw: dict[str, Any],
        message: Message,
        context: dict[str, Any] | None,
        integrations: dict[str, Any] | None,
        sent_at: datetime | None,
        received_at: datetime,
        key_id: int | None,
    ) -> dict[str, Any]:
        # The message as sent (parsed JSON, so plain values), with the spec's ids normalised to strings.
        payload = dict(raw)
        payload["type"] = message.type
        for name in ("userId", "anonymousId", "groupId", "previousId"):
            if name in payload:
                payload[name] = getattr(message, name)
        if context:
            payload["context"] = {**context, **(message.context or {})}
        if integrations:
            payload["integrations"] = {**integrations, **(message.integrations or {})}
        message_id = message.messageId or str(uuid.uuid4())
        timestamp = correct_skew(message.timestamp, message.sentAt or sent_at, received_at)
        payload["messageId"] = message_id
        payload["originalTimestamp"] = message.timestamp
        payload["timestamp"] = timestamp
        payload["sentAt"] = message.sentAt or sent_at
        payload["receivedAt"] = received_at
        encoded = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z)
        email = _email_of(message)
        # The rows' values are worked out and bound here, outside the write lock; only the person is
        # added under it.
        dialect = self._store.engine.dialect
        found = interaction_rows(0, payload, timestamp) if message.type == "track" else []
        event = message.event if message.type == "track" else message.name
        return {
            # what identity resolution and the consent hook read
            "message_id": message_id,
            "type": message.type,
            "user_id": message.userId,
            "anonymous_id": message.anonymousId,
            "previous_id": message.previousId,
            "trusted": key_id
            is None,  # the shop's own code; a write key's message may not merge known people
            "email": email,
            "timestamp": timestamp,
            "parsed": payload,
            # the events row, bound for the driver but for the person; and the interactions it implies
            "bound": APPEND_EVENTS.bind(
                dialect,
                (
                    message_id,
                    message.type,
                    event,
                    message.userId,
                    message.anonymousId,
                    timestamp,
                    received_at,
                    key_id,
                    encoded.decode(),
                ),
            ),
            "interactions": [
                _INSERT_INTERACTIONS.bind(dialect, [r[name] for name in _INTERACTION_COLUMNS[:-1]])
                for r in found
            ],
        }

    def _store_rows(self, rows: list[dict[str, Any]], now: datetime) -> IngestResult:
        if not rows:
            return IngestResult(received=0, stored=0, duplicates=0)
        job = _Job(rows, now)
        with self._pending_lock:
            self._pending.append(job)
        with self._lock:
            if not job.done:
                with self._pending_lock:
                    jobs, self._pending = self._pending, []
                self._write_together(jobs)
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _write_together(self, jobs: list[_Job]) -> None:
        """One transaction for every waiting call; if it fails, each call is written on its own, so
        one call's failure is never another's."""
        try:
            results = self._write(jobs)
        except Exception as exc:
            if len(jobs) == 1 or unavailable_from(exc) is not None:
                # The database is down, frozen or full: each call alone would wait and fail the same way.
                for job in jobs:
                    job.fail(exc)
                return
            for job in jobs:
                try:
                    job.finish(self._write([job])[0])
                except Exception as exc:
                    job.fail(exc)
            return
        for job, result in zip(jobs, results, strict=True):
            job.finish(result)

    def _write(self, jobs: list[_Job]) -> list[IngestResult]:
        now = max(job.now for job in jobs)
        with write_transaction(self._store.engine) as conn:
            seen = self._store.events.existing_message_ids(
                conn, (r["message_id"] for job in jobs for r in job.rows)
            )
            fresh: list[dict[str, Any]] = []  # read, never changed: a failed group is written again
            results = []
            for job in jobs:
                stored = 0
                for row in job.rows:
                    if row["message_id"] not in seen:
                        seen.add(row["message_id"])
                        fresh.append(row)
                        stored += 1
                results.append(
                    IngestResult(received=len(job.rows), stored=stored, duplicates=len(job.rows) - stored)
                )
            resolver = IdentityResolver(conn, now)
            resolver.preload(_ids_of(fresh))
            persons: list[int] = []
            for row in fresh:
                if row["type"] == "alias":
                    person = resolver.alias(
                        row["previous_id"], row["user_id"], row["message_id"], trusted=row["trusted"]
                    )
                else:
                    person = resolver.resolve(row["user_id"], row["anonymous_id"], row["message_id"])
                if row["email"]:
                    resolver.link_email(row["email"], person, row["message_id"])
                persons.append(person)
            resolver.flush()
            persons = [resolver.final_person(person) for person in persons]
            self._store.events.append_bound(
                conn, ((*row["bound"], person) for row, person in zip(fresh, persons, strict=True))
            )
            _INSERT_INTERACTIONS.execute(
                conn,
                (
                    (*found, person)
                    for row, person in zip(fresh, persons, strict=True)
                    for found in row["interactions"]
                ),
                bound=True,
            )
            _MARK_DIRTY.execute(conn, [(person,) for person in set(persons)])
            record_from_events(conn, self._purposes, _consents_carried(fresh, persons), actor="event")
        return results


def _consents_carried(
    rows: list[dict[str, Any]], persons: list[int]
) -> Iterator[tuple[int, str, datetime, Any]]:
    """(person, message id, time, consent) for the stored events that carry `context.consent`."""
    for row, person in zip(rows, persons, strict=True):
        context = row["parsed"].get("context")
        if isinstance(context, dict) and "consent" in context:
            yield person, row["message_id"], row["timestamp"], context["consent"]


class _Job:
    """One call's rows, waiting to be written, and what became of them."""

    __slots__ = ("done", "error", "now", "result", "rows")

    def __init__(self, rows: list[dict[str, Any]], now: datetime) -> None:
        self.rows = rows
        self.now = now
        self.done = False
        self.result: IngestResult | None = None
        self.error: BaseException | None = None

    def finish(self, result: IngestResult) -> None:
        self.result, self.done = result, True

    def fail(self, error: BaseException | None) -> None:
        self.error, self.done = error, True


def correct_skew(timestamp: datetime | None, sent_at: datetime | None, received_at: datetime) -> datetime:
    """Segment's rule: when the device said when it sent, trust our clock for the offset.

    `timestamp = receivedAt - (sentAt - originalTimestamp)`; with no sentAt the device's timestamp
    stands; with no timestamp at all, the time we received it.
    """
    if timestamp is None:
        return received_at
    if sent_at is None:
        return timestamp
    return received_at - (sent_at - timestamp)


def _ids_of(rows: list[dict[str, Any]]) -> set[tuple[IdentityKind, str]]:
    keys: set[tuple[IdentityKind, str]] = set()
    for row in rows:
        if row["user_id"]:
            keys.add(("user_id", row["user_id"]))
        if row["anonymous_id"]:
            keys.add(("anonymous_id", row["anonymous_id"]))
        if row["previous_id"]:
            keys.add(("user_id", row["previous_id"]))
            keys.add(("anonymous_id", row["previous_id"]))
        if row["email"]:
            keys.add(("email", row["email"]))
    return keys


def identify_traits(traits: dict[str, Any] | None, context: dict[str, Any] | None) -> dict[str, Any]:
    """An identify's traits: top-level ones over those in `context.traits` (where RudderStack puts them)."""
    nested = (context or {}).get("traits")
    merged = dict(nested) if isinstance(nested, dict) else {}
    merged.update(traits or {})
    return merged


def _email_of(message: Message) -> str | None:
    """The email an identify names in its traits, lower-cased, when it looks like one.

    RudderStack's SDKs put identify traits in `context.traits`, Segment's at the top level.
    """
    if message.type != "identify":
        return None
    traits = identify_traits(message.traits, message.context)
    email = traits.get("email")
    if not isinstance(email, str):
        return None
    email = email.strip().lower()
    if "@" not in email or len(email) > 255 or "\x00" in email:
        return None
    return email


def check_batch_shape(body: Any) -> list[Any]:
    """The `batch` array of a /v1/batch body."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    batch = body.get("batch")
    if not isinstance(batch, list):
        raise InvalidInput("batch must be an array of messages", field="batch")
    return batch

"""Ingestion: validate Segment messages, correct clock skew, and store them through the one write path
(`shopkeeper.events.append`: stitch identities, append to the log).

One call is one transaction: either every message of a batch is stored (or recognised as a resend), or
none is and the caller gets a 4xx naming the field. The call returns only after the commit, so an
acknowledged message survives a crash of the process.

Consent that events carry (`context.consent`) is recorded in the same transaction, by the `record_consent`
hook the Ingestor is given: privacy's `consent_recorder` in a shop (`Shop.from_settings` wires it), so that
intake needs nothing from the privacy layer above it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import orjson
from sqlalchemy import Connection

from shopkeeper.errors import InvalidInput, PayloadTooLarge
from shopkeeper.events.append import NewEvent, append_messages, new_event
from shopkeeper.events.spec import Message, MessageType, parse_message
from shopkeeper.store import Store
from shopkeeper.store.deadline import unavailable_from
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.event_log import IngestResult


class CarriedConsent(NamedTuple):
    """The consent a stored event carries in `context.consent`, as sent, with whose and which event it is."""

    person_id: int
    message_id: str
    at: datetime
    consent: Any


class ConsentRecorder(Protocol):
    """Records the consent that stored events carry, on the ingesting transaction's connection."""

    def __call__(self, conn: Connection, carried: Iterable[CarriedConsent], /) -> object: ...


class Ingestor:
    """Takes raw messages in, stores them once each. Thread-safe; one per process is enough.

    `record_consent` records the consent events carry (see the module docstring); it is required, so that
    no way of ingesting can leave it out.
    """

    def __init__(
        self, store: Store, *, record_consent: ConsentRecorder, max_message_bytes: int = 32 * 1024
    ) -> None:
        self._store = store
        self._record_consent = record_consent
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
        rows: list[NewEvent] = []
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
    ) -> NewEvent:
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
        # Worked out and bound here, outside the write lock; only the person is added under it.
        return new_event(
            self._store.engine.dialect,
            payload,
            event=message.event if message.type == "track" else message.name,
            timestamp=timestamp,
            received_at=received_at,
            key_id=key_id,
            email=_email_of(message),
        )

    def _store_rows(self, rows: list[NewEvent], now: datetime) -> IngestResult:
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
        rows = [row for job in jobs for row in job.rows]
        with write_transaction(self._store.engine) as conn:
            persons = append_messages(conn, rows, max(job.now for job in jobs)).persons
            self._record_consent(conn, _consents_carried(rows, persons))
        results = []
        each = iter(persons)
        for job in jobs:
            stored = sum(next(each) is not None for _ in job.rows)
            results.append(
                IngestResult(received=len(job.rows), stored=stored, duplicates=len(job.rows) - stored)
            )
        return results


def _consents_carried(rows: list[NewEvent], persons: list[int | None]) -> Iterator[CarriedConsent]:
    """The consent of the stored events that carry `context.consent`."""
    for row, person in zip(rows, persons, strict=True):
        context = row["parsed"].get("context")
        if person is not None and isinstance(context, dict) and "consent" in context:
            yield CarriedConsent(person, row["message_id"], row["timestamp"], context["consent"])


class _Job:
    """One call's rows, waiting to be written, and what became of them."""

    __slots__ = ("done", "error", "now", "result", "rows")

    def __init__(self, rows: list[NewEvent], now: datetime) -> None:
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

"""The durable outbox (every moment, sent or not, with its reason), its delivery attempts, and the staff
inbox's tasks.

A worker claims due rows (`claim`): on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so that any number of
workers share the queue without taking one row twice; on SQLite under the store's write lock (one writer
at a time). A claimed row is `sending` with a lease: its `due_at` moves to the lease's end, and a worker
that dies mid-send leaves it to be claimed again once the lease ends. Its attempts say what happened.

The lease's end is also the worker's claim ticket (`held_until`): a worker changes a row it claimed only
while the row is still `sending` with that `due_at`, and recording an attempt's start renews the lease.
A worker that was slow past its lease, so that another worker claimed the row again, finds that out
right before it would send, and leaves the row to the other worker instead of sending it a second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.sql.dml import Update

from shopkeeper.store.schema import decisions, outbox, outbox_attempts, tasks
from shopkeeper.store.traits import insert_ignoring_duplicates

LIVE = ("pending", "held", "sending", "sent")  # what counts against a person's contact budget
WAITING = ("pending", "held")
TASK_OPEN = ("open", "claimed", "snoozed")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    person_id: int
    rule: str
    trigger: str
    channel: str
    status: str
    reason: str | None
    dedupe: str
    item_id: str | None
    variant_id: str | None
    wish_id: int | None
    priority: int
    transactional: bool
    context: dict[str, Any]
    template: str | None
    template_version: int | None
    subject: str | None
    body_text: str | None
    body_html: str | None
    message_id: str | None
    attempts: int
    created_at: datetime
    due_at: datetime
    sent_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    outbox_id: int
    person_id: int
    rule: str
    status: str
    assignee: str | None
    store: str | None
    due_at: datetime
    snoozed_until: datetime | None
    outcome: str | None
    note: str | None
    context: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    outbox_id: int
    at: datetime
    outcome: str
    detail: str | None


# Built once: the worker runs them for every message.
_START = (
    update(outbox)
    .where(
        outbox.c.id == bindparam("row"), outbox.c.status == "sending", outbox.c.due_at == bindparam("held")
    )
    .values(attempts=outbox.c.attempts + 1, updated_at=bindparam("now"), due_at=bindparam("until"))
)
_ATTEMPT = insert(outbox_attempts).values(
    outbox_id=bindparam("outbox_id"),
    at=bindparam("at"),
    outcome=bindparam("outcome"),
    detail=bindparam("detail"),
)


def _leased(query: Update, held_until: datetime | None) -> Update:
    """`query` limited to the row while it is `sending` under the lease that ends at `held_until`."""
    if held_until is None:
        return query
    return query.where(outbox.c.status == "sending", outbox.c.due_at == held_until)


def _exists(conn: Connection, outbox_id: int) -> bool:
    return conn.execute(select(outbox.c.id).where(outbox.c.id == outbox_id)).first() is not None


def _row(r: Any) -> OutboxRow:
    return OutboxRow(
        id=int(r.id),
        person_id=int(r.person_id),
        rule=r.rule,
        trigger=r.trigger,
        channel=r.channel,
        status=r.status,
        reason=r.reason,
        dedupe=r.dedupe,
        item_id=r.item_id,
        variant_id=r.variant_id,
        wish_id=None if r.wish_id is None else int(r.wish_id),
        priority=int(r.priority),
        transactional=bool(r.transactional),
        context=orjson.loads(r.context),
        template=r.template,
        template_version=r.template_version,
        subject=r.subject,
        body_text=r.body_text,
        body_html=r.body_html,
        message_id=r.message_id,
        attempts=int(r.attempts),
        created_at=r.created_at,
        due_at=r.due_at,
        sent_at=r.sent_at,
        updated_at=r.updated_at,
    )


def _task(r: Any) -> Task:
    return Task(
        id=int(r.id),
        outbox_id=int(r.outbox_id),
        person_id=int(r.person_id),
        rule=r.rule,
        status=r.status,
        assignee=r.assignee,
        store=r.store,
        due_at=r.due_at,
        snoozed_until=r.snoozed_until,
        outcome=r.outcome,
        note=r.note,
        context=orjson.loads(r.context),
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def outbox_row(values: dict[str, Any]) -> dict[str, Any]:
    """A moment's values as an outbox row: every column the caller left out at its default, the context
    as JSON, the dedupe key cut to the column's size."""
    return {
        "reason": None,
        "item_id": None,
        "variant_id": None,
        "wish_id": None,
        "template": None,
        "template_version": None,
        "subject": None,
        "body_text": None,
        "body_html": None,
        "message_id": None,
        "sent_at": None,
        "attempts": 0,
        **values,
        "context": orjson.dumps(values.get("context", {}), option=orjson.OPT_NON_STR_KEYS).decode(),
        "dedupe": values["dedupe"][:255],
        "updated_at": values["created_at"],
    }


class SqlOutbox:
    """The outbox, its attempts and the tasks. Writes run in the caller's write transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ---- the outbox --------------------------------------------------------------------------------

    @staticmethod
    def add(conn: Connection, values: dict[str, Any]) -> int | None:
        """Add a moment. None when one with the same `dedupe` is there already (it is not made twice)."""
        row = outbox_row(values)
        done = conn.execute(insert_ignoring_duplicates(conn, outbox).values(row))
        if not done.rowcount:
            return None
        found = conn.scalar(select(outbox.c.id).where(outbox.c.dedupe == row["dedupe"]))
        assert found is not None
        return int(found)

    @staticmethod
    def exists(conn: Connection, dedupe: str) -> bool:
        return conn.execute(select(outbox.c.id).where(outbox.c.dedupe == dedupe[:255])).first() is not None

    @staticmethod
    def get(conn: Connection, outbox_id: int) -> OutboxRow | None:
        row = conn.execute(select(outbox).where(outbox.c.id == outbox_id)).first()
        return None if row is None else _row(row)

    @staticmethod
    def claim(conn: Connection, now: datetime, lease: timedelta, limit: int) -> list[OutboxRow]:
        """Take up to `limit` due rows (pending or held and due, or `sending` whose lease ended), mark them
        `sending` until `now + lease`, and return them, highest priority first. Run in a write transaction."""
        query = (
            select(outbox)
            .where(outbox.c.status.in_(("pending", "held", "sending")), outbox.c.due_at <= now)
            .order_by(outbox.c.priority.desc(), outbox.c.due_at, outbox.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = [_row(r) for r in conn.execute(query)]
        if rows:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([r.id for r in rows]))
                .values(status="sending", due_at=now + lease, updated_at=now)
            )
        return [replace(r, status="sending", due_at=now + lease, updated_at=now) for r in rows]

    @staticmethod
    def next_due(conn: Connection) -> datetime | None:
        """When the earliest waiting row falls due."""
        found: datetime | None = conn.scalar(
            select(func.min(outbox.c.due_at)).where(outbox.c.status.in_(("pending", "held", "sending")))
        )
        return found

    @staticmethod
    def set(
        conn: Connection, outbox_id: int, now: datetime, *, held_until: datetime | None = None, **values: Any
    ) -> bool:
        """Change a row (its status, reason, due time, content...). False if the row is gone (erased), or,
        with `held_until`, when it is no longer under that lease (another worker claimed it since)."""
        if "context" in values:
            values["context"] = orjson.dumps(values["context"], option=orjson.OPT_NON_STR_KEYS).decode()
        query = _leased(update(outbox).where(outbox.c.id == outbox_id), held_until)
        done = conn.execute(query.values(updated_at=now, **values))
        return bool(done.rowcount)

    @staticmethod
    def attempt(
        conn: Connection, outbox_id: int, now: datetime, outcome: str, detail: str | None = None
    ) -> None:
        conn.execute(
            insert(outbox_attempts).values(
                outbox_id=outbox_id, at=now, outcome=outcome, detail=None if detail is None else detail[:1000]
            )
        )
        if outcome == "started":
            conn.execute(
                update(outbox).where(outbox.c.id == outbox_id).values(attempts=outbox.c.attempts + 1)
            )

    @staticmethod
    def start(conn: Connection, outbox_id: int, now: datetime, held_until: datetime, until: datetime) -> bool:
        """Record that an attempt starts (right before the message leaves), and renew the lease to `until`.
        False, and nothing recorded, if the row is gone (erased) or no longer under the lease that ends at
        `held_until` (another worker claimed it since): then this worker must not send it."""
        counted = conn.execute(
            _START, {"row": outbox_id, "now": now, "held": held_until, "until": until}
        ).rowcount
        if counted:
            conn.execute(_ATTEMPT, {"outbox_id": outbox_id, "at": now, "outcome": "started", "detail": None})
        return bool(counted)

    @staticmethod
    def finish(
        conn: Connection,
        outbox_id: int,
        now: datetime,
        outcome: str,
        detail: str | None,
        values: dict[str, Any],
        *,
        held_until: datetime | None = None,
    ) -> bool:
        """Record an attempt's outcome and the row's new state. False if the row is gone (erased). With
        `held_until`, the state changes only while the row is under that lease; when another worker has
        claimed it since, the outcome is still recorded, and that worker's attempt decides the state."""
        query = _leased(update(outbox).where(outbox.c.id == outbox_id), held_until)
        changed = bool(conn.execute(query.values(updated_at=now, **values)).rowcount)
        if changed or (held_until is not None and _exists(conn, outbox_id)):
            detail = None if detail is None else detail[:1000]
            conn.execute(_ATTEMPT, {"outbox_id": outbox_id, "at": now, "outcome": outcome, "detail": detail})
        return changed

    @staticmethod
    def attempts(conn: Connection, outbox_ids: Sequence[int]) -> list[Attempt]:
        rows = conn.execute(
            select(outbox_attempts)
            .where(outbox_attempts.c.outbox_id.in_(list(outbox_ids)))
            .order_by(outbox_attempts.c.id)
        )
        return [Attempt(int(r.outbox_id), r.at, r.outcome, r.detail) for r in rows]

    @staticmethod
    def contacts(
        conn: Connection,
        person_id: int,
        since: datetime,
        *,
        channel: str | None = None,
        excluding: int | None = None,
    ) -> int:
        """The person's live, non-transactional messages made since `since` (on one channel, if named)."""
        query = select(func.count()).where(
            outbox.c.person_id == person_id,
            outbox.c.status.in_(LIVE),
            outbox.c.transactional == 0,
            outbox.c.created_at >= since,
        )
        if channel is not None:
            query = query.where(outbox.c.channel == channel)
        if excluding is not None:
            query = query.where(outbox.c.id != excluding)
        return int(conn.scalar(query) or 0)

    @staticmethod
    def last_contact(conn: Connection, person_id: int) -> OutboxRow | None:
        row = conn.execute(
            select(outbox)
            .where(outbox.c.person_id == person_id, outbox.c.status == "sent")
            .order_by(outbox.c.sent_at.desc(), outbox.c.id.desc())
            .limit(1)
        ).first()
        return None if row is None else _row(row)

    def messages(
        self,
        *,
        person_ids: Sequence[int] | None = None,
        status: str | None = None,
        rule: str | None = None,
        limit: int = 100,
        conn: Connection | None = None,
    ) -> list[OutboxRow]:
        """Rows, newest first, by person, status or rule."""
        query = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
        if person_ids is not None:
            query = query.where(outbox.c.person_id.in_(list(person_ids)))
        if status is not None:
            query = query.where(outbox.c.status == status)
        if rule is not None:
            query = query.where(outbox.c.rule == rule)
        if conn is not None:
            return [_row(r) for r in conn.execute(query)]
        with self._engine.connect() as own:
            return [_row(r) for r in own.execute(query)]

    def counts(self, since: datetime | None = None) -> dict[tuple[str, str, str], int]:
        """How many rows per (rule, status, reason), made since `since`."""
        query = select(outbox.c.rule, outbox.c.status, outbox.c.reason, func.count()).group_by(
            outbox.c.rule, outbox.c.status, outbox.c.reason
        )
        if since is not None:
            query = query.where(outbox.c.created_at >= since)
        with self._engine.connect() as conn:
            return {(r, s, why or ""): int(n) for r, s, why, n in conn.execute(query)}

    # ---- tasks -------------------------------------------------------------------------------------

    @staticmethod
    def add_task(conn: Connection, values: dict[str, Any]) -> int | None:
        """Make the task of a staff moment; None if it has one already."""
        row = {
            "assignee": None,
            "store": None,
            "snoozed_until": None,
            "outcome": None,
            "note": None,
            "status": "open",
            **values,
            "context": orjson.dumps(values["context"], option=orjson.OPT_NON_STR_KEYS).decode(),
            "updated_at": values["created_at"],
        }
        done = conn.execute(insert_ignoring_duplicates(conn, tasks).values(row))
        if not done.rowcount:
            return None
        found = conn.scalar(select(tasks.c.id).where(tasks.c.outbox_id == row["outbox_id"]))
        assert found is not None
        return int(found)

    @staticmethod
    def task(conn: Connection, task_id: int) -> Task | None:
        row = conn.execute(select(tasks).where(tasks.c.id == task_id)).first()
        return None if row is None else _task(row)

    @staticmethod
    def set_task(conn: Connection, task_id: int, now: datetime, **values: Any) -> None:
        conn.execute(update(tasks).where(tasks.c.id == task_id).values(updated_at=now, **values))

    def tasks(
        self,
        *,
        person_ids: Sequence[int] | None = None,
        status: Sequence[str] | None = None,
        assignee: str | None = None,
        store: str | None = None,
        due_before: datetime | None = None,
        limit: int = 100,
        conn: Connection | None = None,
    ) -> list[Task]:
        """Tasks by person, status, staff member, store or due date; soonest due first."""
        query = select(tasks).order_by(tasks.c.due_at, tasks.c.id).limit(limit)
        if person_ids is not None:
            query = query.where(tasks.c.person_id.in_(list(person_ids)))
        if status:
            query = query.where(tasks.c.status.in_(list(status)))
        if assignee is not None:
            query = query.where(tasks.c.assignee == assignee)
        if store is not None:
            query = query.where(tasks.c.store == store)
        if due_before is not None:
            query = query.where(tasks.c.due_at <= due_before)
        if conn is not None:
            return [_task(r) for r in conn.execute(query)]
        with self._engine.connect() as own:
            return [_task(r) for r in own.execute(query)]

    @staticmethod
    def wake_snoozed(conn: Connection, now: datetime) -> int:
        """Snoozed tasks whose time has come are open again."""
        return conn.execute(
            update(tasks)
            .where(tasks.c.status == "snoozed", tasks.c.snoozed_until <= now)
            .values(status="open", updated_at=now)
        ).rowcount

    # ---- a person's rights ---------------------------------------------------------------------------

    @staticmethod
    def erase(conn: Connection, person_ids: Sequence[int]) -> dict[str, int]:
        """Delete these people's messages (pending ones are so cancelled), attempts and tasks."""
        everyone = list(person_ids)
        ids = list(conn.scalars(select(outbox.c.id).where(outbox.c.person_id.in_(everyone))))
        attempts = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            attempts += conn.execute(
                delete(outbox_attempts).where(outbox_attempts.c.outbox_id.in_(chunk))
            ).rowcount
        return {
            "messages": conn.execute(delete(outbox).where(outbox.c.person_id.in_(everyone))).rowcount,
            "message_attempts": attempts,
            "tasks": conn.execute(delete(tasks).where(tasks.c.person_id.in_(everyone))).rowcount,
        }

    @staticmethod
    def pending_of(conn: Connection, person_ids: Sequence[int]) -> int:
        return int(
            conn.scalar(
                select(func.count()).where(
                    outbox.c.person_id.in_(list(person_ids)),
                    or_(outbox.c.status.in_(WAITING), outbox.c.status == "sending"),
                )
            )
            or 0
        )


def log_exposures(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Store moments as exposures in the decision log, inside the caller's write transaction: a moment
    made for the holdout is logged with `personalized` 0 and never sent, so that lift counts it."""
    if rows:
        conn.execute(insert(decisions), list(rows))

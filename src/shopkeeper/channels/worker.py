"""The outbox worker: it takes due moments, checks them again, and delivers them, each attempt recorded.

For each moment it claims (see `store.outbox`): respect and the trigger are checked again (`recheck`); a
moment that no longer holds is suppressed with its reason, and one due in quiet hours is held. Then:
- `staff`: the task is made, with its context, and the moment is `sent` (to the inbox);
- `email`: rendered once through the guarded content layer and kept with the moment, so that a retry
  sends the same message with the same `Message-ID`. The attempt is committed as `started` right before
  SMTP's DATA; the outcome after the server's reply. A 4xx or a broken connection retries with
  exponential backoff, a 5xx fails the message.
- `webhook`: a signed JSON POST (Standard Webhooks), retried alike; one that fails for good is the
  dead-letter list (`failed`), and `replay` queues it again.

A worker killed between the server's acceptance and the commit of `sent` sends that message again when
its lease ends: the one duplicate no outbox can rule out. It carries the same `Message-ID`, and its
attempts show the `started` without an outcome, so it can be told apart.

A worker that is merely slow (a batch that takes longer than the lease) is not dead: another worker may
claim its rows again once the lease ends. So the worker changes a row only while it still holds the
lease it took (`held_until` in `store.outbox`), and the `started` record right before DATA renews that
lease: a row that another worker has taken meanwhile is left to that one, not sent a second time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, Self

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from shopkeeper.channels.delivery import Delivery
from shopkeeper.channels.staff import Picks, task_context
from shopkeeper.errors import ShopkeeperError, StoreError
from shopkeeper.moments.engine import MomentEngine
from shopkeeper.moments.respect import Person, Verdict
from shopkeeper.store import Store
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.outbox import OutboxRow

log = logging.getLogger("shopkeeper.worker")
MAX_BACKOFF = timedelta(hours=6)
ERROR_PAUSE = 1.0


class Rendered(Protocol):
    subject: str | None
    html: str | None
    text: str | None
    version: int | None
    aborted: str | None


class EmailSending(Protocol):
    def send(self, row: OutboxRow, to: str, before_data: Callable[[], None]) -> Delivery: ...

    def close(self) -> None: ...


class WebhookSending(Protocol):
    def send(self, row: OutboxRow, payload: dict[str, Any], before_send: Callable[[], None]) -> Delivery: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class WorkerConfig:
    lease: timedelta
    retry: timedelta
    max_attempts: int
    batch: int = 50


@dataclass
class Delivered:
    """What one pass of the worker did, counted by outcome."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    suppressed: int = 0
    held: int = 0

    @property
    def busy(self) -> bool:
        return self.sent + self.retried + self.failed + self.suppressed + self.held > 0


class OutboxWorker:
    """Delivers due moments (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        engine: MomentEngine,
        config: WorkerConfig,
        *,
        render: Callable[[OutboxRow, str], Rendered],
        person_ref: Callable[[int], str | None],
        email: EmailSending | None = None,
        webhook: WebhookSending | None = None,
        picks: Picks | None = None,
        ledger: Engine | None = None,
    ) -> None:
        self._store = store
        self._engine = engine
        self._config = config
        self._render = render
        self._person_ref = person_ref
        self._email = email
        self._webhook = webhook
        self._picks = picks
        self._leases: dict[int, datetime] = {}  # row id -> the end of this worker's lease on it
        # Where the worker writes what became of each moment (claims, attempts, outcomes, tasks): the
        # store's own engine, or one whose SQLite commits skip the fsync (see `Shop.worker`).
        self._ledger = ledger or store.engine

    def close(self) -> None:
        """Closes the channels' connections (the SMTP connection kept between messages). A later
        `deliver` opens them again."""
        for channel in (self._email, self._webhook):
            if channel is not None:
                channel.close()
        if self._ledger is not self._store.engine:
            self._ledger.dispose()  # its pooled connections; a later `deliver` opens new ones

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def deliver(self, now: datetime | None = None) -> Delivered:
        """Take up to a batch of due moments and deliver each. They are checked again as of `now` when it
        is given (a test's clock), else as of the moment they were taken."""
        given, now = now, now or datetime.now(UTC)
        with self._store.engine.connect() as conn:  # most passes find nothing due: a read, no write lock
            due = self._store.outbox.next_due(conn)
        if due is None or due > now:
            return Delivered()
        with write_transaction(self._ledger) as conn:
            claimed = self._store.outbox.claim(conn, now, self._config.lease, self._config.batch)
        self._leases = {row.id: row.due_at for row in claimed}
        done = Delivered()
        if not claimed:
            return done
        now = given or datetime.now(UTC)
        self._engine.refresh({r.person_id for r in claimed})  # what they said or did since counts
        with self._store.engine.connect() as conn:
            checked = self._engine.recheck_many(conn, claimed, now)
        for row, verdict, person in checked:
            try:
                self._one(row, verdict, person, done)
            except (SQLAlchemyError, StoreError):
                raise  # the database: the row's lease ends and it is taken again
            except Exception as exc:  # a poison message must not stop the queue: fail it, say what, go on
                log.error("moment %s could not be delivered: %s", row.id, type(exc).__name__)
                self._finish(row, done, status="failed", reason=f"internal error: {type(exc).__name__}")
        return done

    def _one(self, row: OutboxRow, verdict: Verdict, person: Person | None, done: Delivered) -> None:
        if verdict.status == "suppressed" or person is None:
            self._finish(row, done, status="suppressed", reason=verdict.reason or "erased")
            return
        if verdict.status == "held":
            self._finish(row, done, status="held", reason=verdict.reason, due_at=verdict.due_at)
            return
        channel = verdict.channel
        if channel == "staff":
            self._task(row, person.ref, done, personalization=person.consent.get("personalization", False))
        elif channel == "email" and self._email is not None and person.email:
            self._send_email(row, person.ref, person.email, done)
        elif channel == "webhook" and self._webhook is not None:
            self._send_webhook(row, person.ref, done)
        else:
            self._finish(row, done, status="suppressed", reason="no_channel")

    def _task(self, row: OutboxRow, ref: str, done: Delivered, *, personalization: bool) -> None:
        now = datetime.now(UTC)
        with self._store.engine.connect() as conn:
            context = task_context(
                conn, self._store, row, ref, now, self._picks, personalization=personalization
            )
        with write_transaction(self._ledger) as conn:
            if not self._store.outbox.set(
                conn,
                row.id,
                now,
                held_until=self._held(row),
                status="sent",
                channel="staff",
                sent_at=now,
                reason=None,
                body_text=context["why_now"],
            ):
                return  # erased meanwhile, or another worker's now
            self._store.outbox.add_task(
                conn,
                {
                    "outbox_id": row.id,
                    "person_id": row.person_id,
                    "rule": row.rule,
                    "due_at": now,
                    "context": context,
                    "created_at": now,
                },
            )
        done.sent += 1

    def _send_email(self, row: OutboxRow, ref: str, to: str, done: Delivered) -> None:
        assert self._email is not None
        content: dict[str, Any] = {}
        if row.body_text is None:
            rendered = self._render(row, ref)
            if rendered.aborted is not None or rendered.text is None:
                self._finish(row, done, status="suppressed", reason="template_abort", detail=rendered.aborted)
                return
            row = _with_content(row, rendered)
            content = {  # kept with the attempt's start, so that a retry sends this very message
                "channel": "email",
                "subject": row.subject,
                "body_html": row.body_html,
                "body_text": row.body_text,
                "template_version": row.template_version,
            }
        try:
            delivery = self._email.send(row, to, self._started(row, content))
        except NotHeld:
            return
        self._outcome(row, delivery, done)

    def _send_webhook(self, row: OutboxRow, ref: str, done: Delivered) -> None:
        assert self._webhook is not None
        payload = {
            "type": f"moment.{row.trigger}",
            "id": row.message_id,
            "rule": row.rule,
            "person": ref,
            "item_id": row.item_id,
            "variant_id": row.variant_id,
            "context": row.context,
            "created_at": row.created_at.isoformat(),
        }
        try:
            delivery = self._webhook.send(row, payload, self._started(row))
        except NotHeld:
            return
        self._outcome(row, delivery, done)

    def _held(self, row: OutboxRow) -> datetime:
        """The end of the lease this worker holds on `row` (see the module docstring)."""
        return self._leases.get(row.id, row.due_at)

    def _started(self, row: OutboxRow, content: dict[str, Any] | None = None) -> Callable[[], None]:
        """The `before_data` of a send: the attempt is recorded, the lease renewed and the message's
        `content` kept with it (one commit), if the row is still this worker's; else NotHeld, and nothing
        goes."""

        def record() -> None:
            now = datetime.now(UTC)
            until = now + self._config.lease
            with write_transaction(self._ledger) as conn:
                if not self._store.outbox.start(conn, row.id, now, self._held(row), until):
                    raise NotHeld  # erased meanwhile, or another worker's now: it does not go from here
                if content:
                    self._store.outbox.set(conn, row.id, now, held_until=until, **content)
            self._leases[row.id] = until

        return record

    def _outcome(self, row: OutboxRow, delivery: Delivery, done: Delivered) -> None:
        now = datetime.now(UTC)
        attempts = row.attempts + 1  # this one, `started` above
        values: dict[str, Any]
        if delivery.outcome == "sent":
            values = {"status": "sent", "sent_at": now, "reason": None}
        elif delivery.outcome == "retry" and attempts < self._config.max_attempts:
            wait = min(self._config.retry * 2 ** max(0, attempts - 1), MAX_BACKOFF)
            values = {"status": "pending", "due_at": now + wait, "reason": f"retry: {delivery.detail}"[:500]}
        else:
            why = (
                delivery.detail
                if delivery.outcome == "failed"
                else f"gave up after {attempts} attempts: {delivery.detail}"
            )
            values = {"status": "failed", "reason": why[:500]}
        # What went, went, whoever holds the row now; a retry or a failure is this worker's to write only
        # while the row is still its own (a send that outlived the lease leaves it to the other worker).
        held = None if delivery.outcome == "sent" else self._held(row)
        with write_transaction(self._ledger) as conn:
            changed = self._store.outbox.finish(
                conn, row.id, now, delivery.outcome, delivery.detail, values, held_until=held
            )
        if not changed:
            return
        if values["status"] == "sent":
            done.sent += 1
        elif values["status"] == "pending":
            done.retried += 1
        else:
            done.failed += 1

    def _finish(
        self,
        row: OutboxRow,
        done: Delivered,
        *,
        status: str,
        reason: str | None,
        due_at: datetime | None = None,
        detail: str | None = None,
    ) -> None:
        now = datetime.now(UTC)
        values: dict[str, Any] = {"status": status, "reason": reason}
        values["due_at"] = due_at or now
        with write_transaction(self._ledger) as conn:
            if not self._store.outbox.set(conn, row.id, now, held_until=self._held(row), **values):
                return  # erased meanwhile, or another worker's now
            if detail:
                self._store.outbox.attempt(conn, row.id, now, "suppressed", detail)
        if status == "held":
            done.held += 1
        elif status == "failed":
            done.failed += 1
        else:
            done.suppressed += 1


class NotHeld(Exception):
    """The moment is not this worker's to send any more: its person was erased, or another worker
    claimed it again after this worker's lease ended."""


def _with_content(row: OutboxRow, rendered: Rendered) -> OutboxRow:
    return replace(
        row,
        subject=rendered.subject,
        body_html=rendered.html,
        body_text=rendered.text,
        template_version=rendered.version,
    )


def run(
    engine: MomentEngine,
    worker: OutboxWorker,
    *,
    once: bool = False,
    stop: Callable[[], bool] = lambda: False,
    idle: float = 0.2,
    daily_every: float = 3600.0,
) -> Delivered:
    """The loop of `shopkeeper worker` (and of the worker inside `serve`): make moments, deliver the due
    ones, and once an hour run the day's scans. `once`: until nothing is left to do now."""
    total = Delivered()
    last_daily = 0.0
    while not stop():
        try:
            if time.monotonic() - last_daily >= daily_every:
                engine.daily()
                last_daily = time.monotonic()
            stepped = engine.step()
            delivered = worker.deliver()
        except (SQLAlchemyError, ShopkeeperError) as exc:  # the database is down or busy: wait, go on
            if once:
                raise
            log.warning("moments: %s; trying again in %s s", type(exc).__name__, ERROR_PAUSE)
            time.sleep(ERROR_PAUSE)
            continue
        for name in ("sent", "retried", "failed", "suppressed", "held"):
            setattr(total, name, getattr(total, name) + getattr(delivered, name))
        if stepped.busy or delivered.busy:
            continue
        if once:
            break
        time.sleep(idle)
    return total

"""Moments as the shop manages them: rules, wishes, the outbox and the staff inbox, as JSON.

The API and the CLI call this; the engine (`moments.engine`) makes moments, the worker
(`channels.worker`) delivers them. A task's outcome is written to the event log as a `Staff Task
Completed` event, so that it counts in the profile and in lift.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shopkeeper.catalog.items import readable_title
from shopkeeper.errors import Conflict, InvalidInput, NotFound
from shopkeeper.moments import wishes as wish_ledger
from shopkeeper.moments.engine import MomentEngine
from shopkeeper.moments.respect import WORDS
from shopkeeper.moments.rules import check_name, read_toml
from shopkeeper.store import Store
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.moments import Variant, Wish
from shopkeeper.store.outbox import OutboxRow, Task

OUTCOMES = ("contacted", "purchased", "declined", "unreachable")
STATUSES = ("pending", "held", "sending", "sent", "failed", "suppressed", "cancelled")
TASK_EVENT = "Staff Task Completed"


def message_json(row: OutboxRow, person: str | None) -> dict[str, Any]:
    """A moment as `GET /v1/outbox` and the export show it."""
    return {
        "id": row.id,
        "person": person,
        "rule": row.rule,
        "trigger": row.trigger,
        "channel": row.channel or None,
        "status": row.status,
        "reason": row.reason,
        "reason_text": WORDS.get(row.reason.split(":")[0]) if row.reason else None,
        "created_at": row.created_at.isoformat(),
        "due_at": row.due_at.isoformat(),
        "sent_at": None if row.sent_at is None else row.sent_at.isoformat(),
        "item_id": row.item_id,
        "variant_id": row.variant_id,
        "wish_id": row.wish_id,
        "template": row.template,
        "template_version": row.template_version,
        "message_id": row.message_id,
        "attempts": row.attempts,
        "subject": row.subject,
        "text": row.body_text,
        "context": row.context,
    }


def task_json(task: Task, person: str | None) -> dict[str, Any]:
    return {
        "id": task.id,
        "person": person,
        "rule": task.rule,
        "channel": "staff",
        "status": task.status,
        "reason": None,
        "assignee": task.assignee,
        "store": task.store,
        "created_at": task.created_at.isoformat(),
        "due_at": task.due_at.isoformat(),
        "snoozed_until": None if task.snoozed_until is None else task.snoozed_until.isoformat(),
        "outcome": task.outcome,
        "note": task.note,
        "outbox_id": task.outbox_id,
        "item_id": (task.context.get("item") or {}).get("item_id"),
        "variant_id": (task.context.get("variant") or {}).get("variant_id"),
        "text": task.context.get("why_now"),
        "context": task.context,
    }


def _wish_json(
    wish: Wish, items: dict[str, dict[str, Any]], variants: dict[str, list[Variant]]
) -> dict[str, Any]:
    """A wish, with its item's title and its variant's attributes (for people to read)."""
    item = items.get(wish.item_id)
    variant = next((v for v in variants.get(wish.item_id, []) if v.variant_id == wish.variant_id), None)
    return {
        **wish.to_json(),
        "title": None if item is None else readable_title(item["title"]),
        "variant": None
        if variant is None
        else {"variant_id": variant.variant_id, "attributes": variant.attributes},
    }


class MomentService:
    """Rules, wishes, the outbox and tasks, for the API and the CLI."""

    def __init__(
        self,
        store: Store,
        engine: MomentEngine,
        *,
        find: Callable[[str], int],
        track: Callable[[dict[str, Any]], None],
    ) -> None:
        self._store = store
        self.engine = engine
        self._find = find  # a person's id from any of their ids; raises NotFound
        self._track = track  # stores one event, as the shop's own code

    # ---- people's ids ----------------------------------------------------------------------------------

    def person_ref(self, person_id: int) -> str | None:
        """The id a person is shown by: their first userId, else their first other id."""
        external = self._store.identities.external_ids([person_id])
        if not external:
            return None
        return next((v for kind, v in external if kind == "user_id"), external[0][1])

    def _refs(self, person_ids: list[int]) -> dict[int, str | None]:
        return {p: self.person_ref(p) for p in set(person_ids)}

    # ---- rules -------------------------------------------------------------------------------------------

    def rules(self) -> list[dict[str, Any]]:
        counts = self._store.outbox.counts(datetime.now(UTC) - timedelta(days=30))
        found = []
        for rule in self.engine.rules().values():
            mine = {(s, why): n for (r, s, why), n in counts.items() if r == rule.name}
            found.append(
                {
                    **rule.to_json(),
                    "last_30_days": {
                        "sent": sum(n for (s, _), n in mine.items() if s == "sent"),
                        "suppressed": {why: n for (s, why), n in mine.items() if s == "suppressed"},
                        "pending": sum(
                            n for (s, _), n in mine.items() if s in ("pending", "held", "sending")
                        ),
                        "failed": sum(n for (s, _), n in mine.items() if s == "failed"),
                    },
                }
            )
        return found

    def rule(self, name: str) -> dict[str, Any]:
        check_name(name)
        rule = self.engine.rule(name)
        found = next(r for r in self.rules() if r["name"] == name)
        recent = self._store.outbox.messages(rule=name, limit=20)
        refs = self._refs([r.person_id for r in recent])
        found["recent"] = [message_json(r, refs[r.person_id]) for r in recent]
        if rule.trigger == "ask":
            found["answered"] = self._answered(name)
        reach = self.engine.reach_of(rule)
        if reach is not None:
            found["reach"] = reach
        return found

    def put_rule(self, name: str, raw: Any, *, origin: str) -> dict[str, Any]:
        check_name(name)
        return self.engine.save_rule(name, raw, origin=origin).to_json()

    def load(self, path: Path) -> list[dict[str, Any]]:
        """Every rule of a TOML file, all checked before any is saved."""
        tables = read_toml(path)
        return [rule.to_json() for rule in self.engine.save_rules(tables, origin="file")]

    def _answered(self, rule: str) -> dict[str, Any]:
        """The share of people asked (sent) who have since told us."""
        asked = [r for r in self._store.outbox.messages(rule=rule, status="sent", limit=100_000)]
        told = 0
        for row in asked:
            question = row.context.get("question", "size")
            keys = ("size", "sizes") if question == "size" else (question,)
            records = self._store.traits.load(row.person_id)
            if any(
                r.key in keys
                and r.source == "stated"
                and (r.confirmed_at or r.updated_at) >= (row.sent_at or row.created_at)
                for r in records
            ):
                told += 1
        return {
            "asked": len(asked),
            "answered": told,
            "share": round(told / len(asked), 4) if asked else None,
        }

    # ---- wishes -------------------------------------------------------------------------------------------

    def wishes(self, ref: str) -> dict[str, Any]:
        person_id = self._find(ref)
        with self._store.engine.connect() as conn:
            everyone = self._store.identities.with_merged(person_id, conn)
            found = self._store.moments.wishes_of(conn, everyone)
            items = self._store.moments.item_facts(conn, [w.item_id for w in found])
            variants = self._store.moments.variants(conn, [w.item_id for w in found])
        return {"items": [_wish_json(w, items, variants) for w in found]}

    def add_wish(self, ref: str, raw: Any) -> dict[str, Any]:
        wish = wish_ledger.parse_wish(raw)
        person_id = self._find(ref)
        now = datetime.now(UTC)
        if wish.expires_at is not None and wish.expires_at <= now:
            raise InvalidInput("expires_at: must be in the future", field="expires_at")
        with write_transaction(self._store.engine) as conn:
            item = self._store.moments.item_facts(conn, [wish.item_id]).get(wish.item_id)
            if item is None:
                raise NotFound(f"no item with id {wish.item_id!r}", field="item_id")
            variants = self._store.moments.variants(conn, [wish.item_id]).get(wish.item_id, [])
            if wish.variant_id is not None and all(v.variant_id != wish.variant_id for v in variants):
                raise NotFound(
                    f"item {wish.item_id!r} has no variant {wish.variant_id!r}", field="variant_id"
                )
            attributes = wish_ledger.normalize(wish.attributes)
            if (
                wish.variant_id is None
                and "size" not in attributes
                and any("size" in wish_ledger.normalize(v.attributes) for v in variants)
            ):
                stated = {
                    r.key: r.value for r in self._store.traits.load(person_id, conn) if r.source == "stated"
                }
                size = wish_ledger.stated_size(stated, item["category"])
                if size is not None:
                    attributes["size"] = size
            variant_id = wish.variant_id or wish_ledger.one_variant(variants, attributes)
            recorded = wish_ledger.record(
                conn,
                self._store.moments,
                person_id,
                wish.item_id,
                variant_id=variant_id,
                attributes={} if variant_id else attributes,
                source=wish.source,
                at=now,
                note=wish.note,
                expires_at=wish.expires_at,
            )
        return recorded.to_json()

    def drop_wish(self, ref: str, wish_id: int) -> dict[str, Any]:
        person_id = self._find(ref)
        now = datetime.now(UTC)
        with write_transaction(self._store.engine) as conn:
            everyone = self._store.identities.with_merged(person_id, conn)
            found = next((w for w in self._store.moments.wishes_of(conn, everyone) if w.id == wish_id), None)
            if found is None:
                raise NotFound(f"this person has no wish {wish_id}", field="wish_id")
            self._store.moments.update_wish(conn, wish_id, {"status": "dropped", "updated_at": now})
        return {**found.to_json(), "status": "dropped"}

    # ---- the outbox and the inbox --------------------------------------------------------------------------

    def outbox(
        self, *, person: str | None = None, status: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"status is one of {', '.join(STATUSES)}", field="status")
        people = None
        if person is not None:
            people = self._store.identities.with_merged(self._find(person))
        rows = self._store.outbox.messages(person_ids=people, status=status, limit=limit)
        refs = self._refs([r.person_id for r in rows])
        return {"items": [message_json(r, refs[r.person_id]) for r in rows]}

    def replay(self, outbox_ids: list[int]) -> int:
        """Queue failed messages again (the dead-letter list's replay), with their attempts counted
        afresh. Returns how many were queued (a message that had not failed is left alone)."""
        now = datetime.now(UTC)
        queued = 0
        with write_transaction(self._store.engine) as conn:
            for outbox_id in outbox_ids:
                row = self._store.outbox.get(conn, outbox_id)
                if row is not None and row.status == "failed":
                    self._store.outbox.set(
                        conn, outbox_id, now, status="pending", due_at=now, reason=None, attempts=0
                    )
                    queued += 1
        return queued

    def tasks(
        self,
        *,
        person: str | None = None,
        status: str | None = None,
        assignee: str | None = None,
        store: str | None = None,
        due_before: datetime | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        statuses = {"open": ("open", "claimed", "snoozed")}.get(status or "open", (status,) if status else ())
        if status is not None and status not in ("open", "claimed", "snoozed", "done", "cancelled", "all"):
            raise InvalidInput(
                "status is one of open, claimed, snoozed, done, cancelled, all", field="status"
            )
        if status == "all":
            statuses = ()
        people = None if person is None else self._store.identities.with_merged(self._find(person))
        found = self._store.outbox.tasks(
            person_ids=people,
            status=statuses,
            assignee=assignee,
            store=store,
            due_before=due_before,
            limit=limit,
        )
        refs = self._refs([t.person_id for t in found])
        return {"items": [task_json(t, refs[t.person_id]) for t in found]}

    def task(self, task_id: int) -> dict[str, Any]:
        with self._store.engine.connect() as conn:
            found = self._store.outbox.task(conn, task_id)
        if found is None:
            raise NotFound(f"no task {task_id}", field="id")
        return task_json(found, self.person_ref(found.person_id))

    def claim(
        self, task_id: int, who: str, *, store: str | None = None, only_for: str | None = None
    ) -> dict[str, Any]:
        """`only_for` (here and in `snooze` and `done`): refuse (409) a task held by anyone else."""
        if not who.strip() or len(who) > 255:
            raise InvalidInput("assignee: who claims the task, 1 to 255 characters", field="assignee")
        return self._change(
            task_id,
            ("open", "snoozed"),
            only_for,
            status="claimed",
            assignee=who.strip(),
            **({"store": store} if store else {}),
        )

    def snooze(self, task_id: int, until: datetime, *, only_for: str | None = None) -> dict[str, Any]:
        if until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        if until <= datetime.now(UTC):
            raise InvalidInput("until: must be in the future", field="until")
        return self._change(
            task_id,
            ("open", "claimed", "snoozed"),
            only_for,
            status="snoozed",
            snoozed_until=until,
            due_at=until,
        )

    def done(
        self,
        task_id: int,
        outcome: str,
        note: str | None = None,
        *,
        by: str = "staff",
        only_for: str | None = None,
    ) -> dict[str, Any]:
        if outcome not in OUTCOMES:
            raise InvalidInput(f"outcome is one of {', '.join(OUTCOMES)}", field="outcome")
        if note is not None and len(note) > 2000:
            raise InvalidInput("note: at most 2000 characters", field="note")
        found = self._change(
            task_id, ("open", "claimed", "snoozed"), only_for, status="done", outcome=outcome, note=note
        )
        ref = found["person"]
        if ref is not None:
            self._track(
                {
                    "type": "track",
                    "userId": ref,
                    "event": TASK_EVENT,
                    "messageId": f"task-{task_id}-done",
                    "properties": {
                        "task_id": task_id,
                        "rule": found["rule"],
                        "outcome": outcome,
                        "by": by[:64],
                    },
                }
            )
        return found

    def _change(
        self, task_id: int, allowed: tuple[str, ...], only_for: str | None, **values: Any
    ) -> dict[str, Any]:
        """Change the task if its status is `allowed` and, with `only_for`, nobody else holds it: both
        checked in the write transaction that makes the change."""
        now = datetime.now(UTC)
        with write_transaction(self._store.engine) as conn:
            found = self._store.outbox.task(conn, task_id)
            if found is None:
                raise NotFound(f"no task {task_id}", field="id")
            if found.status not in allowed:
                raise Conflict(f"task {task_id} is {found.status}", field="id")
            if only_for is not None and found.assignee not in (None, only_for):
                raise Conflict(f"task {task_id} is held by someone else", field="id")
            self._store.outbox.set_task(conn, task_id, now, **values)
        return self.task(task_id)

"""The staff inbox as its page shows it: whose tasks come first, each task's context laid out with where
each fact came from and how old it is, and the snooze times a member of staff picks from.

Times are the shop's (`SHOPKEEPER_SHOP_TIMEZONE`): "tomorrow 9:00" is nine in the morning where the shop is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shopkeeper.catalog.items import readable_title
from shopkeeper.channels.staff import shown
from shopkeeper.errors import InvalidInput
from shopkeeper.privacy.accounts import Session

SNOOZES: tuple[tuple[str, str], ...] = (
    ("2h", "2 hours"),
    ("tomorrow", "Tomorrow 9:00"),
    ("monday", "Monday 9:00"),
)
MORNING = time(9, 0)
MAX_SNOOZE_DAYS = 365
TAG = {"stated": "told", "observed": "saw", "inferred": "guessed"}
HISTORY = (("tried", "Tried (carted)"), ("viewed", "Viewed"), ("bought", "Bought"))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def snooze_until(kind: str, day: str, timezone: str, now: datetime | None = None) -> datetime:
    """When a snooze ends: in 2 hours, tomorrow or next Monday at 9:00, or 9:00 on a date (YYYY-MM-DD),
    in the shop's time zone. InvalidInput for anything else, or a time not in the future."""
    now = now or datetime.now(UTC)
    local = now.astimezone(zone(timezone))
    if kind == "2h":
        return now + timedelta(hours=2)
    if kind == "tomorrow":
        target = local.date() + timedelta(days=1)
    elif kind == "monday":
        target = local.date() + timedelta(days=7 - local.weekday())
    elif kind == "date":
        try:
            target = date.fromisoformat(day.strip())
        except ValueError:
            raise InvalidInput(
                "pick the day to snooze until (a date like 2027-01-31)", field="date"
            ) from None
    else:
        raise InvalidInput("choose how long to snooze: 2 hours, tomorrow, Monday or a date", field="for")
    until = datetime.combine(target, MORNING, tzinfo=zone(timezone)).astimezone(UTC)
    if until <= now:
        raise InvalidInput("pick a day in the future to snooze until", field="date")
    if until > now + timedelta(days=MAX_SNOOZE_DAYS):
        raise InvalidInput(f"snooze for at most {MAX_SNOOZE_DAYS} days", field="date")
    return until


def when(value: str | None, timezone: str) -> str:
    """An ISO time as the shop's clock says it: "Mon 7 Dec, 09:00"."""
    if not value:
        return ""
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    local = at.astimezone(zone(timezone))
    return f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M}"


def _fact(raw: Mapping[str, Any], timezone: str) -> dict[str, Any]:
    return {
        "what": str(raw.get("key", "")).replace("_", " "),
        "value": shown(raw.get("value")),
        "provenance": raw.get("provenance", ""),
        "tag": TAG.get(raw.get("source", ""), ""),
        "at": raw.get("at"),
        "when": when(raw.get("at"), timezone).split(",")[0],
        "age_days": raw.get("age_days"),
    }


def task_view(task: Mapping[str, Any], session: Session, timezone: str) -> dict[str, Any]:
    """One task as its card shows it (see `GET /v1/tasks` for the JSON it is made from)."""
    context: Mapping[str, Any] = task.get("context") or {}
    name = context.get("name")
    item = context.get("item")
    variant = context.get("variant")
    me = session.user.email
    history = context.get("history") or {}
    persona = context.get("persona")
    return {
        "id": task["id"],
        "person": task["person"],
        "rule": task["rule"],
        "status": task["status"],
        "assignee": task["assignee"],
        "mine": task["assignee"] == me,
        "others": task["assignee"] not in (None, me),
        "open": task["status"] in ("open", "claimed", "snoozed"),
        "title": name["value"] if name else f"Customer {task['person'] or '(no id)'}",
        "name": None if not name else {**name, "tag": TAG.get(name.get("source", ""), "")},
        "why_now": context.get("why_now") or task.get("text") or "",
        "say": context.get("say") or "",
        "item": None
        if not item
        else {
            "title": readable_title(str(item.get("title") or item.get("item_id"))),
            "item_id": item.get("item_id"),
            "stock": None if not variant else variant.get("stock"),
        },
        "facts": [_fact(f, timezone) for f in context.get("facts") or []],
        "history": [(label, history.get(kind) or []) for kind, label in HISTORY if history.get(kind)],
        "persona": None if not persona else {**persona, "tag": TAG.get(persona.get("source", ""), "guessed")},
        "last_contact": context.get("last_contact"),
        "next_items": context.get("next_items") or [],
        "created_at": task["created_at"],
        "due": when(task["due_at"], timezone),
        "snoozed_until": when(task.get("snoozed_until"), timezone),
        "outcome": task.get("outcome"),
        "note": task.get("note"),
    }


@dataclass(frozen=True)
class InboxView:
    """The inbox in the order staff work through it: claimed by me, open (soonest due first), snoozed;
    and, for marketers and owners only, those claimed by colleagues."""

    mine: list[dict[str, Any]]
    open: list[dict[str, Any]]
    snoozed: list[dict[str, Any]]
    others: list[dict[str, Any]]

    @classmethod
    def of(cls, tasks: Sequence[Mapping[str, Any]], session: Session, timezone: str) -> InboxView:
        views = [task_view(t, session, timezone) for t in tasks]
        everyone = session.may("marketer")
        return cls(
            mine=[v for v in views if v["mine"] and v["status"] == "claimed"],
            open=[v for v in views if v["status"] == "open" and not v["others"]],
            snoozed=[v for v in views if v["status"] == "snoozed" and not v["others"]],
            others=[v for v in views if v["others"]] if everyone else [],
        )

    @property
    def count(self) -> int:
        return len(self.mine) + len(self.open) + len(self.snoozed) + len(self.others)

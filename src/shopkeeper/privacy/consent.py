"""Consent per purpose: an append-only ledger of who agreed to what, when, and through which channel.

The newest entry per (person, purpose) is the person's choice now. A purpose with no entry takes the shop's
documented default (`SHOPKEEPER_CONSENT_DEFAULT`: `opt_out` counts it as granted, `opt_in` as not
granted), except `necessary`, which is always granted and cannot be withdrawn. Consent is checked where data
is used (decide, email), not where it is collected.

Events carry consent in `context.consent`, the way a cookie banner feeds it: either Segment's consent
shape `{"categoryPreferences": {"personalization": true, ...}}` or a plain `{"personalization": true}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from shopkeeper.errors import InvalidInput
from shopkeeper.store.consents import SqlConsents

if TYPE_CHECKING:  # the hook's types: ingestion itself loads with whoever ingests, not with every command
    from shopkeeper.events.ingest import CarriedConsent, ConsentRecorder

NECESSARY = "necessary"
BUILT_IN_PURPOSES = (NECESSARY, "analytics", "personalization", "email_marketing", "staff_outreach")
PURPOSE_WORDS = {
    NECESSARY: "running the shop: orders, delivery, your account",
    "analytics": "measuring what works in the shop",
    "personalization": "choosing what to show you",
    "email_marketing": "marketing emails",
    "staff_outreach": "a personal note or call from our staff",
}
MAX_PURPOSE = 64


@dataclass(frozen=True, slots=True)
class Choice:
    """Where a person stands on one purpose now."""

    purpose: str
    granted: bool
    at: datetime | None  # None: nothing recorded, so the default applies
    channel: str | None

    @property
    def default(self) -> bool:
        return self.at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "granted": self.granted,
            "at": self.at.isoformat() if self.at else None,
            "channel": self.channel,
            "default": self.default,
        }


class Purposes:
    """The purposes a shop asks consent for, and what an unrecorded one counts as."""

    def __init__(self, extra: str = "", default: str = "opt_out") -> None:
        names = [p.strip() for p in extra.split(",") if p.strip()]
        for name in names:
            if len(name) > MAX_PURPOSE or not name.replace("_", "").isalnum():
                raise InvalidInput(
                    f"consent purpose {name!r} must be letters, digits and _ (at most 64)",
                    field="consent_purposes",
                )
        self.names: tuple[str, ...] = tuple(dict.fromkeys((*BUILT_IN_PURPOSES, *names)))
        self.default_granted = default == "opt_out"

    def check(self, changes: Mapping[str, Any]) -> dict[str, bool]:
        """Validate `{purpose: true|false}` from a request."""
        if not isinstance(changes, Mapping) or not changes:
            raise InvalidInput("send an object of {purpose: true|false}", field="consent")
        checked: dict[str, bool] = {}
        for purpose, granted in changes.items():
            if purpose not in self.names:
                known = ", ".join(self.names)
                raise InvalidInput(f"unknown purpose {purpose!r}; known: {known}", field=str(purpose)[:64])
            if not isinstance(granted, bool):
                raise InvalidInput(f"{purpose} must be true or false", field=purpose)
            if purpose == NECESSARY and not granted:
                raise InvalidInput(
                    "necessary cannot be withdrawn: it covers only running the shop (orders, delivery, "
                    "your account); erase the person to stop it",
                    field=purpose,
                )
            checked[purpose] = granted
        return checked

    def from_event(self, consent: Any) -> dict[str, bool]:
        """The known purposes an event's `context.consent` sets; anything else in it is ignored."""
        if not isinstance(consent, dict):
            return {}
        shape = consent.get("categoryPreferences", consent)
        if not isinstance(shape, dict):
            return {}
        return {
            purpose: granted
            for purpose, granted in shape.items()
            if purpose in self.names and purpose != NECESSARY and isinstance(granted, bool)
        }

    def current(self, conn: Connection, person_id: int | None) -> dict[str, Choice]:
        """Every purpose's choice for this person now (an unknown person has only defaults)."""
        found: dict[str, Choice] = {}
        if person_id is not None:
            found = {
                purpose: Choice(purpose, entry.granted, entry.at, entry.channel)
                for purpose, entry in SqlConsents.newest(conn, person_id).items()
            }
        choices = {}
        for name in self.names:
            if name == NECESSARY:
                choices[name] = Choice(name, True, None, None)
            else:
                choices[name] = found.get(name) or Choice(name, self.default_granted, None, None)
        for name, choice in found.items():  # a purpose the shop no longer lists still shows
            choices.setdefault(name, choice)
        return choices

    def allows(self, conn: Connection, person_id: int | None, purpose: str) -> bool:
        """May this person's data be used for `purpose` now? (One indexed query.)"""
        return self.allows_all(conn, person_id, (purpose,))[purpose]

    def defaults(self, purposes: Sequence[str]) -> dict[str, bool]:
        """What each purpose counts as for someone who never said: `necessary` is always allowed."""
        return {p: True if p == NECESSARY else self.default_granted for p in purposes}

    def allows_all(self, conn: Connection, person_id: int | None, purposes: Sequence[str]) -> dict[str, bool]:
        """`allows` for several purposes in one query (decide asks for all of them when it reads a
        person). The statement is built once, so a call costs the query, not the building of it."""
        found = self.defaults(purposes)
        asked = [p for p in purposes if p != NECESSARY]
        if person_id is None or not asked:
            return found
        return {**found, **SqlConsents.granted(conn, person_id, asked)}


def record(
    conn: Connection,
    person_id: int,
    changes: Mapping[str, bool],
    *,
    channel: str,
    actor: str,
    at: datetime | None = None,
    message_id: str | None = None,
    only_changes: bool = False,
) -> int:
    """Append these choices to the ledger, inside the caller's write transaction. With `only_changes`,
    a purpose whose newest entry already says the same is skipped (a cookie banner repeats itself on
    every event). Returns how many entries were written."""
    if only_changes and changes:
        now_granted = SqlConsents.granted(conn, person_id, list(changes))
        changes = {p: g for p, g in changes.items() if now_granted.get(p) is not g}
    return SqlConsents.append(
        conn,
        person_id,
        changes,
        at=at or datetime.now(UTC),
        channel=channel,
        actor=actor,
        message_id=message_id,
    )


def record_from_events(
    conn: Connection, purposes: Purposes, carried: Iterable[CarriedConsent], actor: str
) -> int:
    """Ledger entries for events that carry `context.consent`."""
    written = 0
    for person_id, message_id, at, consent in carried:
        changes = purposes.from_event(consent)
        if changes:
            written += record(
                conn,
                person_id,
                changes,
                channel="event",
                actor=actor,
                at=at,
                message_id=message_id,
                only_changes=True,
            )
    return written


def consent_recorder(purposes: Purposes | None = None) -> ConsentRecorder:
    """The Ingestor's `record_consent`: consent carried in events goes in the ledger (actor `event`), read
    with these purposes (the built-in ones by default)."""
    known = purposes or Purposes()

    def record_carried(conn: Connection, carried: Iterable[CarriedConsent]) -> int:
        return record_from_events(conn, known, carried, actor="event")

    return record_carried


def history(conn: Connection, person_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The ledger for these people (a person and those merged into them), oldest first."""
    return [
        {**entry._asdict(), "at": entry.at.isoformat()} for entry in SqlConsents.history(conn, person_ids)
    ]

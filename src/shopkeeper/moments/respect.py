"""Respect: whether, when and how a moment may reach a person. Checked when the moment is made, and again
when it is due to go.

In order, the first that fails decides (its code is the moment's `reason`):
1. `no_consent`: a purpose the rule itself needs (its `consent`) is withdrawn.
2. `paused`: the person stated `pause_until` a day not yet past, or `contact_frequency` "never".
3. The channel: the rule's first channel that the shop has set up (`no_channel`), whose purpose the person
   allows (else `no_consent`, which wins over a missing address), that their stated `preferred_channels`
   include, and that can reach them (`no_address`: an email needs an address).
4. `budget`: one contact budget per person across every channel (a day and a week, and per channel), and
   their stated `contact_frequency` (daily, weekly, monthly, quarterly). Transactional rules are exempt.
5. `quiet_hours`: in the person's time zone (stated, else seen in their events, else the shop's), a
   moment is *held* until the quiet hours end. Staff tasks are not held: staff choose when to call.

A moment that would go (pending or held) to a person in the universal holdout is suppressed instead, with
the reason `holdout`, and logged as an exposure of the holdout: what the holdout would have got is
judged by the same rules as what everyone else gets, so the two groups compare fairly in `lift`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from shopkeeper.errors import InvalidInput
from shopkeeper.experiments.assign import Holdout
from shopkeeper.moments.rules import Rule

CHANNEL_PURPOSE = {"email": "email_marketing", "staff": "staff_outreach", "webhook": "email_marketing"}
# A stated preferred channel that allows each of ours.
PREFERRED = {"email": {"email"}, "staff": {"staff", "phone"}, "webhook": {"sms", "push", "email"}}
# The traits respect reads: what it is told of pausing, frequency, channels and zone, and an email address.
RESPECT_TRAITS = ("pause_until", "contact_frequency", "preferred_channels", "timezone", "email")
FREQUENCY_DAYS = {"daily": 1, "weekly": 7, "monthly": 30, "quarterly": 91}
PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7)}

WORDS = {
    "holdout": "in the holdout: logged so that lift is measured, never sent",
    "no_consent": "no consent for this channel's purpose",
    "paused": "they asked us to pause contact",
    "no_channel": "none of the rule's channels is set up",
    "no_address": "no address on the allowed channel",
    "budget": "their contact budget is spent",
    "quiet_hours": "quiet hours where they live: held until they end",
    "duplicate": "already sent for this wish and restock",
    "out_of_stock": "out of stock again at send time",
    "not_enough_stock": "fewer units came back than wishes: more valuable wishes went first",
    "no_longer_cheaper": "the price is no longer lower",
    "purchased": "they bought it meanwhile",
    "template_abort": "the template could not be filled safely",
    "no_template": "the rule's template does not exist",
    "wish_closed": "the wish was dropped, expired or fulfilled",
    "erased": "the person was erased",
    "left_audience": "no longer in the rule's audience or condition at send time",
    "failed": "the channel refused it for good",
}


@dataclass(frozen=True)
class Budget:
    day: int = 1
    week: int = 2
    channels: dict[str, dict[str, int]] = field(default_factory=dict)


def parse_budget(text: str) -> Budget:
    try:
        raw = orjson.loads(text) if text.strip() else {}
    except orjson.JSONDecodeError:
        raise InvalidInput(
            'the contact budget is JSON, e.g. {"day": 1, "week": 2}', field="contact_budget"
        ) from None
    if not isinstance(raw, dict) or set(raw) - {"day", "week", "channels"}:
        raise InvalidInput('the contact budget has "day", "week" and "channels"', field="contact_budget")

    def count(value: Any, where: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidInput(
                f"contact budget {where} is a whole number of messages", field="contact_budget"
            )
        return value

    channels = raw.get("channels", {})
    if not isinstance(channels, dict):
        raise InvalidInput("contact budget channels is an object", field="contact_budget")
    for name, limits in channels.items():
        if name not in CHANNEL_PURPOSE:
            raise InvalidInput(
                f"contact budget channels: {name!r} is not one of {', '.join(CHANNEL_PURPOSE)}",
                field="contact_budget",
            )
        if not isinstance(limits, dict) or set(limits) - set(PERIODS):
            raise InvalidInput(
                f'contact budget channels.{name} is {{"day": n, "week": n}}', field="contact_budget"
            )
    return Budget(
        day=count(raw.get("day", 1), "day"),
        week=count(raw.get("week", 2), "week"),
        channels={
            name: {period: count(n, f"{name}.{period}") for period, n in limits.items()}
            for name, limits in channels.items()
        },
    )


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    if not text.strip():
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise InvalidInput("quiet hours are HH:MM-HH:MM, e.g. 21:00-08:00", field="quiet_hours") from None
    return start, end


def zone(name: str | None, fallback: ZoneInfo) -> ZoneInfo:
    if not name or not isinstance(name, str):
        return fallback
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return fallback


def quiet_until(at: datetime, where: ZoneInfo, quiet: tuple[time, time] | None) -> datetime | None:
    """When the quiet hours around `at` end (UTC), or None when `at` is not within them."""
    if quiet is None:
        return None
    start, end = quiet
    local = at.astimezone(where)
    now = local.time()
    inside = (start <= now or now < end) if start > end else (start <= now < end)
    if not inside:
        return None
    day = local.date() if now < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=where).astimezone(UTC)


@dataclass(frozen=True)
class Person:
    """What respect reads of a person: their resolved traits (value, source), consent, address, zone."""

    person_id: int
    unit: str
    traits: dict[str, Any]  # key -> value (resolved)
    consent: dict[str, bool]
    email: str | None
    timezone: str | None
    ref: str = ""  # the id they are shown by: their first userId, else their first other id


@dataclass(frozen=True)
class Verdict:
    status: str  # pending | held | suppressed
    channel: str
    reason: str | None
    due_at: datetime


@dataclass(frozen=True)
class RespectConfig:
    budget: Budget
    quiet: tuple[time, time] | None
    shop_zone: ZoneInfo
    holdout: Holdout
    channels: frozenset[str]  # the channels this shop has set up


# How many live messages a person has had since a time (on one channel, or all): the outbox counts them.
Counter = Callable[[int, datetime, str | None], int]


def judge(config: RespectConfig, person: Person, rule: Rule, due_at: datetime, contacts: Counter) -> Verdict:
    """The verdict on a moment for `person` under `rule`, due at `due_at` (see the module docstring)."""
    verdict = _judge(config, person, rule, due_at, contacts)
    if verdict.status != "suppressed" and config.holdout.contains(person.unit):
        return Verdict("suppressed", verdict.channel, "holdout", due_at)
    return verdict


def _judge(config: RespectConfig, person: Person, rule: Rule, due_at: datetime, contacts: Counter) -> Verdict:
    first = rule.channels[0]
    if any(not person.consent.get(p, False) for p in rule.consent):
        return Verdict("suppressed", first, "no_consent", due_at)
    if _paused(person.traits, due_at.astimezone(zone(person.timezone, config.shop_zone))):
        return Verdict("suppressed", first, "paused", due_at)
    channel, refused = _channel(config, person, rule)
    if channel is None:
        return Verdict("suppressed", first, refused, due_at)
    if not rule.transactional and _over_budget(config.budget, person, channel, due_at, contacts):
        return Verdict("suppressed", channel, "budget", due_at)
    if channel != "staff":
        ends = quiet_until(due_at, zone(person.timezone, config.shop_zone), config.quiet)
        if ends is not None:
            return Verdict("held", channel, "quiet_hours", ends)
    return Verdict("pending", channel, None, due_at)


def _paused(traits: dict[str, Any], at: datetime) -> bool:
    """Whether they asked for no contact: "never", or a pause that lasts through the day of `at` (a
    local time: "pause until the 12th" is the 12th where they live)."""
    if traits.get("contact_frequency") == "never":
        return True
    until = traits.get("pause_until")
    if isinstance(until, str):
        try:
            return date.fromisoformat(until[:10]) >= at.date()
        except ValueError:
            return False
    return False


def _channel(config: RespectConfig, person: Person, rule: Rule) -> tuple[str | None, str]:
    refused = "no_channel"
    preferred = person.traits.get("preferred_channels")
    for channel in rule.channels:
        if channel not in config.channels:
            continue
        if not person.consent.get(CHANNEL_PURPOSE[channel], False):
            refused = "no_consent"
            continue
        if isinstance(preferred, list) and preferred and not PREFERRED[channel] & set(preferred):
            refused = "no_consent"
            continue
        if channel == "email" and not person.email:
            refused = "no_address" if refused == "no_channel" else refused
            continue
        return channel, ""
    return None, refused


def _over_budget(budget: Budget, person: Person, channel: str, at: datetime, contacts: Counter) -> bool:
    pid = person.person_id
    if budget.day is not None and contacts(pid, at - PERIODS["day"], None) >= budget.day:
        return True
    if contacts(pid, at - PERIODS["week"], None) >= budget.week:
        return True
    for period, limit in budget.channels.get(channel, {}).items():
        if contacts(pid, at - PERIODS[period], channel) >= limit:
            return True
    days = FREQUENCY_DAYS.get(str(person.traits.get("contact_frequency")))
    return days is not None and contacts(pid, at - timedelta(days=days), None) >= 1

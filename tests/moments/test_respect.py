"""Respect as a pure function: `judge` on a person, a rule and the messages they already had, and its
helpers `quiet_until`, `parse_budget`, `parse_quiet_hours` and `zone`. No database: the contacts a
person had are a list, counted as the outbox counts them.

The quiet hours' answers are UTC instants written out by hand, across the changes of summer time in
London (28 March and 25 October) and New York (14 March)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shopkeeper.errors import InvalidInput
from shopkeeper.experiments.assign import Holdout
from shopkeeper.moments.respect import (
    Budget,
    Person,
    RespectConfig,
    Verdict,
    judge,
    parse_budget,
    parse_quiet_hours,
    quiet_until,
    zone,
)
from shopkeeper.moments.rules import Rule, parse_rule

NOON = datetime(2027, 1, 12, 12, 0, tzinfo=UTC)  # a Tuesday, in winter: London is on UTC
LONDON, NEW_YORK, TOKYO = ZoneInfo("Europe/London"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")
NIGHT = (time(21, 0), time(8, 0))
ALL_CONSENT = {"email_marketing": True, "staff_outreach": True}


@dataclass
class Contacts:
    """The messages a person had, as (made at, channel): the counter `judge` asks, as the outbox counts."""

    made: list[tuple[datetime, str]] = field(default_factory=list)
    asked: list[tuple[int, datetime, str | None]] = field(default_factory=list)

    def __call__(self, person_id: int, since: datetime, channel: str | None) -> int:
        self.asked.append((person_id, since, channel))
        return sum(1 for at, on in self.made if at >= since and channel in (None, on))


def config(
    *,
    budget: Budget | None = None,
    quiet: tuple[time, time] | None = None,
    shop_zone: ZoneInfo = LONDON,
    holdout: float = 0.0,
    channels: Sequence[str] = ("staff", "email"),
) -> RespectConfig:
    return RespectConfig(
        budget=budget or Budget(day=1, week=2),
        quiet=quiet,
        shop_zone=shop_zone,
        holdout=Holdout(share=holdout, salt="respect-tests"),
        channels=frozenset(channels),
    )


def person(
    *,
    traits: dict[str, Any] | None = None,
    consent: dict[str, bool] | None = None,
    email: str | None = "ann@example.com",
    timezone: str | None = None,
) -> Person:
    return Person(
        person_id=7,
        unit="ann",
        traits=traits or {},
        consent=ALL_CONSENT if consent is None else consent,
        email=email,
        timezone=timezone,
    )


def rule(*channels: str, **more: Any) -> Rule:
    body: dict[str, Any] = {
        "trigger": "milestone",
        "channels": list(channels),
        "params": {"orders": [5]},
        **more,
    }
    if "email" in channels:
        body.setdefault("template", "note")
    return parse_rule("note", body, origin="http")


def verdict(
    who: Person | None = None,
    the_rule: Rule | None = None,
    *,
    at: datetime = NOON,
    contacts: Contacts | None = None,
    **settings: Any,
) -> Verdict:
    return judge(
        config(**settings),
        who or person(),
        the_rule or rule("staff", "email"),
        at,
        contacts if contacts is not None else Contacts(),
    )


def said(found: Verdict) -> tuple[str, str, str | None]:
    return found.status, found.channel, found.reason


# ---- consent and the channel -------------------------------------------------------------------------------


def test_the_rules_first_channel_goes_when_everything_allows_it() -> None:
    found = verdict()
    assert said(found) == ("pending", "staff", None)
    assert found.due_at == NOON


@pytest.mark.parametrize(
    ("consent", "expected"),
    [
        ({"email_marketing": True, "staff_outreach": False}, ("pending", "email", None)),
        ({"email_marketing": False, "staff_outreach": True}, ("pending", "staff", None)),
        ({"email_marketing": False, "staff_outreach": False}, ("suppressed", "staff", "no_consent")),
        ({}, ("suppressed", "staff", "no_consent")),  # nothing recorded, nothing allowed
    ],
)
def test_a_channel_whose_purpose_is_not_allowed_falls_through_to_the_next(
    consent: dict[str, bool], expected: tuple[str, str, str | None]
) -> None:
    assert said(verdict(person(consent=consent))) == expected


def test_the_rules_order_of_channels_decides_between_allowed_ones() -> None:
    assert said(verdict(the_rule=rule("email", "staff"))) == ("pending", "email", None)


def test_a_webhook_needs_the_email_marketing_purpose() -> None:
    webhook = rule("webhook")
    no_marketing = person(consent={"email_marketing": False, "staff_outreach": True})
    assert said(verdict(no_marketing, webhook, channels=("webhook",))) == (
        "suppressed",
        "webhook",
        "no_consent",
    )
    assert said(verdict(person(), webhook, channels=("webhook",))) == ("pending", "webhook", None)


@pytest.mark.parametrize(
    ("consent", "expected"),
    [
        ({**ALL_CONSENT, "sms_marketing": True, "loyalty": True}, ("pending", "staff", None)),
        ({**ALL_CONSENT, "sms_marketing": True, "loyalty": False}, ("suppressed", "staff", "no_consent")),
        ({**ALL_CONSENT, "sms_marketing": True}, ("suppressed", "staff", "no_consent")),
    ],
)
def test_every_extra_purpose_a_rule_names_must_be_allowed(
    consent: dict[str, bool], expected: tuple[str, str, str | None]
) -> None:
    needs_both = rule("staff", "email", consent=["sms_marketing", "loyalty"])
    assert said(verdict(person(consent=consent), needs_both)) == expected


def test_a_withdrawn_extra_purpose_suppresses_before_a_pause_is_read() -> None:
    paused = person(traits={"contact_frequency": "never"}, consent={**ALL_CONSENT, "loyalty": False})
    assert said(verdict(paused, rule("staff", consent=["loyalty"]))) == ("suppressed", "staff", "no_consent")


@pytest.mark.parametrize(
    ("preferred", "expected"),
    [
        (["email"], ("pending", "email", None)),
        (["phone"], ("pending", "staff", None)),  # a call from staff is a phone call
        (["staff", "email"], ("pending", "staff", None)),
        (["sms"], ("suppressed", "staff", "no_consent")),
        (["post", "web"], ("suppressed", "staff", "no_consent")),
        ([], ("pending", "staff", None)),  # an empty list states nothing
    ],
)
def test_stated_preferred_channels_exclude_the_others(
    preferred: list[str], expected: tuple[str, str, str | None]
) -> None:
    assert said(verdict(person(traits={"preferred_channels": preferred}))) == expected


def test_an_email_needs_an_address_else_the_next_channel_goes() -> None:
    no_email = person(email=None)
    assert said(verdict(no_email, rule("email"))) == ("suppressed", "email", "no_address")
    assert said(verdict(no_email, rule("email", "staff"))) == ("pending", "staff", None)


def test_a_channel_the_shop_has_not_set_up_is_skipped() -> None:
    staff_only = ("staff",)
    assert said(verdict(the_rule=rule("email"), channels=staff_only)) == ("suppressed", "email", "no_channel")
    assert said(verdict(the_rule=rule("email", "staff"), channels=staff_only)) == ("pending", "staff", None)
    assert said(verdict(the_rule=rule("webhook", "email"))) == ("pending", "email", None)


def test_no_consent_is_the_reason_when_an_unset_channel_and_a_refused_one_are_all_there_is() -> None:
    no_staff = person(consent={"email_marketing": True, "staff_outreach": False})
    assert said(verdict(no_staff, rule("email", "staff"), channels=("staff",))) == (
        "suppressed",
        "email",
        "no_consent",
    )


# ---- pause and stated frequency ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("until", "expected"),
    [
        ("2027-03-01", ("suppressed", "staff", "paused")),
        ("2027-01-12", ("suppressed", "staff", "paused")),  # the day named is still paused
        ("2027-01-11", ("pending", "staff", None)),
        ("2026-06-30", ("pending", "staff", None)),
        ("2027-03-01T00:00:00+00:00", ("suppressed", "staff", "paused")),
        ("not a date", ("pending", "staff", None)),
    ],
)
def test_a_stated_pause_holds_until_its_day_has_passed(
    until: str, expected: tuple[str, str, str | None]
) -> None:
    assert said(verdict(person(traits={"pause_until": until}))) == expected


def test_contact_frequency_never_is_a_pause_on_every_channel() -> None:
    never = person(traits={"contact_frequency": "never"})
    assert said(verdict(never)) == ("suppressed", "staff", "paused")
    assert said(verdict(never, rule("email"))) == ("suppressed", "email", "paused")


ROOMY = Budget(day=9, week=9)  # so that only the stated frequency can refuse


@pytest.mark.parametrize(
    ("frequency", "ago", "expected"),
    [
        ("daily", timedelta(hours=20), "budget"),
        ("daily", timedelta(hours=25), None),
        ("weekly", timedelta(days=3), "budget"),
        ("weekly", timedelta(days=6, hours=23), "budget"),
        ("weekly", timedelta(days=8), None),
        ("monthly", timedelta(days=20), "budget"),
        ("monthly", timedelta(days=31), None),
        ("quarterly", timedelta(days=90), "budget"),
        ("quarterly", timedelta(days=92), None),
        ("as_it_happens", timedelta(minutes=5), None),
    ],
)
def test_a_stated_contact_frequency_counts_the_messages_before(
    frequency: str, ago: timedelta, expected: str | None
) -> None:
    had = Contacts([(NOON - ago, "email")])
    found = verdict(person(traits={"contact_frequency": frequency}), contacts=had, budget=ROOMY)
    assert said(found) == (("suppressed", "staff", "budget") if expected else ("pending", "staff", None))


# ---- the contact budget ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        ([], ("pending", "staff", None)),
        ([(NOON - timedelta(hours=2), "email")], ("suppressed", "staff", "budget")),  # one a day, any channel
        ([(NOON - timedelta(hours=25), "email")], ("pending", "staff", None)),
        (
            [(NOON - timedelta(days=2), "staff"), (NOON - timedelta(days=5), "email")],
            ("suppressed", "staff", "budget"),
        ),
        (
            [(NOON - timedelta(days=2), "staff"), (NOON - timedelta(days=8), "email")],
            ("pending", "staff", None),
        ),
    ],
)
def test_one_budget_across_channels_a_day_and_a_week(
    made: list[tuple[datetime, str]], expected: tuple[str, str, str | None]
) -> None:
    assert said(verdict(contacts=Contacts(made), budget=Budget(day=1, week=2))) == expected


def test_a_channels_own_limit_counts_that_channel_only() -> None:
    budget = Budget(day=5, week=5, channels={"email": {"week": 1}})
    emailed = Contacts([(NOON - timedelta(days=3), "email")])
    called = Contacts([(NOON - timedelta(days=3), "staff")])
    assert said(verdict(the_rule=rule("email", "staff"), contacts=emailed, budget=budget)) == (
        "suppressed",
        "email",
        "budget",
    )
    assert said(verdict(the_rule=rule("email", "staff"), contacts=called, budget=budget)) == (
        "pending",
        "email",
        None,
    )
    assert said(verdict(the_rule=rule("staff"), contacts=emailed, budget=budget)) == (
        "pending",
        "staff",
        None,
    )


def test_the_budget_asks_for_the_persons_contacts_over_the_right_windows() -> None:
    counted = Contacts()
    verdict(
        the_rule=rule("email"), contacts=counted, budget=Budget(day=1, week=2, channels={"email": {"day": 1}})
    )
    assert counted.asked == [
        (7, NOON - timedelta(days=1), None),
        (7, NOON - timedelta(days=7), None),
        (7, NOON - timedelta(days=1), "email"),
    ]


def test_a_transactional_rule_is_exempt_from_the_budget_and_the_stated_frequency() -> None:
    spent = Contacts([(NOON - timedelta(minutes=5), "staff")] * 3)
    weekly = person(traits={"contact_frequency": "weekly"})
    assert said(verdict(weekly, rule("staff"), contacts=spent)) == ("suppressed", "staff", "budget")
    assert said(verdict(weekly, rule("staff", transactional=True), contacts=spent)) == (
        "pending",
        "staff",
        None,
    )


def test_a_transactional_rule_still_needs_consent_and_no_pause() -> None:
    receipt = rule("email", transactional=True)
    assert said(verdict(person(consent={"email_marketing": False}), receipt)) == (
        "suppressed",
        "email",
        "no_consent",
    )
    assert said(verdict(person(traits={"pause_until": "2027-02-01"}), receipt)) == (
        "suppressed",
        "email",
        "paused",
    )


def test_a_budget_of_zero_sends_nothing() -> None:
    assert said(verdict(budget=Budget(day=0, week=2))) == ("suppressed", "staff", "budget")


# ---- quiet hours -------------------------------------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("moment", "where", "ends"),
    [
        ("2027-01-12T22:30:00+00:00", LONDON, "2027-01-13T08:00:00+00:00"),
        ("2027-01-12T21:00:00+00:00", LONDON, "2027-01-13T08:00:00+00:00"),  # the window's first minute
        ("2027-01-13T02:00:00+00:00", LONDON, "2027-01-13T08:00:00+00:00"),  # after midnight: the same day
        ("2027-01-13T07:59:59+00:00", LONDON, "2027-01-13T08:00:00+00:00"),
        ("2027-01-12T14:00:00+00:00", TOKYO, "2027-01-12T23:00:00+00:00"),  # 23:00 in Tokyo
        ("2027-01-13T04:00:00+00:00", NEW_YORK, "2027-01-13T13:00:00+00:00"),  # 23:00 in New York
        # London moves to summer time at 01:00 UTC on 28 March: 08:00 next morning is 07:00 UTC.
        ("2027-03-27T22:00:00+00:00", LONDON, "2027-03-28T07:00:00+00:00"),
        ("2027-03-28T00:30:00+00:00", LONDON, "2027-03-28T07:00:00+00:00"),  # before the change
        ("2027-03-28T01:30:00+00:00", LONDON, "2027-03-28T07:00:00+00:00"),  # after it
        # ... and back at 01:00 UTC on 25 October 2026: 22:30 summer time, then 08:00 winter time.
        ("2026-10-24T21:30:00+00:00", LONDON, "2026-10-25T08:00:00+00:00"),
        # New York moves at 07:00 UTC on 14 March 2027: 22:00 EST on the 13th, then 08:00 EDT.
        ("2027-03-14T03:00:00+00:00", NEW_YORK, "2027-03-14T12:00:00+00:00"),
    ],
)
def test_quiet_hours_end_at_eight_in_the_persons_zone(moment: str, where: ZoneInfo, ends: str) -> None:
    found = quiet_until(at(moment), where, NIGHT)
    assert found == at(ends)
    assert found is not None and found.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("moment", "where"),
    [
        ("2027-01-12T08:00:00+00:00", LONDON),  # the window's end is not in it
        ("2027-01-12T20:59:59+00:00", LONDON),
        ("2027-01-12T12:00:00+00:00", LONDON),
        ("2027-01-12T23:30:00+00:00", TOKYO),  # 08:30 in Tokyo
        ("2027-01-12T20:00:00+00:00", NEW_YORK),  # 15:00 in New York
    ],
)
def test_outside_quiet_hours_there_is_nothing_to_wait_for(moment: str, where: ZoneInfo) -> None:
    assert quiet_until(at(moment), where, NIGHT) is None


def test_a_window_that_does_not_cross_midnight() -> None:
    lunch = (time(12, 0), time(14, 0))
    assert quiet_until(at("2027-01-12T13:00:00+00:00"), LONDON, lunch) == at("2027-01-12T14:00:00+00:00")
    assert quiet_until(at("2027-01-12T12:00:00+00:00"), LONDON, lunch) == at("2027-01-12T14:00:00+00:00")
    assert quiet_until(at("2027-01-12T14:00:00+00:00"), LONDON, lunch) is None
    assert quiet_until(at("2027-01-12T11:59:00+00:00"), LONDON, lunch) is None
    assert quiet_until(at("2027-01-12T23:00:00+00:00"), LONDON, lunch) is None
    # 13:00 in Tokyo is 04:00 UTC
    assert quiet_until(at("2027-01-12T04:00:00+00:00"), TOKYO, lunch) == at("2027-01-12T05:00:00+00:00")


def test_no_quiet_hours_hold_nothing() -> None:
    assert quiet_until(at("2027-01-12T23:00:00+00:00"), LONDON, None) is None


def test_a_moment_in_quiet_hours_is_held_until_they_end_in_the_persons_zone() -> None:
    late = at("2027-01-12T14:00:00+00:00")  # 23:00 in Tokyo, 14:00 in London
    found = verdict(person(timezone="Asia/Tokyo"), rule("email"), at=late, quiet=NIGHT)
    assert found == Verdict("held", "email", "quiet_hours", at("2027-01-12T23:00:00+00:00"))
    assert verdict(person(), rule("email"), at=late, quiet=NIGHT) == Verdict("pending", "email", None, late)


def test_without_a_zone_of_their_own_the_shops_zone_counts() -> None:
    late = at("2027-01-13T04:00:00+00:00")  # 23:00 in New York
    found = verdict(person(timezone=None), rule("email"), at=late, quiet=NIGHT, shop_zone=NEW_YORK)
    assert said(found) == ("held", "email", "quiet_hours")
    assert found.due_at == at("2027-01-13T13:00:00+00:00")


@pytest.mark.parametrize(
    "name",
    ["Mars/Olympus_Mons", "", "../../etc/passwd", "/etc/localtime", "zone.tab", "Europe", "UTC\n", "\x00"],
)
def test_a_zone_that_is_not_one_falls_back_to_the_shops(name: str) -> None:
    assert zone(name, NEW_YORK) is NEW_YORK
    late = at("2027-01-13T04:00:00+00:00")
    found = verdict(person(timezone=name), rule("email"), at=late, quiet=NIGHT, shop_zone=NEW_YORK)
    assert found.due_at == at("2027-01-13T13:00:00+00:00")


def test_staff_tasks_are_never_held_staff_choose_when_to_call() -> None:
    late = at("2027-01-12T14:00:00+00:00")
    tokyo = person(timezone="Asia/Tokyo")
    assert verdict(tokyo, rule("staff"), at=late, quiet=NIGHT) == Verdict("pending", "staff", None, late)
    no_staff = person(timezone="Asia/Tokyo", consent={"email_marketing": True})
    assert said(verdict(no_staff, rule("staff", "email"), at=late, quiet=NIGHT)) == (
        "held",
        "email",
        "quiet_hours",
    )


def test_budget_and_pause_are_read_before_quiet_hours() -> None:
    late = at("2027-01-12T23:00:00+00:00")
    spent = Contacts([(late - timedelta(hours=1), "email")])
    assert said(verdict(the_rule=rule("email"), at=late, quiet=NIGHT, contacts=spent)) == (
        "suppressed",
        "email",
        "budget",
    )
    paused = person(traits={"pause_until": "2027-01-20"})
    assert said(verdict(paused, rule("email"), at=late, quiet=NIGHT)) == ("suppressed", "email", "paused")


# ---- the holdout -------------------------------------------------------------------------------------------


def test_the_holdout_gets_nothing_that_would_have_gone() -> None:
    assert verdict(holdout=1.0) == Verdict("suppressed", "staff", "holdout", NOON)
    late = at("2027-01-12T14:00:00+00:00")
    held = verdict(person(timezone="Asia/Tokyo"), rule("email"), at=late, quiet=NIGHT, holdout=1.0)
    assert held == Verdict("suppressed", "email", "holdout", late)


def test_a_moment_suppressed_for_its_own_reason_keeps_it_in_the_holdout() -> None:
    refused = person(consent={"email_marketing": False, "staff_outreach": False})
    assert said(verdict(refused, holdout=1.0)) == ("suppressed", "staff", "no_consent")
    assert said(verdict(person(traits={"contact_frequency": "never"}), holdout=1.0)) == (
        "suppressed",
        "staff",
        "paused",
    )


def test_with_no_holdout_the_moment_goes() -> None:
    assert said(verdict(holdout=0.0)) == ("pending", "staff", None)


# ---- the settings' parsers ---------------------------------------------------------------------------------


def test_the_default_budget_is_one_a_day_and_two_a_week() -> None:
    assert parse_budget("") == Budget(day=1, week=2, channels={})
    assert parse_budget('{"day": 1, "week": 2}') == Budget(day=1, week=2, channels={})


def test_a_budget_with_channel_limits() -> None:
    assert parse_budget(
        '{"day": 3, "week": 10, "channels": {"email": {"week": 1}, "staff": {"day": 2}}}'
    ) == Budget(day=3, week=10, channels={"email": {"week": 1}, "staff": {"day": 2}})
    assert parse_budget('{"week": 4}') == Budget(day=1, week=4, channels={})


@pytest.mark.parametrize(
    "text",
    [
        "{day: 1}",
        "[1, 2]",
        '{"day": 1, "month": 4}',
        '{"day": -1}',
        '{"day": 1.5}',
        '{"day": true}',
        '{"week": "2"}',
        '{"channels": ["email"]}',
        '{"channels": {"email": {"day": -2}}}',
        '{"channels": {"email": {"month": 1}}}',  # a period the budget does not have
        '{"channels": {"email": 1}}',  # a limit that is not {period: n}
        '{"channels": {"emial": {"day": 1}}}',  # a channel that does not exist
    ],
)
def test_a_budget_that_cannot_be_read_is_a_precise_error(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_budget(text)
    assert raised.value.field == "contact_budget"


def test_quiet_hours_are_read_as_two_times() -> None:
    assert parse_quiet_hours("21:00-08:00") == (time(21, 0), time(8, 0))
    assert parse_quiet_hours(" 22:30 - 07:15 ") == (time(22, 30), time(7, 15))
    assert parse_quiet_hours("12:00-14:00") == (time(12, 0), time(14, 0))
    assert parse_quiet_hours("") is None
    assert parse_quiet_hours("   ") is None


@pytest.mark.parametrize("text", ["21:00", "9pm-8am", "25:00-08:00", "21:00-08:00-09:00", "21:00-", "-"])
def test_quiet_hours_that_cannot_be_read_are_a_precise_error(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_quiet_hours(text)
    assert raised.value.field == "quiet_hours"

"""Respect through the moment engine, on SQLite and PostgreSQL: consent and channels, pauses, the contact
budget counted from the outbox, quiet hours in the person's zone, and the holdout's exposures in the
decision log.

Moments come from milestone rules on the trait `miles` (see respect_support); the engine steps at the
events' own times, years ahead, so that every due time below is an exact instant. Each test puts
several people through one shop: a shop on PostgreSQL costs its migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest
from tests.moments.respect_support import (
    T,
    customer,
    deliver,
    exposures,
    fly,
    miles_rule,
    open_shop,
    outbox,
    stock,
    trousers,
    verdicts,
    wish_for_grey_34,
)

from shopkeeper.shop import Shop


class Opens(Protocol):
    def __call__(self, **overrides: Any) -> Shop: ...


@pytest.fixture
def shop_with(database_url: str) -> Iterator[Opens]:
    """Opens a shop on this test's database with these settings (see respect_support.settings)."""
    with ExitStack() as stack:
        yield lambda **overrides: stack.enter_context(open_shop(database_url, **overrides))


@pytest.fixture
def shop(shop_with: Opens) -> Shop:
    return shop_with()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def by_person(shop: Shop) -> dict[str, list[tuple[str | None, str, str | None]]]:
    """Each person's rows, oldest first, as (channel, status, reason)."""
    found: dict[str, list[tuple[str | None, str, str | None]]] = {}
    for row in outbox(shop):
        found.setdefault(row["person"], []).append((row["channel"], row["status"], row["reason"]))
    return found


# ---- consent and channels ----------------------------------------------------------------------------------


def test_consent_preferred_channels_and_addresses_choose_the_channel(shop_with: Opens) -> None:
    """Three rules, and each person a different case: `frequent` goes by staff, else by email; `mail` by
    email only; `texts` by staff, and it needs the shop's extra purpose `sms_marketing` too."""
    shop = shop_with(consent_purposes="sms_marketing", contact_budget='{"day": 9, "week": 9}')
    miles_rule(shop, "frequent", channels=("staff", "email"), priority=90)
    miles_rule(shop, "mail", channels=("email",), priority=80)
    miles_rule(shop, "texts", channels=("staff",), priority=70, consent=["sms_marketing"])
    customer(shop, "ann")
    customer(shop, "bob", email="bob@example.com")
    shop.set_consent("bob", {"staff_outreach": False})
    customer(shop, "cy", email="cy@example.com")
    shop.set_consent("cy", {"staff_outreach": False, "email_marketing": False})
    customer(shop, "dee", email=None)
    customer(shop, "eve", email="eve@example.com", preferred_channels=["email"])
    customer(shop, "fay", email="fay@example.com", preferred_channels=["sms"])
    customer(shop, "gus", email="gus@example.com")
    shop.set_consent("gus", {"sms_marketing": False})
    for person in ("ann", "bob", "cy", "dee", "eve", "fay", "gus"):
        fly(shop, person, 2000)
    refused = ("staff", "suppressed", "no_consent")
    assert by_person(shop) == {
        "ann": [("staff", "pending", None), ("email", "pending", None), ("staff", "pending", None)],
        "bob": [("email", "pending", None), ("email", "pending", None), refused],
        "cy": [refused, ("email", "suppressed", "no_consent"), refused],
        "dee": [
            ("staff", "pending", None),
            ("email", "suppressed", "no_address"),
            ("staff", "pending", None),
        ],
        "eve": [("email", "pending", None), ("email", "pending", None), refused],
        "fay": [refused, ("email", "suppressed", "no_consent"), refused],
        "gus": [("staff", "pending", None), ("email", "pending", None), refused],
    }


def test_without_an_smtp_server_email_is_no_channel(shop_with: Opens) -> None:
    shop = shop_with(smtp_host="")
    miles_rule(shop, "mail", channels=("email",), priority=90)
    miles_rule(shop, "either", channels=("email", "staff"), priority=80)
    customer(shop, "ann")
    stepped = fly(shop, "ann", 2000)
    assert (stepped.made, stepped.suppressed) == (1, 1)
    assert verdicts(shop, "ann") == [
        ("mail", "email", "suppressed", "no_channel"),
        ("either", "staff", "pending", None),
    ]


# ---- pause and stated frequency ----------------------------------------------------------------------------


def test_a_stated_pause(shop: Shop) -> None:
    """T is 15 January 2030: a pause until that day still holds; one until the day before is over."""
    miles_rule(shop, "frequent", channels=("staff", "email"))
    stated = {
        "ann": {"pause_until": "2030-02-01"},
        "bob": {"pause_until": "2030-01-15"},
        "cy": {"pause_until": "2030-01-14"},
        "dee": {"contact_frequency": "never"},
        "eve": {"contact_frequency": "weekly"},  # nothing before it
    }
    for person, preferences in stated.items():
        customer(shop, person, email=f"{person}@example.com", **preferences)
        fly(shop, person, 2000)
    assert [(r["person"], r["channel"], r["status"], r["reason"]) for r in outbox(shop)] == [
        ("ann", "staff", "suppressed", "paused"),
        ("bob", "staff", "suppressed", "paused"),
        ("cy", "staff", "pending", None),
        ("dee", "staff", "suppressed", "paused"),
        ("eve", "staff", "pending", None),
    ]


def test_a_stated_frequency_counts_the_earlier_messages(shop_with: Opens) -> None:
    """Each person had a message some time before T, from the rule `first`; `second` comes at T."""
    shop = shop_with(contact_budget='{"day": 9, "week": 9}')  # only the stated frequency refuses
    miles_rule(shop, "first", value=1000)
    miles_rule(shop, "second", value=5000)
    before = {
        "ann": ("weekly", timedelta(days=8)),
        "bob": ("weekly", timedelta(days=3)),
        "cy": ("daily", timedelta(days=2)),
        "dee": ("daily", timedelta(hours=20)),
        "eve": ("monthly", timedelta(days=29)),
    }
    for person, (frequency, _) in before.items():
        customer(shop, person, email=f"{person}@example.com", contact_frequency=frequency)
    for person, (_, ago) in sorted(before.items(), key=lambda p: -p[1][1]):
        fly(shop, person, 2000, at=T - ago)
    for person in before:
        fly(shop, person, 6000)
    found = {(r["person"], r["rule"]): (r["status"], r["reason"]) for r in outbox(shop)}
    assert {p: found[(p, "first")] for p in before} == {p: ("pending", None) for p in before}
    assert {p: found[(p, "second")] for p in before} == {
        "ann": ("pending", None),
        "bob": ("suppressed", "budget"),
        "cy": ("pending", None),
        "dee": ("suppressed", "budget"),
        "eve": ("suppressed", "budget"),
    }


# ---- the contact budget ------------------------------------------------------------------------------------


def test_one_budget_across_every_channel_per_person(shop: Shop) -> None:
    """One a day and two a week by default. Ann's first moment goes by staff, and an email after it is
    over the day's budget; the next day an email goes; the day after, a third that week is over the
    week's. Bob's budget is his own."""
    miles_rule(shop, "call", channels=("staff",), priority=90)
    miles_rule(shop, "mail", channels=("email",), priority=80)
    miles_rule(shop, "mail-later", channels=("email",), value=5000)
    miles_rule(shop, "call-later", channels=("staff",), value=9000)
    customer(shop, "ann")
    customer(shop, "bob", email="bob@example.com")
    fly(shop, "ann", 2000)
    fly(shop, "bob", 2000)
    fly(shop, "ann", 6000, at=T + timedelta(days=1, minutes=1))
    fly(shop, "ann", 9500, at=T + timedelta(days=2, minutes=2))
    assert verdicts(shop, "ann") == [
        ("call", "staff", "pending", None),
        ("mail", "email", "suppressed", "budget"),
        ("mail-later", "email", "pending", None),
        ("call-later", "staff", "suppressed", "budget"),
    ]
    assert verdicts(shop, "bob") == [
        ("call", "staff", "pending", None),
        ("mail", "email", "suppressed", "budget"),
    ]


def test_a_channels_own_limit(shop_with: Opens) -> None:
    shop = shop_with(contact_budget='{"day": 5, "week": 5, "channels": {"staff": {"day": 1}}}')
    miles_rule(shop, "call", channels=("staff",), priority=90)
    miles_rule(shop, "call-too", channels=("staff",), priority=80)
    miles_rule(shop, "mail", channels=("email",), priority=70)
    customer(shop)
    fly(shop, "ann", 2000)
    assert verdicts(shop, "ann") == [
        ("call", "staff", "pending", None),
        ("call-too", "staff", "suppressed", "budget"),
        ("mail", "email", "pending", None),
    ]


def test_transactional_moments_are_exempt_and_do_not_count(shop: Shop) -> None:
    miles_rule(shop, "receipt", channels=("email",), priority=95, transactional=True)
    miles_rule(shop, "call", priority=90)
    miles_rule(shop, "receipt-too", channels=("email",), priority=85, transactional=True)
    miles_rule(shop, "call-too", priority=80)
    customer(shop, contact_frequency="weekly")
    fly(shop, "ann", 2000)
    assert verdicts(shop, "ann") == [
        ("receipt", "email", "pending", None),
        ("call", "staff", "pending", None),
        ("receipt-too", "email", "pending", None),
        ("call-too", "staff", "suppressed", "budget"),
    ]


def test_suppressed_moments_do_not_count_against_the_budget(shop_with: Opens) -> None:
    shop = shop_with(consent_purposes="loyalty")
    miles_rule(shop, "loyal", priority=95, consent=["loyalty"])
    miles_rule(shop, "mail-nowhere", channels=("email",), priority=92)
    miles_rule(shop, "call", priority=90)
    miles_rule(shop, "call-too", priority=80)
    customer(shop, email=None)
    shop.set_consent("ann", {"loyalty": False})
    fly(shop, "ann", 2000)
    assert verdicts(shop, "ann") == [
        ("loyal", "staff", "suppressed", "no_consent"),
        ("mail-nowhere", "email", "suppressed", "no_address"),
        ("call", "staff", "pending", None),
        ("call-too", "staff", "suppressed", "budget"),
    ]


# ---- quiet hours -------------------------------------------------------------------------------------------


def test_a_moment_due_at_23_00_local_is_held_until_08_00_local(shop_with: Opens) -> None:
    """The person's zone is a resolved `timezone` trait, else the one their newest event carried
    (context.timezone), else the shop's (here Kolkata). Each reaches the milestone at 23:00 where they
    are."""
    shop = shop_with(quiet_hours="21:00-08:00", shop_timezone="Asia/Kolkata")
    miles_rule(shop, "mail", channels=("email",))
    for person in ("ann", "bob", "cy", "dee"):
        customer(shop, person, email=f"{person}@example.com")
    # Ann's device is in Tokyo, where 23:00 is 14:00 UTC, and 19:30 in Kolkata.
    fly(shop, "ann", 2000, at=utc("2030-01-15T23:00:00+09:00"), zone="Asia/Tokyo")
    # Bob's zone is not known: the shop's counts.
    fly(shop, "bob", 2000, at=utc("2030-01-15T23:00:00+05:30"))
    # London moves its clocks at 01:00 UTC on 31 March 2030: 22:00 on the 30th is GMT, and 08:00 the
    # next morning is BST, 07:00 UTC.
    fly(shop, "cy", 2000, at=utc("2030-03-30T22:00:00+00:00"), zone="Europe/London")
    # Dee's resolved trait says New York; her device says Tokyo (where it is 13:00).
    shop.identify(user_id="dee", traits={"timezone": "America/New_York"}, timestamp=T - timedelta(days=1))
    shop.profile("dee")  # a read of the profile derives her traits from her events
    fly(shop, "dee", 2000, at=utc("2030-01-15T23:00:00-05:00"), zone="Asia/Tokyo")
    found = {r["person"]: (r["channel"], r["status"], r["reason"], utc(r["due_at"])) for r in outbox(shop)}
    assert found == {
        "ann": ("email", "held", "quiet_hours", utc("2030-01-15T23:00:00+00:00")),  # 08:00 in Tokyo
        "bob": ("email", "held", "quiet_hours", utc("2030-01-16T08:00:00+05:30")),
        "cy": ("email", "held", "quiet_hours", utc("2030-03-31T07:00:00+00:00")),
        "dee": ("email", "held", "quiet_hours", utc("2030-01-16T08:00:00-05:00")),
    }


def test_a_timezone_trait_counts_without_anyone_reading_the_profile_first(shop_with: Opens) -> None:
    """Regression: the engine reads traits as stored, and a trait from an `identify` is stored only when
    something rebuilds the person's profile. The zone an identify names must count for the next moment."""
    shop = shop_with(quiet_hours="21:00-08:00")
    miles_rule(shop, "mail", channels=("email",))
    customer(shop)
    shop.identify(user_id="ann", traits={"timezone": "America/New_York"}, timestamp=T - timedelta(days=1))
    fly(shop, "ann", 2000, at=utc("2030-01-15T23:00:00-05:00"))  # 04:00 UTC: quiet in the shop's zone too
    [row] = outbox(shop, "ann")
    assert (row["status"], row["reason"]) == ("held", "quiet_hours")
    assert utc(row["due_at"]) == utc("2030-01-16T08:00:00-05:00")  # not 08:00 UTC


def test_a_window_that_does_not_cross_midnight(shop_with: Opens) -> None:
    shop = shop_with(quiet_hours="12:00-14:00")
    miles_rule(shop, "mail", channels=("email",))
    customer(shop)
    customer(shop, "bob", email="bob@example.com")
    fly(shop, "ann", 2000, at=utc("2030-01-15T13:00:00+09:00"), zone="Asia/Tokyo")
    fly(shop, "bob", 2000, at=utc("2030-01-15T23:00:00+09:00"), zone="Asia/Tokyo")
    assert [(r["person"], r["status"], r["reason"], utc(r["due_at"])) for r in outbox(shop)] == [
        ("ann", "held", "quiet_hours", utc("2030-01-15T14:00:00+09:00")),
        ("bob", "pending", None, utc("2030-01-15T23:00:00+09:00")),
    ]


def test_staff_tasks_are_never_held_and_a_held_moment_counts_against_the_budget(shop_with: Opens) -> None:
    """Ann's call goes at 23:30 (staff choose when to call) and spends her day's budget; Bob allows no
    staff outreach, so his goes by email, is held, and spends his."""
    shop = shop_with(quiet_hours="21:00-08:00")
    miles_rule(shop, "call", channels=("staff", "email"), priority=90)
    miles_rule(shop, "mail", channels=("email",), priority=80)
    customer(shop, "ann")
    customer(shop, "bob", email="bob@example.com")
    shop.set_consent("bob", {"staff_outreach": False})
    late = utc("2030-01-15T23:30:00+09:00")
    fly(shop, "ann", 2000, at=late, zone="Asia/Tokyo")
    fly(shop, "bob", 2000, at=late, zone="Asia/Tokyo")
    found = [
        (r["person"], r["rule"], r["channel"], r["status"], r["reason"], utc(r["due_at"]))
        for r in outbox(shop)
    ]
    assert found == [
        ("ann", "call", "staff", "pending", None, late),
        ("ann", "mail", "email", "suppressed", "budget", late),
        ("bob", "call", "email", "held", "quiet_hours", utc("2030-01-16T08:00:00+09:00")),
        ("bob", "mail", "email", "suppressed", "budget", late),
    ]


# ---- the holdout -------------------------------------------------------------------------------------------


def test_the_holdout_gets_no_moments_and_each_is_logged_as_its_exposure(shop_with: Opens) -> None:
    """Everyone is held out. Ann's call and her (transactional) email, which quiet hours would have
    held, are suppressed and logged; Bob allows no staff outreach, so his call is no exposure at all."""
    shop = shop_with(holdout_share=1.0, quiet_hours="21:00-08:00")
    miles_rule(shop, "call", channels=("staff",), priority=90)
    miles_rule(shop, "mail", channels=("email",), priority=80, transactional=True)
    customer(shop, "ann")
    customer(shop, "bob", email=None)
    shop.set_consent("bob", {"staff_outreach": False})
    late = utc("2030-01-15T23:00:00+00:00")
    fly(shop, "ann", 2000, at=late)
    fly(shop, "bob", 2000, at=late)
    assert [(r["person"], r["rule"], r["channel"], r["status"], r["reason"]) for r in outbox(shop)] == [
        ("ann", "call", "staff", "suppressed", "holdout"),
        ("ann", "mail", "email", "suppressed", "holdout"),
        ("bob", "call", "staff", "suppressed", "no_consent"),
        ("bob", "mail", "email", "suppressed", "no_address"),
    ]
    found = exposures(shop)
    assert [(e["placement"], e["cohort"], e["personalized"], e["unit"], e["items"]) for e in found] == [
        ("moment:call", "holdout", 0, "ann", []),
        ("moment:mail", "holdout", 0, "ann", []),
    ]
    assert [e["reasons"][0]["code"] for e in found] == ["holdout", "holdout"]
    assert {e["at"] for e in found} == {late}
    assert deliver(shop, late + timedelta(days=1)).busy is False


def test_the_treatment_groups_moment_is_logged_as_personalized(shop: Shop) -> None:
    miles_rule(shop, "call", channels=("staff",))
    customer(shop)
    fly(shop, "ann", 2000)
    assert verdicts(shop, "ann") == [("call", "staff", "pending", None)]
    [seen] = exposures(shop)
    assert (seen["placement"], seen["cohort"], seen["personalized"], seen["unit"], seen["at"]) == (
        "moment:call",
        "personalized",
        1,
        "ann",
        T,
    )
    assert seen["reasons"][0]["code"] == "milestone"


def test_a_back_in_stock_moment_held_out_names_its_item(shop_with: Opens) -> None:
    shop = shop_with(holdout_share=1.0)
    customer(shop)
    wish_for_grey_34(shop)
    stock(shop, trousers("grey", 3))
    shop.moments.engine.step()
    assert verdicts(shop, "ann") == [("back_in_stock", "staff", "suppressed", "holdout")]
    [seen] = exposures(shop)
    assert (seen["placement"], seen["cohort"], seen["personalized"], seen["items"]) == (
        "moment:back_in_stock",
        "holdout",
        0,
        [{"item_id": "trousers-grey"}],
    )

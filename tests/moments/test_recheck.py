"""The outbox worker checks every moment again when it is due (`shop.worker().deliver()`), on SQLite and
PostgreSQL: what changed since the moment was made suppresses it with its reason, an erased person's
moments are gone, a held one goes once its quiet hours end, and a staff task carries its context, each
fact with its provenance and age.

Email goes to a real SMTP server on 127.0.0.1 (`MailFolderSink`), which files each message it accepts:
the tests count the files."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
from tests.moments.respect_support import (
    T,
    customer,
    deliver,
    fly,
    mail_in,
    miles_rule,
    open_shop,
    outbox,
    stock,
    trousers,
)

from shopkeeper.channels.email import MailFolderSink
from shopkeeper.channels.worker import Delivered
from shopkeeper.content.slots import check
from shopkeeper.shop import Shop


class Opens(Protocol):
    def __call__(self, **overrides: Any) -> Shop: ...


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[MailFolderSink]:
    with MailFolderSink(tmp_path / "mail") as sink:
        yield sink


@pytest.fixture
def shop_with(database_url: str, mailbox: MailFolderSink) -> Iterator[Opens]:
    """Opens a shop on this test's database, whose email goes to `mailbox`."""
    with ExitStack() as stack:
        yield lambda **overrides: stack.enter_context(
            open_shop(database_url, **{"smtp_port": mailbox.port, **overrides})
        )


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def statuses(shop: Shop) -> dict[str, tuple[str, str | None]]:
    """Each person's one row: (status, reason)."""
    found: dict[str, tuple[str, str | None]] = {}
    for row in outbox(shop):
        assert row["person"] not in found, f"{row['person']} has more than one moment"
        found[row["person"]] = (row["status"], row["reason"])
    return found


def received(mailbox: MailFolderSink) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in mail_in(mailbox.folder)
    ]


# ---- respect, again ----------------------------------------------------------------------------------------


def test_consent_pause_and_erasure_meanwhile_stop_an_email(shop_with: Opens, mailbox: MailFolderSink) -> None:
    """Five people reach a milestone; before the worker runs, Bob withdraws email consent, Cy and Dee
    pause, and Eve is erased. Only Ann's email goes: once, and the budget it spent itself does not
    stop it."""
    shop = shop_with()
    miles_rule(shop, "mail", channels=("email",))
    people = ("ann", "bob", "cy", "dee", "eve")
    for person in people:
        customer(shop, person, email=f"{person}@example.com")
        fly(shop, person, 2000)
    assert statuses(shop) == {p: ("pending", None) for p in people}
    shop.set_consent("bob", {"email_marketing": False})
    shop.state_preferences("cy", {"pause_until": "2030-02-01"})
    shop.state_preferences("dee", {"contact_frequency": "never"})
    erased = shop.erase("eve")
    assert erased["deleted"]["messages"] == 1

    done = deliver(shop, T + timedelta(minutes=1))

    assert done == Delivered(sent=1, suppressed=3)
    assert statuses(shop) == {
        "ann": ("sent", None),
        "bob": ("suppressed", "no_consent"),
        "cy": ("suppressed", "paused"),
        "dee": ("suppressed", "paused"),
    }
    [mail] = received(mailbox)
    assert mail["To"] == "ann@example.com"
    assert mail["Message-ID"] == outbox(shop, "ann")[0]["message_id"]
    assert deliver(shop, T + timedelta(hours=1)) == Delivered()
    assert len(mail_in(mailbox.folder)) == 1


def test_an_erased_persons_moments_are_gone_and_nothing_is_delivered(
    shop_with: Opens, mailbox: MailFolderSink
) -> None:
    shop = shop_with()
    miles_rule(shop, "mail", channels=("email",), priority=90)
    miles_rule(shop, "call", channels=("staff",), priority=80, transactional=True)
    customer(shop)
    fly(shop, "ann", 2000)
    assert [(r["rule"], r["status"]) for r in outbox(shop)] == [("mail", "pending"), ("call", "pending")]
    assert shop.erase("ann")["deleted"]["messages"] == 2
    assert outbox(shop) == []
    assert deliver(shop, T + timedelta(minutes=1)) == Delivered()
    assert shop.moments.tasks(status="all")["items"] == []
    assert mail_in(mailbox.folder) == []


def test_someone_who_left_the_rules_audience_before_the_send_is_not_contacted(shop_with: Opens) -> None:
    """A rule for gold-tier people (a condition read through the audiences): Ann and Bob reach the
    milestone as gold; Bob drops to silver before the worker runs, so his task is suppressed."""
    shop = shop_with()
    gold = {"all": [{"trait": "tier", "equals": "gold", "source": "observed"}, {"trait": "miles", "gte": 1}]}
    miles_rule(shop, "gold-call", where=gold)
    for person in ("ann", "bob"):
        customer(shop, person)
        shop.identify(user_id=person, traits={"tier": "gold"}, timestamp=T - timedelta(days=1))
        fly(shop, person, 2000)
    assert statuses(shop) == {"ann": ("pending", None), "bob": ("pending", None)}
    shop.identify(user_id="bob", traits={"tier": "silver"}, timestamp=T)

    deliver(shop, T + timedelta(minutes=1))

    assert statuses(shop) == {"ann": ("sent", None), "bob": ("suppressed", "left_audience")}


# ---- the trigger, again ------------------------------------------------------------------------------------


def test_back_in_stock_is_checked_again(shop_with: Opens) -> None:
    """Four people each wish for a pair of trousers in 34, out of stock; all four come back. Then the
    grey sells out again, Bob drops his wish for the blue, and Cy buys the green: only Dee's task is
    made."""
    shop = shop_with()
    colours = {"ann": "grey", "bob": "blue", "cy": "green", "dee": "red"}
    stock(shop, *(trousers(colour, 0) for colour in colours.values()))
    wishes = {}
    for person, colour in colours.items():
        customer(shop, person, email=f"{person}@example.com")
        wishes[person] = shop.moments.add_wish(
            person, {"item_id": f"trousers-{colour}", "variant_id": f"{colour}-34", "source": "stated"}
        )["id"]
    stock(shop, *(trousers(colour, 3) for colour in colours.values()))
    assert shop.moments.engine.step().made == 4
    assert statuses(shop) == {p: ("pending", None) for p in colours}

    stock(shop, trousers("grey", 0))
    shop.moments.drop_wish("bob", wishes["bob"])
    shop.track(
        "Order Completed",
        user_id="cy",
        properties={
            "order_id": "cy-1",
            "revenue": 120,
            "products": [
                {"product_id": "trousers-green", "variant_id": "green-34", "quantity": 1, "price": 120}
            ],
        },
    )
    shop.moments.engine.step()  # reads the order: the wish it fulfils is closed
    done = deliver(shop)

    assert done == Delivered(sent=1, suppressed=3)
    assert statuses(shop) == {
        "ann": ("suppressed", "out_of_stock"),
        "bob": ("suppressed", "wish_closed"),
        "cy": ("suppressed", "wish_closed"),
        "dee": ("sent", None),
    }
    tasks = shop.moments.tasks(status="all")["items"]
    assert [(t["person"], t["item_id"], t["variant_id"]) for t in tasks] == [
        ("dee", "trousers-red", "red-34")
    ]


def test_a_price_drop_that_no_longer_holds_and_a_missing_template(
    shop_with: Opens, mailbox: MailFolderSink
) -> None:
    """Ann viewed the mug and Bob the cup; both drop 25%, and the default rule `price_drop` makes an
    email for each. The mug's price goes back up before the worker runs; the cup's stays down, but the
    shop has no template `price_drop`, so its email is not made."""
    shop = shop_with()
    mug = {"item_id": "mug", "title": "Stoneware mug", "category": "Kitchen > Mugs", "currency": "GBP"}
    cup = {"item_id": "cup", "title": "Espresso cup", "category": "Kitchen > Cups", "currency": "GBP"}
    stock(shop, {**mug, "price": 20.0}, {**cup, "price": 8.0})
    customer(shop, "ann")
    customer(shop, "bob", email="bob@example.com")
    shop.track("Product Viewed", user_id="ann", properties={"product_id": "mug"})
    shop.track("Product Viewed", user_id="bob", properties={"product_id": "cup"})
    shop.moments.engine.step()
    stock(shop, {**mug, "price": 15.0}, {**cup, "price": 6.0})
    shop.moments.engine.step()
    assert [(r["person"], r["rule"], r["channel"], r["status"]) for r in outbox(shop)] == [
        ("ann", "price_drop", "email", "pending"),
        ("bob", "price_drop", "email", "pending"),
    ]
    stock(shop, {**mug, "price": 20.0})

    assert deliver(shop) == Delivered(suppressed=2)

    assert statuses(shop) == {
        "ann": ("suppressed", "no_longer_cheaper"),
        "bob": ("suppressed", "template_abort"),
    }
    bobs = outbox(shop, "bob")[0]["id"]
    with shop.store.engine.connect() as conn:
        [attempt] = shop.store.outbox.attempts(conn, [bobs])
    assert attempt.outcome == "suppressed"
    assert attempt.detail is not None and "price_drop" in attempt.detail
    assert mail_in(mailbox.folder) == []


# ---- quiet hours, at send time -----------------------------------------------------------------------------


def test_a_held_email_goes_when_its_quiet_hours_end(shop_with: Opens, mailbox: MailFolderSink) -> None:
    """Held at 22:00 in London on the eve of summer time, until 08:00 BST (07:00 UTC). Bob, held alike,
    pauses meanwhile: his is suppressed when it falls due."""
    shop = shop_with(quiet_hours="21:00-08:00")
    miles_rule(shop, "mail", channels=("email",))
    customer(shop, "ann")
    customer(shop, "bob", email="bob@example.com")
    late = utc("2030-03-30T22:00:00+00:00")
    fly(shop, "ann", 2000, at=late, zone="Europe/London")
    fly(shop, "bob", 2000, at=late, zone="Europe/London")
    ends = utc("2030-03-31T07:00:00+00:00")
    assert [(r["status"], r["reason"], utc(r["due_at"])) for r in outbox(shop)] == [
        ("held", "quiet_hours", ends),
        ("held", "quiet_hours", ends),
    ]
    shop.state_preferences("bob", {"pause_until": "2030-04-02"})

    assert deliver(shop, ends - timedelta(seconds=1)) == Delivered()
    assert mail_in(mailbox.folder) == []
    assert deliver(shop, ends + timedelta(seconds=1)) == Delivered(sent=1, suppressed=1)

    assert statuses(shop) == {"ann": ("sent", None), "bob": ("suppressed", "paused")}
    [mail] = received(mailbox)
    assert (mail["To"], mail["Subject"]) == ("ann@example.com", "A note for you")
    assert mail["Message-ID"] == outbox(shop, "ann")[0]["message_id"]


def test_a_moment_due_in_quiet_hours_at_send_time_is_held_again(
    shop_with: Opens, mailbox: MailFolderSink
) -> None:
    """Made at noon in Tokyo with a four-hour delay, it falls due at 16:00 there (07:00 UTC). Meanwhile
    the person's newest event comes from Honolulu, where it is then 21:00: it is held again."""
    shop = shop_with(quiet_hours="21:00-08:00")
    miles_rule(shop, "mail", channels=("email",), delay_seconds=4 * 3600)
    customer(shop)
    noon_tokyo = utc("2030-01-15T12:00:00+09:00")
    fly(shop, "ann", 2000, at=noon_tokyo, zone="Asia/Tokyo")
    due = noon_tokyo + timedelta(hours=4)
    assert [(r["status"], utc(r["due_at"])) for r in outbox(shop)] == [("pending", due)]
    shop.track("Page Viewed", user_id="ann", timestamp=due, context={"timezone": "Pacific/Honolulu"})

    assert deliver(shop, due + timedelta(seconds=1)) == Delivered(held=1)

    [row] = outbox(shop)
    # 07:00 UTC is 21:00 in Honolulu (UTC-10): held until 08:00 there, 18:00 UTC.
    assert (row["status"], row["reason"], utc(row["due_at"])) == (
        "held",
        "quiet_hours",
        utc("2030-01-15T08:00:00-10:00"),
    )
    assert mail_in(mailbox.folder) == []


# ---- the staff task ----------------------------------------------------------------------------------------


def label_date(at: datetime) -> str:
    return f"{at.day} {at:%b %Y}"


def test_a_staff_task_says_who_why_now_and_what_we_know(shop_with: Opens) -> None:
    """Ann states her size, a first name in capitals and that she likes a call; she put the blue
    trousers in her cart, looked at the grey in 34 and bought the blue. Staff called her once before.
    Bob's stated first name is a placeholder: the task leaves it out."""
    shop = shop_with(contact_budget='{"day": 9, "week": 9}')
    stock(shop, trousers("grey", 0), trousers("blue", 4))
    miles_rule(shop, "welcome", channels=("staff",))
    told_from = datetime.now(UTC)
    customer(shop, "ann", size="34", first_name="ANN", preferred_channels=["phone"])
    customer(shop, "bob", email="bob@example.com", size="34", first_name="test")
    told_until = datetime.now(UTC)
    shop.track(
        "Product Added", user_id="ann", properties={"product_id": "trousers-blue", "variant_id": "blue-34"}
    )
    shop.track(
        "Product Viewed", user_id="ann", properties={"product_id": "trousers-grey", "variant_id": "grey-34"}
    )
    shop.track(
        "Order Completed",
        user_id="ann",
        properties={
            "order_id": "ann-1",
            "revenue": 120,
            "products": [
                {"product_id": "trousers-blue", "variant_id": "blue-34", "quantity": 1, "price": 120}
            ],
        },
    )
    shop.identify(user_id="ann", traits={"miles": 2000})
    shop.moments.engine.step()
    assert deliver(shop) == Delivered(sent=1)  # the welcome call: her last contact
    shop.profile("ann")  # a read of her profile derives what her events say (her guessed tastes)
    for person in ("ann", "bob"):
        shop.moments.add_wish(
            person, {"item_id": "trousers-grey", "variant_id": "grey-34", "source": "staff"}
        )
    stock(shop, trousers("grey", 3))
    shop.moments.engine.step()
    assert deliver(shop) == Delivered(sent=2)

    tasks = {
        t["person"]: t["context"]
        for t in shop.moments.tasks(status="all")["items"]
        if t["rule"] == "back_in_stock"
    }
    ann, bob = tasks["ann"], tasks["bob"]

    assert check("first_name", "ANN", source="stated").value == "Ann"
    assert {k: ann["name"][k] for k in ("value", "source", "provenance")} == {
        "value": "Ann",
        "source": "stated",
        "provenance": "you told us",
    }
    assert ann["why_now"] == "Ann asked about the Grey wool trousers; it is back in 34."
    assert ann["say"] == "Hello Ann, the Grey wool trousers you asked about are back in 34."
    assert check("first_name", "test", source="stated").value is None
    assert bob["name"] is None
    assert bob["why_now"] == "This customer asked about the Grey wool trousers; it is back in 34."
    assert bob["say"] == "Hello, the Grey wool trousers you asked about are back in 34."

    facts = {f["key"]: f for f in ann["facts"]}
    assert sorted(facts) == ["favourite_categories", "favourite_colours", "preferred_channels", "size"]
    size = facts["size"]
    assert (size["value"], size["source"], size["provenance"], size["age_days"]) == (
        "34",
        "stated",
        "you told us",
        0,
    )
    told_at = datetime.fromisoformat(size["at"])
    assert told_from <= told_at <= told_until
    assert size["label"] == f"size 34, you told us, {label_date(told_at)}"
    assert (
        facts["preferred_channels"]["label"]
        == f"preferred channels phone, you told us, {label_date(told_at)}"
    )
    guessed_at = datetime.fromisoformat(facts["favourite_colours"]["at"])
    assert [
        (f["source"], f["label"]) for f in (facts["favourite_categories"], facts["favourite_colours"])
    ] == [
        ("inferred", f"favourite categories Clothing > Trousers, we guessed, {label_date(guessed_at)}"),
        ("inferred", f"favourite colours blue, we guessed, {label_date(guessed_at)}"),
    ]

    history = ann["history"]
    assert {
        kind: [(e["item_id"], e["title"], e["provenance"], e["age_days"]) for e in seen]
        for kind, seen in history.items()
    } == {
        "tried": [("trousers-blue", "Blue wool trousers", "we saw", 0)],
        "viewed": [("trousers-grey", "Grey wool trousers", "we saw", 0)],
        "bought": [("trousers-blue", "Blue wool trousers", "we saw", 0)],
    }
    assert {k: ann["last_contact"][k] for k in ("channel", "rule", "age_days")} == {
        "channel": "staff",
        "rule": "welcome",
        "age_days": 0,
    }
    assert bob["last_contact"] is None
    assert (ann["item"]["item_id"], ann["variant"]["variant_id"], ann["variant"]["stock"]) == (
        "trousers-grey",
        "grey-34",
        3,
    )
    assert ann["moment"]["wish"]["source"] == "staff"
    assert date.fromisoformat(ann["last_contact"]["at"][:10]) >= told_from.date()

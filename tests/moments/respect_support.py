"""Shared by the tests of respect: a shop on a test database, a rule that fires on demand, a customer, the
trousers of the salesman story, and readers of the outbox and of the decision log.

Most moments here come from a `milestone` rule on the trait `miles`: an `identify` that carries miles at
or over the rule's value makes one moment per rule and person, at the event's time. The events carry
fixed times (`T`, years ahead), and the engine steps at those times, so nothing depends on today's date.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from shopkeeper.catalog.items import parse_items
from shopkeeper.channels.worker import Delivered
from shopkeeper.moments.engine import Stepped
from shopkeeper.settings import Settings
from shopkeeper.shop import Shop
from shopkeeper.store.schema import decisions

# A Tuesday noon, UTC, far from any change of summer time in the zones used here.
T = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)
CLOSED_PORT = 9  # discard: nothing listens on 127.0.0.1:9, so an email that should not go cannot
EMAIL = "ann@example.com"

# An email template that any moment can fill: a greeting and the preference-centre link.
NOTE = {
    "channel": "email",
    "subject": "A note for you",
    "preheader": "A short note from the shop",
    "html": '<p>Hello {{ first_name }}, a note.</p><p><a href="{{ preferences_url }}">Choose what we '
    "send you</a></p>",
    "fields": {
        "first_name": {"slot": "first_name", "from": "first_name", "fallback": "there"},
        "preferences_url": {"slot": "url", "from": "preferences_url", "fallback": "abort"},
    },
}


def settings(url: str, **overrides: Any) -> Settings:
    """A shop's settings for these tests: email set up (at a port where nothing listens unless a test
    names its own), no quiet hours and no holdout unless the test is about them."""
    values: dict[str, Any] = {
        "database_url": url,
        "quiet_hours": "",
        "holdout_share": 0,
        "smtp_host": "127.0.0.1",
        "smtp_port": CLOSED_PORT,
        "mail_from": "shop@example.com",
        "shop_name": "Grey & Co",
        "outbox_retry_seconds": 3600,
        **overrides,
    }
    return Settings(**values)


@contextmanager
def open_shop(url: str, **overrides: Any) -> Iterator[Shop]:
    """A shop whose engine has placed its cursors (its first step), with the `note` template."""
    shop = Shop.from_settings(settings(url, **overrides))
    try:
        shop.content.save("note", NOTE, by="tests")
        shop.moments.engine.step()
        yield shop
    finally:
        shop.close()


def miles_rule(
    shop: Shop,
    name: str,
    *,
    channels: Sequence[str] = ("staff",),
    value: float = 1000,
    priority: int = 50,
    **more: Any,
) -> None:
    """A milestone rule that fires when a person's `miles` reach `value` (email ones use `note`)."""
    body: dict[str, Any] = {
        "trigger": "milestone",
        "channels": list(channels),
        "priority": priority,
        "params": {"trait": "miles", "value": value},
        **more,
    }
    if "email" in channels:
        body.setdefault("template", "note")
    shop.moments.put_rule(name, body, origin="http")


def customer(shop: Shop, user_id: str = "ann", *, email: str | None = EMAIL, **preferences: Any) -> None:
    """A person known by `user_id` (and `email`, when given), with stated `preferences`."""
    shop.identify(user_id=user_id, traits={"email": email} if email else {}, timestamp=T - timedelta(days=30))
    if preferences:
        shop.state_preferences(user_id, preferences)


def fly(shop: Shop, user_id: str, miles: float, *, at: datetime = T, zone: str | None = None) -> Stepped:
    """The person reaches `miles` at `at` (their device in `zone`, when given); the engine steps then."""
    context = {"timezone": zone} if zone else None
    shop.identify(user_id=user_id, traits={"miles": miles}, timestamp=at, context=context)
    return shop.moments.engine.step(now=at)


def deliver(shop: Shop, now: datetime | None = None) -> Delivered:
    """One pass of an outbox worker, as of `now` (its SMTP connection closed afterwards)."""
    with shop.worker() as worker:
        return worker.deliver(now)


def outbox(shop: Shop, user_id: str | None = None) -> list[dict[str, Any]]:
    """The outbox's rows (for one person, when named), oldest first."""
    return list(reversed(shop.moments.outbox(person=user_id, limit=1000)["items"]))


def verdicts(shop: Shop, user_id: str | None = None) -> list[tuple[str, str | None, str, str | None]]:
    """(rule, channel, status, reason) of every row, oldest first."""
    return [(r["rule"], r["channel"], r["status"], r["reason"]) for r in outbox(shop, user_id)]


def exposures(shop: Shop) -> list[dict[str, Any]]:
    """Every row of the decision log, oldest first (then by placement and person), as moments write them."""
    with shop.store.engine.connect() as conn:
        rows = conn.execute(
            select(decisions).order_by(decisions.c.at, decisions.c.placement, decisions.c.unit)
        ).all()
    return [
        {
            "placement": r.placement,
            "cohort": r.cohort,
            "personalized": r.personalized,
            "unit": r.unit,
            "items": orjson.loads(r.items),
            "reasons": orjson.loads(r.reasons),
            "at": r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC),
        }
        for r in rows
    ]


def trousers(colour: str, stock_34: int, *, price: float = 120.0) -> dict[str, Any]:
    """Wool trousers in sizes 32 to 36, five of each but `stock_34` in size 34."""
    return {
        "item_id": f"trousers-{colour}",
        "title": f"{colour.title()} wool trousers",
        "category": "Clothing > Trousers",
        "price": price,
        "currency": "GBP",
        "attributes": {"colour": colour, "url": "https://shop.example/trousers"},
        "variants": [
            {
                "variant_id": f"{colour}-{size}",
                "attributes": {"size": str(size), "colour": colour},
                "stock": stock_34 if size == 34 else 5,
            }
            for size in range(32, 37)
        ],
    }


def stock(shop: Shop, *items: dict[str, Any], at: datetime | None = None) -> None:
    shop.store.catalog.upsert(parse_items(list(items)), now=at)


def wish_for_grey_34(shop: Shop, user_id: str = "ann") -> int:
    """The grey trousers are out in 34, and the person asks for them in 34: the wish's id."""
    stock(shop, trousers("grey", 0), trousers("blue", 4))
    wish = shop.moments.add_wish(
        user_id, {"item_id": "trousers-grey", "variant_id": "grey-34", "source": "stated"}
    )
    return int(wish["id"])


def mail_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.eml"))

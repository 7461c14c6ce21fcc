"""Wishes, the promise ledger: where a wish comes from, that a person's wishes for one thing stay one wish,
and how a wish ends (dropped, expired, fulfilled by a purchase). On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.moments.moments_support import Trousers, messages, open_shop, order, person, view, wishes

from shopkeeper.errors import InvalidInput, NotFound, ShopkeeperError
from shopkeeper.shop import Shop

GREY_34 = {"product_id": "trousers-grey", "variant_id": "grey-34"}


@pytest.fixture
def shop(database_url: str) -> Iterator[Shop]:
    with open_shop(database_url) as opened:
        Trousers(opened, out=(("grey", "34"), ("grey", "35")))
        yield opened


def step(shop: Shop) -> None:
    shop.moments.engine.step()


def only(found: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(found) == 1, found
    return found[0]


# ---- where wishes come from ------------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["Product Viewed", "Product Added"])
def test_a_view_or_cart_of_an_out_of_stock_variant_is_an_observed_wish(shop: Shop, event: str) -> None:
    person(shop, "ann")
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    view(shop, "ann", GREY_34, event=event, timestamp=at.isoformat(), messageId="m-grey")
    view(shop, "ann", {"product_id": "trousers-blue", "variant_id": "blue-34"}, event=event)  # in stock
    step(shop)
    wish = only(wishes(shop, "ann"))
    assert (wish["item_id"], wish["variant_id"], wish["attributes"]) == ("trousers-grey", "grey-34", {})
    assert (wish["source"], wish["status"], wish["notified_at"]) == ("observed", "open", None)
    assert wish["evidence"] == [{"source": "observed", "at": at.isoformat(), "message_id": "m-grey"}]
    assert datetime.fromisoformat(wish["expires_at"]) == at + timedelta(days=90)


def test_a_view_of_an_in_stock_variant_records_no_wish(shop: Shop) -> None:
    person(shop, "ann", {"size": "36"})
    view(shop, "ann", {"product_id": "trousers-grey", "variant_id": "grey-33"})
    view(shop, "ann", {"product_id": "trousers-grey"})  # their stated size, 36, is in stock
    view(shop, "ann", {"product_id": "no-such-item", "variant_id": "x-34"})
    step(shop)
    assert wishes(shop, "ann") == []


def test_a_view_of_the_item_is_a_wish_for_the_stated_size_when_that_is_out(shop: Shop) -> None:
    person(shop, "ann", {"size": "34"})
    view(shop, "ann", {"product_id": "trousers-grey"})
    step(shop)
    wish = only(wishes(shop, "ann"))
    assert (wish["variant_id"], wish["source"]) == ("grey-34", "observed")


def test_a_back_in_stock_request_is_a_stated_wish(shop: Shop) -> None:
    person(shop, "ann")
    properties = {**GREY_34, "note": "for the wedding in June"}
    shop.track("Back In Stock Requested", user_id="ann", properties=properties, messageId="form-1")
    step(shop)
    wish = only(wishes(shop, "ann"))
    assert (wish["variant_id"], wish["source"], wish["status"]) == ("grey-34", "stated", "open")
    assert wish["note"] == "for the wedding in June"
    assert [(e["source"], e["message_id"], e["note"]) for e in wish["evidence"]] == [
        ("stated", "form-1", "for the wedding in June")
    ]


def test_a_request_by_size_and_colour_is_a_wish_for_the_one_variant_they_name(shop: Shop) -> None:
    person(shop, "ann", {"size": "34"})
    shop.track(
        "Back In Stock Requested",
        user_id="ann",
        properties={"product_id": "trousers-grey", "size": "35", "colour": "Grey"},
    )
    step(shop)
    wish = only(wishes(shop, "ann"))
    assert (wish["variant_id"], wish["attributes"]) == ("grey-35", {})  # the size they named, not 34


@pytest.mark.parametrize(
    ("stated", "variant"),
    [
        ({"size": "34"}, "grey-34"),
        ({"size": "34", "sizes": {"Clothing > Trousers": "35", "Shirts": "L"}}, "grey-35"),
        ({"size": "34", "sizes": {"trousers": "35"}}, "grey-35"),
        ({"size": "34", "sizes": {"Shirts": "L"}}, "grey-34"),
    ],
)
def test_a_request_without_a_size_wants_the_stated_size_for_the_category(
    shop: Shop, stated: dict[str, Any], variant: str
) -> None:
    person(shop, "ann", stated)
    shop.track("Back In Stock Requested", user_id="ann", properties={"product_id": "trousers-grey"})
    step(shop)
    wish = only(wishes(shop, "ann"))
    assert (wish["variant_id"], wish["source"]) == (variant, "stated")


def test_staff_record_a_wish_in_the_stated_size(shop: Shop) -> None:
    person(shop, "ann", {"size": "34"})
    made = shop.moments.add_wish(
        "ann",
        {"item_id": "trousers-grey", "attributes": {"color": "grey"}, "source": "staff", "note": "call me"},
    )
    assert (made["item_id"], made["variant_id"], made["source"]) == ("trousers-grey", "grey-34", "staff")
    assert (made["note"], [e["source"] for e in made["evidence"]]) == ("call me", ["staff"])
    assert wishes(shop, "ann") == [made]


def test_an_attribute_wish_with_no_one_variant_keeps_its_attributes(shop: Shop) -> None:
    person(shop, "ann", {"size": "31"})  # no such size: no variant has these attributes
    made = shop.moments.add_wish("ann", {"item_id": "trousers-grey", "source": "staff"})
    assert (made["variant_id"], made["attributes"]) == (None, {"size": "31"})


# ---- one wish per person and thing -------------------------------------------------------------------


def test_one_wish_per_person_and_variant_the_strongest_source_wins(shop: Shop) -> None:
    person(shop, "ann")
    person(shop, "bob")
    view(shop, "ann", GREY_34)
    view(shop, "bob", GREY_34)
    step(shop)
    assert only(wishes(shop, "ann"))["source"] == "observed"

    shop.moments.add_wish("ann", {"item_id": "trousers-grey", "variant_id": "grey-34", "source": "staff"})
    assert only(wishes(shop, "ann"))["source"] == "staff"

    shop.track("Back In Stock Requested", user_id="ann", properties=GREY_34)
    step(shop)
    view(shop, "ann", GREY_34)  # seen again: weaker than what they said, so it stays stated
    step(shop)
    shop.moments.add_wish("ann", {"item_id": "trousers-grey", "variant_id": "grey-34", "source": "staff"})

    wish = only(wishes(shop, "ann"))
    assert wish["source"] == "stated"
    assert [e["source"] for e in wish["evidence"]] == ["observed", "staff", "stated", "observed", "staff"]
    bobs = only(wishes(shop, "bob"))
    assert (bobs["source"], len(bobs["evidence"])) == ("observed", 1)
    assert bobs["id"] != wish["id"]


def test_a_wish_for_another_variant_is_another_wish(shop: Shop) -> None:
    person(shop, "ann")
    view(shop, "ann", GREY_34)
    view(shop, "ann", {"product_id": "trousers-grey", "variant_id": "grey-35"})
    step(shop)
    assert sorted(w["variant_id"] for w in wishes(shop, "ann")) == ["grey-34", "grey-35"]


# ---- how a wish ends -----------------------------------------------------------------------------------


def test_a_dropped_wish_makes_no_moment(shop: Shop) -> None:
    person(shop, "ann")
    person(shop, "bob")
    made = shop.moments.add_wish(
        "ann", {"item_id": "trousers-grey", "variant_id": "grey-34", "source": "staff"}
    )
    with pytest.raises(NotFound) as caught:
        shop.moments.drop_wish("bob", made["id"])  # not bob's
    assert caught.value.field == "wish_id"
    dropped = shop.moments.drop_wish("ann", made["id"])
    assert dropped["status"] == "dropped"
    assert only(wishes(shop, "ann"))["status"] == "dropped"

    Trousers(shop, out=())  # everything back in stock
    step(shop)
    assert messages(shop) == []


def test_daily_expires_the_wishes_past_their_time(shop: Shop) -> None:
    person(shop, "ann")
    soon = datetime.now(UTC) + timedelta(hours=1)
    short = shop.moments.add_wish(
        "ann",
        {
            "item_id": "trousers-grey",
            "variant_id": "grey-34",
            "source": "staff",
            "expires_at": soon.isoformat(),
        },
    )
    long = shop.moments.add_wish(
        "ann", {"item_id": "trousers-grey", "variant_id": "grey-35", "source": "staff"}
    )
    created = datetime.fromisoformat(long["created_at"])
    assert datetime.fromisoformat(long["expires_at"]) - created == timedelta(days=90)

    shop.moments.engine.daily(now=soon - timedelta(minutes=1))
    assert {w["variant_id"]: w["status"] for w in wishes(shop, "ann")} == {
        "grey-34": "open",
        "grey-35": "open",
    }
    later = soon + timedelta(minutes=1)
    shop.moments.engine.daily(now=later)
    assert {w["variant_id"]: w["status"] for w in wishes(shop, "ann")} == {
        "grey-34": "expired",
        "grey-35": "open",
    }
    assert short["id"] != long["id"]


def test_a_purchase_of_the_item_fulfils_the_wish(shop: Shop) -> None:
    person(shop, "ann")
    shop.moments.add_wish("ann", {"item_id": "trousers-grey", "variant_id": "grey-34", "source": "staff"})
    order(shop, "ann", "o-1", "trousers-blue")
    step(shop)
    assert only(wishes(shop, "ann"))["status"] == "open"  # the blue ones are not what they wished for
    order(shop, "ann", "o-2", "trousers-grey")
    step(shop)
    assert only(wishes(shop, "ann"))["status"] == "fulfilled"

    Trousers(shop, out=())
    step(shop)
    assert messages(shop, "ann") == []


# ---- bad wishes ----------------------------------------------------------------------------------------

VALID = {"item_id": "trousers-grey", "source": "staff"}
BAD_WISHES: dict[str, tuple[Any, type[ShopkeeperError], str]] = {
    "unknown field": ({**VALID, "colour": "grey"}, InvalidInput, "colour"),
    "bad source": ({**VALID, "source": "friend"}, InvalidInput, "source"),
    "NUL in the item": ({**VALID, "item_id": "trousers\x00grey"}, InvalidInput, "item_id"),
    "NUL in the note": ({**VALID, "note": "call\x00me"}, InvalidInput, "note"),
    "no item": ({"source": "staff"}, InvalidInput, "item_id"),
    "a number for a size": ({**VALID, "attributes": {"size": 34}}, InvalidInput, "attributes.size"),
    "expired": ({**VALID, "expires_at": "2001-01-01T00:00:00Z"}, InvalidInput, "expires_at"),
    "not an object": (["trousers-grey"], InvalidInput, "body"),
    "unknown item": ({**VALID, "item_id": "jumper"}, NotFound, "item_id"),
    "unknown variant": ({**VALID, "variant_id": "grey-99"}, NotFound, "variant_id"),
}


def test_a_bad_wish_names_its_field_and_records_nothing(shop: Shop) -> None:
    """Every case in one shop (a shop per case costs a migration each)."""
    person(shop, "ann")
    found: dict[str, tuple[type[Exception] | None, str | None]] = {}
    for case, (raw, _, _) in BAD_WISHES.items():
        try:
            shop.moments.add_wish("ann", raw)
        except ShopkeeperError as exc:
            found[case] = (type(exc), exc.field)
        else:
            found[case] = (None, None)
    assert found == {case: (error, field) for case, (_, error, field) in BAD_WISHES.items()}
    assert wishes(shop, "ann") == []

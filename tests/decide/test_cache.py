"""What decide keeps between calls: served from memory while nothing changed, read afresh the moment
anything about the person or the catalog changes, even when another process made the change."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.decide.test_pipeline import ITEMS, ORDERS, order

from shopkeeper import Shop
from shopkeeper.catalog import parse_items
from shopkeeper.decide.cache import PersonState, PersonStates
from shopkeeper.decide.pipeline import Decider
from shopkeeper.recommend.base import History
from shopkeeper.settings import Settings
from shopkeeper.store.serving import Found, Lookup


def _open(url: str, **settings: Any) -> Shop:
    return Shop.open(url, settings=Settings(**settings))


@pytest.fixture
def shops(database_url: str) -> Iterator[tuple[Shop, Shop]]:
    """Two shops on one database, as two serving processes: `here` decides, `there` changes things."""
    here = _open(database_url, warm_people=0)
    here.store.catalog.upsert(parse_items(ITEMS))
    here.ingest([order(*o) for o in ORDERS])
    here.train()
    there = _open(database_url, warm_people=0)
    yield here, there
    there.close()
    here.close()


def decider(shop: Shop) -> Decider:
    return shop._deciding()


def no_scoring(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, scoring anyone fails the test: what is kept must be used."""
    bundle = decider(shop).bundle()
    assert bundle is not None

    def fail(history: History, now: float) -> Any:
        raise AssertionError("scored again, though nothing about the person changed")

    monkeypatch.setattr(bundle.model, "score", fail)


def shown(shop: Shop, user: str, **kwargs: Any) -> list[str]:
    return [i.item_id for i in shop.decide(user_id=user, n=10, **kwargs).items]


def test_a_second_decision_is_served_from_what_was_kept(
    shops: tuple[Shop, Shop], monkeypatch: pytest.MonkeyPatch
) -> None:
    here, _ = shops
    first = here.decide(user_id="ann", n=10)
    no_scoring(here, monkeypatch)
    again = here.decide(user_id="ann", n=10)
    assert [(i.item_id, i.score, [r.text for r in i.reasons]) for i in again.items] == [
        (i.item_id, i.score, [r.text for r in i.reasons]) for i in first.items
    ]
    assert [r.text for r in again.reasons] == [r.text for r in first.reasons]
    assert again.decision_id != first.decision_id
    # Fewer items come from the same kept ranking; a placement without repeats ranks once more.
    assert shown(here, "ann", placement="web")[:3] == [i.item_id for i in first.items][:3]


def _purchase(there: Shop) -> None:
    there.ingest([order("ann", "90", ["candle"], 20)])


def _consent(there: Shop) -> None:
    there.set_consent("ann", {"personalization": False})


def _dislike(there: Shop) -> None:
    there.state_preferences("ann", {"disliked_categories": ["Kitchen"]})


def _out_of_stock(there: Shop) -> None:
    mug = next(i for i in ITEMS if i["item_id"] == "mug-red")
    there.store.catalog.upsert(
        parse_items([{**mug, "variants": [{"variant_id": "mug-red-1", "attributes": {}, "stock": 0}]}])
    )


def _erase(there: Shop) -> None:
    there.erase("ann")


CHANGES: dict[str, tuple[Callable[[Shop], None], Callable[[Shop], None]]] = {
    "a purchase": (_purchase, lambda here: _assert_bought_candle(here)),
    "a consent withdrawn": (_consent, lambda here: _assert_not_personalized(here)),
    "a stated dislike": (_dislike, lambda here: _assert_no_kitchen(here)),
    "an item out of stock": (_out_of_stock, lambda here: _assert_no_red_mug(here)),
    "an erasure": (_erase, lambda here: _assert_not_personalized(here)),
}


def _assert_bought_candle(here: Shop) -> None:
    decision = here.decide(user_id="ann", n=10)
    candle = next(i for i in decision.items if i.item_id == "candle")
    assert candle.reasons[0].text == "Because you bought T-light holder on 20 May 2011"


def _assert_not_personalized(here: Shop) -> None:
    decision = here.decide(user_id="ann", n=10)
    assert not decision.personalized
    assert not any(r.provenance.get("signal") == "repeat" for i in decision.items for r in i.reasons)


def _assert_no_kitchen(here: Shop) -> None:
    decision = here.decide(user_id="ann", n=10)
    assert not [i.item_id for i in decision.items if i.item_id.startswith("mug")]


def _assert_no_red_mug(here: Shop) -> None:
    decision = here.decide(user_id="ann", n=10)
    assert "mug-red" not in [i.item_id for i in decision.items]
    assert any(r.provenance.get("rule") == "in_stock" for r in decision.reasons)


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_made_by_another_process_is_seen_by_the_next_decision(
    shops: tuple[Shop, Shop], change: str
) -> None:
    here, there = shops
    before = here.decide(user_id="ann", n=10)
    assert before.personalized and "mug-red" in [i.item_id for i in before.items]
    make, check = CHANGES[change]
    make(there)  # nothing tells `here`: its next call's one check must notice
    check(here)


@pytest.mark.parametrize(
    "change",
    ["event", "purchase", "consent", "rejection", "merge", "rebuild pending"],
)
def test_every_kind_of_change_to_a_person_changes_their_stamp(shops: tuple[Shop, Shop], change: str) -> None:
    here, there = shops
    lookup = Lookup(here.store.engine)
    here.profile("ann")  # their profile is built: nothing is pending
    before = lookup.find(("ann",))
    assert before is not None and not before.dirty
    if change == "event":
        there.track(user_id="ann", event="Newsletter Opened", properties={})
    elif change == "purchase":
        _purchase(there)
    elif change == "consent":
        _consent(there)
    elif change == "rejection":
        there.privacy.reject("ann", {"key": "favourite_categories"}, there.privacy_actor)
    elif change == "merge":
        there.page(anonymous_id="visitor-9", name="Home")
        there.identify(user_id="ann", anonymous_id="visitor-9", traits={})
    else:
        there.identify(user_id="ann", traits={"city": "Leeds"})
    after = lookup.find(("ann",))
    assert after is not None and after.person_id == before.person_id
    assert after.stamp != before.stamp


def test_the_same_person_is_found_by_any_of_their_ids(shops: tuple[Shop, Shop]) -> None:
    here, _ = shops
    here.identify(user_id="ann", anonymous_id="ann-phone", traits={"email": "ann@example.com"})
    lookup = Lookup(here.store.engine)
    found = {ref: lookup.find((ref,)) for ref in ("ann", "ann-phone", "ann@example.com")}
    assert len({f.person_id for f in found.values() if f is not None}) == 1
    assert lookup.find(("nobody",)) is None
    assert lookup.find(("nobody", "ann")) == found["ann"]
    assert lookup.find(("bad\x00id",)) is None


def kept_after_deciding(shop: Shop, user: str) -> tuple[PersonStates, Found, PersonState]:
    """Decide for `user`, then: what `shop` keeps, how it found them, and their kept state."""
    shop.decide(user_id=user, n=5)
    found = Lookup(shop.store.engine).find((user,))
    assert found is not None
    kept = decider(shop)._states
    state = kept.get(found)
    assert state is not None
    return kept, found, state


def test_an_erased_person_is_not_kept_again(shops: tuple[Shop, Shop]) -> None:
    here, _ = shops
    kept, found, state = kept_after_deciding(here, "ann")
    here.erase("ann")
    assert kept.get(found) is None
    kept.put(state)  # a read that raced the erasure cannot put them back
    assert kept.get(found) is None


def test_a_new_model_is_prepared_for_recent_people_in_the_background(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _open(database_url, warm_people=3) as shop:
        shop.store.catalog.upsert(parse_items(ITEMS))
        shop.ingest([order(*o) for o in ORDERS])
        shop.train()
        deciding = decider(shop)
        assert deciding.bundle() is not None  # loading the model starts the preparing
        deadline = time.monotonic() + 30
        while deciding.warmed is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert deciding.warmed == 1
        # The three most recent buyers (eve, cat, bob: days 11, 10, 9) are ready; ann is not.
        no_scoring(shop, monkeypatch)
        for user in ("eve", "cat", "bob"):
            assert shop.decide(user_id=user, n=5).personalized
        with pytest.raises(AssertionError, match="scored again"):
            shop.decide(user_id="ann", n=5)


def test_an_erasure_through_another_process_leaves_this_ones_memory(shops: tuple[Shop, Shop]) -> None:
    here, there = shops
    kept, found, _ = kept_after_deciding(here, "ann")
    there.erase("ann")
    decider(here).refresh()  # the next call looks, as it does every 5 seconds
    here.decide(user_id="bob", n=5)
    assert kept.get(found) is None
    assert found.person_id in kept._forgotten


def test_after_an_action_only_the_history_is_read_again(shops: tuple[Shop, Shop]) -> None:
    here, there = shops
    stated_before = here.decide(user_id="ann", n=10)
    assert "candle" not in [i.item_id for i in stated_before.items[:3]]
    there.ingest([order("ann", "91", ["candle"], 21)])
    after = here.decide(user_id="ann", n=10)
    candle = next(i for i in after.items if i.item_id == "candle")
    assert candle.reasons[0].text == "Because you bought T-light holder on 21 May 2011"
    # The action left the profile to be rebuilt by its next read: deciding did not wait for it.
    found = Lookup(here.store.engine).find(("ann",))
    assert found is not None and found.dirty


def test_a_track_that_states_something_is_read_in_full(shops: tuple[Shop, Shop]) -> None:
    here, there = shops
    here.decide(user_id="ann", n=10)
    there.track(
        user_id="ann",
        event="Preferences Saved",
        properties={"disliked_categories": ["Kitchen"]},
        context={"shopkeeper": {"stated": True}},
    )
    _assert_no_kitchen(here)

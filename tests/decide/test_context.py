"""The decide call's `context` is used, not dropped: logged with the decision, read by the rules (the item
being viewed is left out), exported and erased with the person, and refused clearly when it is bad."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from tests.conftest import LiveServer
from tests.decide.test_pipeline import ITEMS, ORDERS, order

from shopkeeper import InvalidInput, Shop
from shopkeeper.catalog import parse_items
from shopkeeper.decide.pipeline import CONTEXT_BYTES
from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.recommend import train_default
from shopkeeper.store.schema import decisions
from shopkeeper.training import train

VIEWING = {"item_id": "mug-red", "page": {"path": "/products/mug-red"}, "locale": "en-GB"}


@pytest.fixture
def shop(database_url: str) -> Iterator[Shop]:
    opened = Shop.open(database_url)
    opened.store.catalog.upsert(parse_items(ITEMS))
    opened.ingest([order(*o) for o in ORDERS])
    opened.train()
    yield opened
    opened.close()


def _logged(shop: Shop) -> dict[str, Any]:
    shop.close_decisions()
    with shop.store.engine.connect() as conn:
        rows = conn.execute(select(decisions.c.decision_id, decisions.c.context)).all()
    return {decision_id: None if context is None else orjson.loads(context) for decision_id, context in rows}


def test_the_item_being_viewed_is_left_out_and_the_context_logged(shop: Shop) -> None:
    plain = shop.decide(user_id="ann", n=5)
    assert "mug-red" in [i.item_id for i in plain.items]  # ann bought it twice: shown when not viewed
    viewing = shop.decide(user_id="ann", n=5, context=VIEWING)
    assert "mug-red" not in [i.item_id for i in viewing.items] and len(viewing.items) == 5
    [left_out] = [r for r in viewing.reasons if r.provenance.get("context") == "item_id"]
    assert left_out.text == "Left out the item you are looking at" and left_out.provenance["count"] == 1
    logged = _logged(shop)
    assert logged == {plain.decision_id: None, viewing.decision_id: VIEWING}


def test_a_context_the_rules_do_not_read_changes_nothing_but_is_logged(shop: Shop) -> None:
    plain = shop.decide(user_id="bob", n=4)
    other = shop.decide(user_id="bob", n=4, context={"page": "home", "item_id": "not-in-the-shop"})
    assert [i.item_id for i in other.items] == [i.item_id for i in plain.items]
    assert [r.text for r in other.reasons] == [r.text for r in plain.reasons]
    assert _logged(shop)[other.decision_id] == {"page": "home", "item_id": "not-in-the-shop"}


@pytest.mark.parametrize(
    "context",
    [
        {"item_id": 85099},  # an item id is a string
        {"x": "y" * CONTEXT_BYTES},  # too much to log
        {"when": object()},  # not JSON
        ["item_id", "mug"],  # not an object
    ],
)
def test_a_bad_context_is_refused_naming_the_field(shop: Shop, context: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        shop.decide(user_id="ann", context=context)
    assert refused.value.field == "context"


def test_the_context_is_exported_and_erased_with_the_person(shop: Shop) -> None:
    shop.decide(user_id="cat", n=3, context={"page": {"path": "/"}})
    shop.close_decisions()
    [shown] = shop.export("cat")["decisions"]
    assert shown["context"] == {"page": {"path": "/"}}
    assert shop.erase("cat")["deleted"]["decisions"] == 1
    assert _logged(shop) == {}


def test_over_http_the_context_is_read_and_a_bad_one_is_a_400(live_server: LiveServer) -> None:
    live_server.store.catalog.upsert(parse_items(ITEMS))
    Ingestor(live_server.store, record_consent=consent_recorder()).ingest([order(*o) for o in ORDERS])
    train(live_server.store, train_default)
    admin = {"Authorization": f"Bearer {live_server.admin_key}"}
    url = f"{live_server.url}/v1/decide"
    body = {"userId": "ann", "n": 5, "context": {"item_id": "mug-red"}}
    shown = httpx.post(url, headers=admin, json=body)
    assert shown.status_code == 200, shown.text
    assert "mug-red" not in [i["item_id"] for i in shown.json()["items"]]
    for context in ({"item_id": 1}, {"x": "y" * CONTEXT_BYTES}, "home"):
        refused = httpx.post(url, headers=admin, json={"userId": "ann", "context": context})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["field"] == "context"

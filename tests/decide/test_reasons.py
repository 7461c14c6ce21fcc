"""Each item's reason names the evidence that really holds for it, and claims popularity only when true."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from scipy import sparse

from shopkeeper.decide.rules import CatalogRow, Past, _why
from shopkeeper.recommend.base import History
from shopkeeper.recommend.baselines import PopularityRecommender
from shopkeeper.recommend.bundle import ModelBundle
from shopkeeper.recommend.explain import ItemNeighbours, strongest_marked
from shopkeeper.store.interactions import PURCHASE

ITEMS = ["mug", "cup", "bag", "lunch", "candle", "tee"]
TITLES = {"mug": "Red mug", "cup": "Tea cup", "bag": "Jumbo bag", "lunch": "Lunch bag", "candle": "T-light"}
MUG, CUP, BAG, LUNCH, CANDLE, TEE = range(len(ITEMS))


def _matrix(entries: dict[tuple[int, int], float]) -> sparse.csr_matrix:
    rows, columns = zip(*entries, strict=True)
    return sparse.csr_matrix((list(entries.values()), (rows, columns)), shape=(len(ITEMS), len(ITEMS)))


def _bundle(next_order: sparse.csr_matrix | None) -> ModelBundle:
    neighbours = ItemNeighbours()
    neighbours.similarity_ = _matrix({(CUP, MUG): 0.8, (MUG, CUP): 0.8})  # a cup is like a mug
    popularity = np.array([0.1, 0.2, 0.9, 0.3, 0.05, 0.01])
    return ModelBundle(
        version=3,
        item_ids=ITEMS,
        index={item: k for k, item in enumerate(ITEMS)},
        model=PopularityRecommender(),
        neighbours=neighbours,
        popularity=popularity,
        trained_until=datetime(2011, 6, 1, tzinfo=UTC),
        summary={},
        next_order=next_order,
        popular_floor=0.9,  # only the bag is popular
    )


def _past() -> Past:
    """Someone who bought a mug on 8 May 2011 and nothing else."""
    at = datetime(2011, 5, 8, 10, tzinfo=UTC)
    history = History(np.array([MUG]), np.array([at.timestamp()]), np.ones(1), np.zeros(1, np.int64))
    return Past(
        newest=1,
        version=3,
        history=history,
        last_event={MUG: (PURCHASE, at, "order-2")},
        owned=frozenset({MUG}),
        owned_array=np.array([MUG]),
        had=np.array([MUG]),
        personalized=True,
    )


def _reasons(bundle: ModelBundle, chosen: list[str], personalized: bool = True) -> list[tuple[str, dict]]:
    catalog = {item: CatalogRow(title, "Home") for item, title in TITLES.items()}

    def read(ids: Sequence[str]) -> dict[str, CatalogRow]:
        return {}

    whys = _why(bundle, chosen, _past(), personalized, catalog, read)
    return [(why[0].text, why[0].provenance) for why in whys]


def test_each_reason_names_its_evidence() -> None:
    next_order = _matrix({(LUNCH, MUG): 0.4, (LUNCH, BAG): 0.7})  # lunch bags follow mugs (and bags)
    reasons = _reasons(_bundle(next_order), ["mug", "cup", "lunch", "bag", "candle"])
    assert reasons[0] == (
        "Because you bought Red mug on 8 May 2011",
        {"signal": "repeat", "event": "order-2", "item_id": "mug"},
    )
    assert reasons[1] == (
        "Because you bought Red mug on 8 May 2011",
        {"signal": "similar_items", "event": "order-2", "item_id": "mug", "similarity": 0.8},
    )
    # The bag leads to lunch bags more strongly, but this person never bought a bag: the mug is named.
    assert reasons[2] == (
        "Often bought in the order after Red mug, which you bought on 8 May 2011",
        {"signal": "next_order", "event": "order-2", "item_id": "mug", "weight": 0.4},
    )
    assert reasons[3] == ("Popular with customers right now", {"model": "popularity", "model_version": 3})
    # Neither like anything they bought, nor after it, nor popular: the model's pick, said plainly.
    assert reasons[4] == (
        "Picked for you from what you have bought",
        {"model": "popularity", "model_version": 3},
    )


def test_without_next_order_evidence_an_unpopular_pick_is_not_called_popular() -> None:
    [(text, provenance)] = _reasons(_bundle(None), ["lunch"])
    assert text == "Picked for you from what you have bought"
    assert "signal" not in provenance


def test_unpersonalized_items_say_how_they_sell_and_claim_popularity_only_when_true() -> None:
    # Sales in the popularity window: only the bag is among the shop's best sellers (the floor is 9).
    bundle = _bundle(None)
    bundle.popularity = np.array([3.0, 2.0, 9.0, 4.0, 1.0, 0.001])
    bundle.popular_floor = 9.0
    catalog = {item: CatalogRow(title, "Home") for item, title in TITLES.items()}
    whys = _why(
        bundle,
        ["bag", "lunch", "cup", "tee"],
        _past(),
        False,
        catalog,
        lambda ids: {},
        liked={"cup": "Kitchen"},
        members={"Kitchen": np.array([MUG, CUP])},
    )
    texts = [why[0].text for why in whys]
    assert texts == [
        "Popular with customers right now",
        "The shop's number 2 best seller right now",  # after the bag (9)
        "Among the best sellers in Kitchen",  # second of the two kitchen items
        "Shown to fill the list: few customers have bought it yet",
    ]
    assert whys[2][0].provenance["rank_in_category"] == 2
    assert whys[1][0].provenance["rank"] == 2


def test_strongest_marked_picks_the_largest_marked_entry() -> None:
    matrix = _matrix({(0, 1): 0.2, (0, 2): 0.9, (0, 3): 0.5})
    marked = np.zeros(len(ITEMS), np.bool_)
    assert strongest_marked(matrix, 0, marked) is None
    marked[[1, 3]] = True
    assert strongest_marked(matrix, 0, marked) == (3, 0.5)
    assert strongest_marked(matrix, 4, marked) is None  # an empty row

"""A trained model version as decide serves it: the model, item neighbours, popularity, in one bundle.

Training writes the files (see `shopkeeper.training`); `ModelBundle.load` reads them back, with
`allow_pickle=False`. Nothing in a bundle names a person.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from shopkeeper.recommend.base import FloatArray, Recommender
from shopkeeper.recommend.default import RerankRecommender
from shopkeeper.recommend.explain import ItemNeighbours

POPULAR_ITEMS = 50  # an item is explained as "popular right now" only if it is among these
Load = Callable[[Path], Recommender]


@dataclass
class ModelBundle:
    """A trained version, loaded for serving."""

    version: int
    item_ids: list[str]
    index: dict[str, int]
    model: Recommender
    neighbours: ItemNeighbours
    popularity: FloatArray
    trained_until: datetime
    summary: dict[str, Any]
    # For "often bought in the order after X": row j holds the items whose next orders hold j (the
    # default model's transitions, transposed), or None for a model without them.
    next_order: sparse.csr_matrix | None = None
    # The least popularity among the `POPULAR_ITEMS` most popular items: "popular" means at least this.
    popular_floor: float = 0.0

    @classmethod
    def load(cls, directory: Path, version: int, summary: dict[str, Any], load_model: Load) -> ModelBundle:
        meta = json.loads((directory / "bundle.json").read_text())
        with np.load(directory / "popularity.npz", allow_pickle=False) as arrays:
            popularity = arrays["popularity"]
        item_ids = list(meta["item_ids"])
        model = load_model(directory / "model")
        transitions = model.transitions_ if isinstance(model, RerankRecommender) else None
        top = min(POPULAR_ITEMS, len(popularity))
        return cls(
            version=version,
            item_ids=item_ids,
            index={item: i for i, item in enumerate(item_ids)},
            model=model,
            neighbours=ItemNeighbours.load(directory / "neighbours"),
            popularity=popularity,
            trained_until=datetime.fromisoformat(meta["trained_until"]),
            summary=summary,
            next_order=None if transitions is None else sparse.csr_matrix(transitions.transition_.T),
            popular_floor=float(np.partition(popularity, -top)[-top]) if top else 0.0,
        )

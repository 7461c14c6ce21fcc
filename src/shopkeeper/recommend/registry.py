"""Every model by its `name`, so a saved model can be loaded from its `params.json` alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shopkeeper.errors import InvalidInput
from shopkeeper.recommend.als import ALSRecommender
from shopkeeper.recommend.base import Recommender
from shopkeeper.recommend.baselines import PopularityRecommender, RepeatRecommender
from shopkeeper.recommend.blend import BlendRecommender
from shopkeeper.recommend.default import RerankRecommender, make_default, train_default
from shopkeeper.recommend.ease import EASERecommender
from shopkeeper.recommend.neighbors import (
    BM25Recommender,
    CooccurrenceRecommender,
    ItemKNNRecommender,
    RP3betaRecommender,
)

__all__ = ["MODELS", "load_model", "make_default", "train_default"]

MODELS: dict[str, Any] = {
    model.name: model
    for model in (
        PopularityRecommender,
        RepeatRecommender,
        ItemKNNRecommender,
        BM25Recommender,
        RP3betaRecommender,
        CooccurrenceRecommender,
        EASERecommender,
        ALSRecommender,
        BlendRecommender,
        RerankRecommender,
    )
}


def load_model(directory: Path) -> Recommender:
    """Load whatever model was saved in `directory`, by the kind named in its `params.json`."""
    directory = Path(directory)
    try:
        kind = json.loads((directory / "params.json").read_text())["model"]
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInput(f"no saved model in {directory}") from exc
    model_class = MODELS.get(kind)
    if model_class is None:
        raise InvalidInput(f"unknown model kind {kind!r} in {directory}")
    if model_class is BlendRecommender:  # its parts are models of any kind: loaded here, by kind
        return BlendRecommender.load_parts(directory, load_model)
    loaded: Recommender = model_class.load(directory)
    return loaded

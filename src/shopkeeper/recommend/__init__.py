"""Recommenders: a pure numeric core (numpy/scipy), arrays in and `(item_idx, scores)` out."""

from shopkeeper.recommend.base import History, Interactions, Recommender, top_n
from shopkeeper.recommend.baselines import PopularityRecommender, RepeatRecommender
from shopkeeper.recommend.blend import BlendRecommender
from shopkeeper.recommend.ease import EASERecommender
from shopkeeper.recommend.registry import load_model


def train_default(interactions: Interactions) -> Recommender:
    """The default model, fitted: what `shopkeeper train` publishes."""
    parts: list[Recommender] = [RepeatRecommender(), EASERecommender(), PopularityRecommender()]
    return BlendRecommender(parts, [1.0, 0.3, 0.1]).fit(interactions)


__all__ = ["History", "Interactions", "Recommender", "load_model", "top_n", "train_default"]

"""Recommenders: a pure numeric core (numpy/scipy), arrays in and `(item_idx, scores)` out."""

from shopkeeper.recommend.base import History, Interactions, Recommender, top_n

__all__ = ["History", "Interactions", "Recommender", "top_n"]

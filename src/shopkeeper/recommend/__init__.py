"""Recommenders: a pure numeric core (numpy/scipy), arrays in and `(item_idx, scores)` out."""

from shopkeeper.recommend.base import History, Interactions, Recommender, top_n
from shopkeeper.recommend.registry import load_model, make_default, train_default

__all__ = ["History", "Interactions", "Recommender", "load_model", "make_default", "top_n", "train_default"]

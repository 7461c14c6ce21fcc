"""A weighted sum of other models' scores, each scaled to [-1, 1] per person so the weights compare."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from shopkeeper.recommend.base import FloatArray, History, Interactions, Recommender
from shopkeeper.recommend.signals import scale


class BlendRecommender:
    """`sum_k weights[k] * scale(models[k].score(history, now))`; `fit` fits every part."""

    name: ClassVar[str] = "blend"

    def __init__(self, models: list[Recommender], weights: list[float]) -> None:
        if len(models) != len(weights):
            raise ValueError("one weight per model")
        self.models = models
        self.weights = weights

    def fit(self, interactions: Interactions) -> Self:
        for model in self.models:
            model.fit(interactions)
        return self

    def score(self, history: History, now: float) -> FloatArray:
        total: FloatArray | None = None
        for model, weight in zip(self.models, self.weights, strict=True):
            part = weight * scale(model.score(history, now))
            total = part if total is None else total + part
        return total if total is not None else np.zeros(0)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for position, model in enumerate(self.models):
            model.save(directory / f"part{position}")
        params: dict[str, Any] = {"weights": self.weights, "parts": len(self.models)}
        (directory / "params.json").write_text(json.dumps({"model": self.name, "params": params}, indent=2))

    @classmethod
    def load(cls, directory: Path) -> Self:
        """A blend's parts are any kind of model: `load_parts` loads them, with the registry's loader."""
        raise TypeError("a blend is loaded with its parts' loader: BlendRecommender.load_parts")

    @classmethod
    def load_parts(cls, directory: Path, load_part: Callable[[Path], Recommender]) -> Self:
        directory = Path(directory)
        params = json.loads((directory / "params.json").read_text())["params"]
        models = [load_part(directory / f"part{k}") for k in range(int(params["parts"]))]
        return cls(models, [float(w) for w in params["weights"]])

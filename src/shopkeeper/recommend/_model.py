"""The common plumbing of the recommenders: settings as JSON, fitted state as arrays, no pickle."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ClassVar, Self

from shopkeeper.errors import ShopkeeperError
from shopkeeper.recommend.base import load_arrays, save_arrays


class NotFittedError(ShopkeeperError):
    """A model was asked to score before `fit` (or `load`)."""


class ArrayModel:
    """A model whose settings are its `__init__` arguments and whose fitted state is `_state` arrays.

    Subclasses list their fitted attributes (names ending in `_`) in `_state`; `save` writes them
    with the settings, and `load` rebuilds the model from both, with `allow_pickle=False`.
    """

    name: ClassVar[str]
    _state: ClassVar[tuple[str, ...]] = ()

    def get_params(self) -> dict[str, Any]:
        """The settings, as given to `__init__` (scikit-learn's habit)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def _check_fitted(self) -> None:
        if not all(hasattr(self, attr) for attr in self._state):
            raise NotFittedError(f"{self.name} is not fitted: call fit() or load() first")

    def save(self, directory: Path) -> None:
        self._check_fitted()
        save_arrays(
            Path(directory), self.name, self.get_params(), **{a: getattr(self, a) for a in self._state}
        )

    @classmethod
    def load(cls, directory: Path) -> Self:
        params, arrays = load_arrays(Path(directory))
        model = cls(**params)
        for attr in cls._state:
            setattr(model, attr, arrays[attr])
        return model

"""The numeric core's contract: arrays in, `(item_idx, scores)` out. No database, no HTTP.

Every recommender follows scikit-learn's habits: `__init__` only stores settings, `fit` learns from
`Interactions` (the training window), fitted attributes end in `_`, randomness comes in as
`random_state`. Serving and evaluation then call `score(history)` with one person's *current* history,
so a purchase made a second ago changes the next decision without a refit: the person-side signals
(repeat purchase, co-occurrence with their basket, ALS fold-in) are computed from the history at call
time, and only the item-side state comes from `fit`.

Models save to a directory as `.npz` and JSON and load with `allow_pickle=False`. Never pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

import numpy as np
import numpy.typing as npt
from scipy import sparse

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Interactions:
    """Who did what to which item, when: one row per event (a purchase line, a view, a cart).

    `user_idx` and `item_idx` index `user_ids` and `item_ids` (external ids are strings). `times` are
    seconds since the epoch. `weights` are the event's strength (1 per distinct invoice for a purchase).
    `kinds` is 0 for a purchase, 1 for a cart, 2 for a view.
    """

    user_idx: IntArray
    item_idx: IntArray
    times: FloatArray
    weights: FloatArray
    kinds: IntArray
    user_ids: list[str]
    item_ids: list[str]

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def end(self) -> float:
        """The time of the newest interaction: the training window's "now"."""
        return float(self.times.max()) if len(self.times) else 0.0

    def matrix(self, *, kinds: tuple[int, ...] = (0,)) -> sparse.csr_matrix:
        """users x items, summing weights of the given kinds (purchases by default)."""
        keep = np.isin(self.kinds, kinds)
        return sparse.csr_matrix(
            (self.weights[keep], (self.user_idx[keep], self.item_idx[keep])),
            shape=(self.n_users, self.n_items),
            dtype=np.float64,
        )

    def history(self, user: int) -> History:
        rows = self.user_idx == user
        return History(self.item_idx[rows], self.times[rows], self.weights[rows], self.kinds[rows])


@dataclass(frozen=True)
class History:
    """One person's interactions, in the item index space of a fitted model (unknown items left out)."""

    item_idx: IntArray
    times: FloatArray
    weights: FloatArray
    kinds: IntArray

    @classmethod
    def empty(cls) -> History:
        return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0, np.int64))

    def purchases(self) -> History:
        keep = self.kinds == 0
        return History(self.item_idx[keep], self.times[keep], self.weights[keep], self.kinds[keep])

    def __len__(self) -> int:
        return len(self.item_idx)


class Recommender(Protocol):
    """What every model offers. `score` returns one float per item; higher is better."""

    name: ClassVar[str]

    def fit(self, interactions: Interactions) -> Self: ...

    def score(self, history: History, now: float) -> FloatArray: ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path) -> Self: ...


def top_n(scores: FloatArray, n: int, *, exclude: IntArray | None = None) -> tuple[IntArray, FloatArray]:
    """The `n` best item indices and their scores, best first; ties broken by lower index."""
    scores = scores.astype(np.float64, copy=True)
    if exclude is not None and len(exclude):
        scores[exclude] = -np.inf
    n = min(n, int(np.isfinite(scores).sum()))
    if n <= 0:
        return np.zeros(0, np.int64), np.zeros(0)
    part = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    order = np.lexsort((part, -scores[part]))
    best = part[order].astype(np.int64)
    return best, scores[best]


def save_arrays(directory: Path, name: str, params: dict[str, Any], **arrays: Any) -> None:
    """A model as `params.json` plus `arrays.npz` (sparse matrices stored as their CSR parts)."""
    directory.mkdir(parents=True, exist_ok=True)
    flat: dict[str, Any] = {}
    for key, value in arrays.items():
        if sparse.issparse(value):
            csr = sparse.csr_matrix(value)
            flat[f"{key}__data"], flat[f"{key}__indices"], flat[f"{key}__indptr"] = (
                csr.data,
                csr.indices,
                csr.indptr,
            )
            flat[f"{key}__shape"] = np.array(csr.shape)
        else:
            flat[key] = np.asarray(value)
    np.savez(directory / "arrays.npz", **flat)
    (directory / "params.json").write_text(json.dumps({"model": name, "params": params}, indent=2))


def load_arrays(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The params and arrays saved by `save_arrays`, read without pickle."""
    meta = json.loads((directory / "params.json").read_text())
    with np.load(directory / "arrays.npz", allow_pickle=False) as stored:
        raw = {key: stored[key] for key in stored.files}
    arrays: dict[str, Any] = {}
    for key in list(raw):
        if key.endswith("__data"):
            base = key.removesuffix("__data")
            arrays[base] = sparse.csr_matrix(
                (raw[f"{base}__data"], raw[f"{base}__indices"], raw[f"{base}__indptr"]),
                shape=tuple(raw[f"{base}__shape"]),
            )
        elif "__" not in key:
            arrays[key] = raw[key]
    return meta["params"], arrays

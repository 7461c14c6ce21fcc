"""Next-basket transitions: what a person buys in their next order(s), given what is in this one.

Co-occurrence counts items bought by the same person at any time; `Transitions` counts, for each
item `i` in one of a person's orders, the items `j` of that same person's next `horizon` orders
(the nearer order counting more, and only within `max_gap_days`), each transition decayed by its
age at the end of training. Row `i` is divided by the (decayed) orders containing `i` that have a
next order, giving P(j in the next order | i in this one), and column `j` by its (decayed) orders
to the power `beta`. The diagonal, "i re-bought in the next order", is kept both in the matrix and
as its own per-item vector (`rebuy_`, shrunk towards the mean for rarely bought items).

A person's score for `j` sums `transition_[i, j]` over the items of their last `last_orders`
orders, the latest order weighing most.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from shopkeeper.recommend.base import FloatArray, History, IntArray, Interactions
from shopkeeper.recommend.features import Baskets, locate, run_starts
from shopkeeper.recommend.neighbors import blockwise_top_k
from shopkeeper.recommend.signals import DAY, decay


@dataclass(frozen=True)
class Orders:
    """Distinct (person, time) orders and the distinct items in each, sorted by person then time."""

    user: IntArray
    time: FloatArray
    basket: sparse.csr_matrix  # orders x items, 1 where the item is in the order

    @classmethod
    def of(cls, interactions: Interactions) -> Orders:
        bought = interactions.kinds == 0
        users = interactions.user_idx[bought].astype(np.int64)
        times = interactions.times[bought]
        keys = np.lexsort((times, users))
        users, times, items = users[keys], times[keys], interactions.item_idx[bought][keys]
        new = np.ones(len(users), np.bool_)
        new[1:] = (users[1:] != users[:-1]) | (times[1:] != times[:-1])
        order = np.cumsum(new) - 1
        basket = sparse.csr_matrix(
            (np.ones(len(items)), (order, items)), shape=(int(new.sum()), interactions.n_items)
        )
        basket.data = np.ones_like(basket.data)  # duplicates summed: back to presence
        return cls(users[new], times[new], basket)


class Transitions:
    """P(j in a person's next order(s) | i in this order), learned from consecutive orders."""

    def __init__(
        self,
        k: int = 200,
        horizon: int = 2,
        max_gap_days: float = 120.0,
        half_life_days: float | None = 180.0,
        beta: float = 0.3,
        shrink: float = 5.0,
        last_orders: int = 2,
    ) -> None:
        self.k = k
        self.horizon = horizon
        self.max_gap_days = max_gap_days
        self.half_life_days = half_life_days
        self.beta = beta
        self.shrink = shrink
        self.last_orders = last_orders

    def fit(self, interactions: Interactions) -> Transitions:
        orders = Orders.of(interactions)
        n_items = orders.basket.shape[1]
        follow = _following(orders, self.horizon, self.max_gap_days * DAY)
        age = decay(interactions.end - orders.time, self.half_life_days)
        source = sparse.csr_matrix(sparse.diags(age) @ orders.basket)
        has_next = np.asarray(follow.sum(axis=1)).ravel() > 0
        ahead = follow @ orders.basket  # orders x items: the weighted next orders' items
        ahead.data = np.minimum(ahead.data, 1.0)
        ahead = sparse.csr_matrix(ahead)
        base = np.asarray(source[has_next].sum(axis=0)).ravel()  # decayed orders of i with a next
        degree = np.asarray(source.sum(axis=0)).ravel()
        safe = np.maximum(base, 1e-9)
        penalty = np.power(np.maximum(degree, 1e-9), -self.beta)
        self_next = np.asarray(source.multiply(ahead).sum(axis=0)).ravel()
        prior = float(self_next.sum() / max(base.sum(), 1e-9))
        self.rebuy_ = np.divide(
            self_next + self.shrink * prior,
            base + self.shrink,
            out=np.full(n_items, prior),
            where=base + self.shrink > 0,
        )
        self.prior_ = prior

        def conditional(dense: FloatArray, rows: slice) -> FloatArray:
            adjusted: FloatArray = dense / safe[rows, None] * penalty[None, :]
            return adjusted

        self.transition_ = blockwise_top_k(
            sparse.csr_matrix(source.T), ahead, self.k, conditional, self_votes=True
        )
        self.n_items_ = n_items
        return self

    def person(self, history: History, baskets: Baskets | None = None) -> PersonOrders:
        """The person's last orders' items and weights, and their own next-order re-buys per item
        (from `baskets`, when given: `Baskets.of(history, n_items)` for this model's catalog)."""
        if baskets is None:
            baskets = Baskets.of(history, self.n_items_)
        return PersonOrders.of_baskets(baskets, self.last_orders)

    def arrays(self, prefix: str) -> dict[str, Any]:
        matrix = self.transition_
        return {
            f"{prefix}data": matrix.data,
            f"{prefix}indices": matrix.indices,
            f"{prefix}indptr": matrix.indptr,
            f"{prefix}rebuy": self.rebuy_,
            f"{prefix}prior": np.array([self.prior_]),
        }

    def load_arrays(self, arrays: dict[str, Any], prefix: str) -> Transitions:
        """Restore what `arrays(prefix)` saved (the settings come from the constructor)."""
        rebuy = np.asarray(arrays[f"{prefix}rebuy"], dtype=np.float64)
        n = len(rebuy)
        self.transition_ = sparse.csr_matrix(
            (arrays[f"{prefix}data"], arrays[f"{prefix}indices"], arrays[f"{prefix}indptr"]), shape=(n, n)
        )
        self.rebuy_ = rebuy
        self.prior_ = float(arrays[f"{prefix}prior"][0])
        self.n_items_ = n
        return self


@dataclass(frozen=True)
class PersonOrders:
    """One person's order structure: the items of their last orders (weighted, latest = 1) and, per
    item they bought, how often it was re-bought in the order right after (`rebuys` of `chances`)."""

    last_items: IntArray
    last_weights: FloatArray
    items: IntArray
    rebuys: FloatArray
    chances: FloatArray

    @classmethod
    def of(cls, history: History, n_items: int, last_orders: int) -> PersonOrders:
        return cls.of_baskets(Baskets.of(history, n_items), last_orders)

    @classmethod
    def of_baskets(cls, baskets: Baskets, last_orders: int) -> PersonOrders:
        if not len(baskets.items):
            empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
            return cls(empty_i, empty_f, empty_i, empty_f, empty_f)
        m = len(baskets.stamps)
        pairs, item, at = baskets.pairs, baskets.pair_item, baskets.pair_order
        # Bought again in the next order: pairs are distinct and sorted, so (item, order + 1), when
        # there, is the very next pair.
        again = np.zeros(len(pairs))
        np.equal(pairs[1:], pairs[:-1] + 1, out=again[:-1])
        unique, inverse = baskets.grouped()
        chances = _sums(inverse, (at < m - 1).astype(np.float64), len(unique))
        rebuys = _sums(inverse, again, len(unique))
        recent = at >= m - last_orders
        weights = np.exp2(-(m - 1 - at[recent]).astype(np.float64))
        recent_items = item[recent]  # sorted, as `item` is
        starts = run_starts(recent_items)
        return cls(
            last_items=recent_items[starts],
            last_weights=_sums(np.cumsum(starts) - 1, weights, int(starts.sum())),
            items=unique,
            rebuys=rebuys,
            chances=chances,
        )


def _sums(groups: IntArray, values: FloatArray, size: int) -> FloatArray:
    summed: FloatArray = np.bincount(groups, weights=values, minlength=size).astype(np.float64, copy=False)
    return summed


def _following(orders: Orders, horizon: int, max_gap: float) -> sparse.csr_matrix:
    """orders x orders: weight 2^-(d-1) from an order to the same person's d-th next order (d <=
    `horizon`, at most `max_gap` seconds later)."""
    n = len(orders.user)
    rows, cols, values = [], [], []
    for step in range(1, horizon + 1):
        source = np.arange(n - step)
        target = source + step
        ok = (orders.user[target] == orders.user[source]) & (
            orders.time[target] - orders.time[source] <= max_gap
        )
        rows.append(source[ok])
        cols.append(target[ok])
        values.append(np.full(int(ok.sum()), 2.0 ** -(step - 1)))
    return sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )


def rebuy_columns(model: Transitions, person: PersonOrders, candidates: IntArray) -> FloatArray:
    """The last three transition columns (`len(candidates)` x 3): the item's next-order
    re-buy rate, the person's own (shrunk towards it; -1 when they never bought the item), and the
    re-buy signal of their last orders (item's rate times its weight there)."""
    out = np.empty((len(candidates), 3))
    rebuy = model.rebuy_.take(candidates, out=out[:, 0])
    own = out[:, 1]
    own.fill(-1.0)
    owned, at = locate(person.items, candidates)
    if owned.any():
        at = at[owned]
        own[owned] = (person.rebuys[at] + model.shrink * rebuy[owned]) / (person.chances[at] + model.shrink)
    inside, at = locate(person.last_items, candidates)
    last = np.zeros(len(candidates))
    if inside.any():
        last[inside] = person.last_weights[at[inside]]
    np.multiply(last, rebuy, out=out[:, 2])
    return out

"""Per-(person, item) features for the re-ranker: the person's own history, item trends, model scores.

Item-side statistics come from `fit` (`ItemStats`); person-side ones are computed from the history
passed at scoring time (`PersonItems`), so they are always fresh. Everything is vectorised over the
candidates: one person's rows cost a few dozen array operations, whatever their number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shopkeeper.recommend.base import FloatArray, History, IntArray, Interactions
from shopkeeper.recommend.signals import DAY, distinct

NEVER = 10_000.0  # "days since" for something that never happened: far beyond any real gap
HORIZON_DAYS = 30.0  # the re-ranker predicts purchases over the next month

FEATURES = (
    "owned",
    "invoices",
    "days_since_item",
    "days_since_first_item",
    "decayed_30",
    "decayed_180",
    "own_gap_days",
    "overdue",
    "item_share",
    "expected_in_horizon",
    "repeat_rank",
    "person_invoices",
    "person_items",
    "days_since_order",
    "person_days",
    "person_order_gap",
    "ease",
    "ease_rank",
    "ease_relative",
    "cooccurrence",
    "cooccurrence_rank",
    "cooccurrence_relative",
    "als",
    "als_rank",
    "buyers_7",
    "buyers_30",
    "buyers_90",
    "buyers_all",
    "trend",
    "growth",
    "item_days_since_sale",
    "item_age_days",
    "item_repeat_rate",
    "item_gap_days",
    "item_overdue",
    "transition",
    "transition_rank",
    "transition_relative",
    "item_rebuy_next",
    "own_rebuy_next",
    "last_orders_rebuy",
)


@dataclass(frozen=True)
class ItemStats:
    """Item-side numbers learned in `fit`: recent and all-time buyers, first/last sale, repeat habits."""

    buyers_7: FloatArray
    buyers_30: FloatArray
    buyers_90: FloatArray
    buyers_prev_30: FloatArray
    buyers_all: FloatArray
    first_sale: FloatArray
    last_sale: FloatArray
    repeat_rate: FloatArray
    gap_days: FloatArray

    @classmethod
    def of(cls, interactions: Interactions) -> ItemStats:
        n = interactions.n_items
        bought = interactions.kinds == 0
        items, users, times = (
            interactions.item_idx[bought],
            interactions.user_idx[bought],
            interactions.times[bought],
        )
        first = np.full(n, np.inf)
        last = np.full(n, -np.inf)
        np.minimum.at(first, items, times)
        np.maximum.at(last, items, times)
        # Per (person, item): invoices and the span between first and last, for repeat habits.
        pair = users.astype(np.int64) * n + items
        unique, inverse = np.unique(pair, return_inverse=True)
        count = np.bincount(inverse, minlength=len(unique)).astype(np.float64)
        span_first = np.full(len(unique), np.inf)
        span_last = np.full(len(unique), -np.inf)
        np.minimum.at(span_first, inverse, times)
        np.maximum.at(span_last, inverse, times)
        pair_item = unique % n
        buyers = np.bincount(pair_item, minlength=n).astype(np.float64)
        repeaters = np.bincount(pair_item, weights=(count > 1).astype(np.float64), minlength=n)
        gaps = np.where(count > 1, (span_last - span_first) / np.maximum(count - 1, 1) / DAY, 0.0)
        gap_sum = np.bincount(pair_item, weights=gaps, minlength=n)
        seen = np.isfinite(first)
        end = interactions.end

        def recent(days: float) -> FloatArray:
            """People who bought each item in the last `days` (as `window_popularity`, from the pairs)."""
            latest = (span_last > end - days * DAY).astype(np.float64)
            lately: FloatArray = np.bincount(pair_item, weights=latest, minlength=n).astype(np.float64)
            return lately

        earlier = (times <= end - 30.0 * DAY) & (times > end - 60.0 * DAY)
        earlier_pairs = distinct(pair[earlier])
        return cls(
            buyers_7=recent(7.0),
            buyers_30=recent(30.0),
            buyers_90=recent(90.0),
            buyers_prev_30=np.bincount(earlier_pairs % max(n, 1), minlength=n).astype(np.float64),
            buyers_all=buyers,
            first_sale=np.where(seen, first, 0.0),
            last_sale=np.where(seen, last, 0.0),
            repeat_rate=np.divide(repeaters, buyers, out=np.zeros(n), where=buyers > 0),
            gap_days=np.divide(gap_sum, repeaters, out=np.full(n, NEVER), where=repeaters > 0),
        )

    def arrays(self) -> dict[str, Any]:
        return {f"stats_{k}": getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any]) -> ItemStats:
        return cls(
            **{k: np.asarray(arrays[f"stats_{k}"], dtype=np.float64) for k in cls.__dataclass_fields__}
        )

    def table(self, items: IntArray, now: float) -> FloatArray:
        """The item-side feature columns for `items` (one row each), as of `now`."""
        b7, b30 = self.buyers_7[items], self.buyers_30[items]
        return np.column_stack(
            (
                b7,
                b30,
                self.buyers_90[items],
                self.buyers_all[items],
                (b7 + 1.0) / (b30 / 4.0 + 1.0),
                (b30 + 1.0) / (self.buyers_prev_30[items] + 1.0),
                (now - self.last_sale[items]) / DAY,
                (now - self.first_sale[items]) / DAY,
                self.repeat_rate[items],
                self.gap_days[items],
            )
        )


@dataclass(frozen=True)
class PersonItems:
    """A person's purchases summed per item: invoices, first and last time, decayed counts, and their
    ordering rhythm (distinct order times, mean gap between orders)."""

    items: IntArray
    invoices: FloatArray
    first: FloatArray
    last: FloatArray
    decayed_30: FloatArray
    decayed_180: FloatArray
    orders: int
    first_order: float
    last_order: float

    @classmethod
    def of(cls, history: History, n_items: int, now: float) -> PersonItems:
        keep = (history.kinds == 0) & (history.item_idx >= 0) & (history.item_idx < n_items)
        items, times, weights = history.item_idx[keep], history.times[keep], history.weights[keep]
        if not len(items):
            empty = np.zeros(0)
            return cls(np.zeros(0, np.int64), empty, empty, empty, empty, empty, 0, 0.0, 0.0)
        unique, inverse = np.unique(items, return_inverse=True)
        first = np.full(len(unique), np.inf)
        last = np.full(len(unique), -np.inf)
        np.minimum.at(first, inverse, times)
        np.maximum.at(last, inverse, times)
        age = np.maximum(now - times, 0.0) / DAY
        size = len(unique)
        return cls(
            items=unique.astype(np.int64),
            invoices=_sums(inverse, weights, size),
            first=first,
            last=last,
            decayed_30=_sums(inverse, weights * np.exp2(-age / 30.0), size),
            decayed_180=_sums(inverse, weights * np.exp2(-age / 180.0), size),
            orders=len(distinct(times)),
            first_order=float(times.min()),
            last_order=float(times.max()),
        )

    def recent(self, k: int) -> IntArray:
        """Positions (into `items`) of the `k` most recently bought items."""
        if len(self.items) <= k:
            return np.arange(len(self.items))
        return np.argpartition(-self.last, k - 1)[:k]

    def strongest(self, k: int) -> IntArray:
        """Positions of the `k` items with the highest decayed invoice count (the repeat-purchase score)."""
        if len(self.items) <= k:
            return np.arange(len(self.items))
        return np.argpartition(-self.decayed_180, k - 1)[:k]


def _sums(groups: IntArray, values: FloatArray, size: int) -> FloatArray:
    summed: FloatArray = np.bincount(groups, weights=values, minlength=size).astype(np.float64)
    return summed


def _ranks(values: FloatArray) -> FloatArray:
    """1 for the largest value, 2 for the next...; ties share the order they come in."""
    out = np.empty(len(values))
    out[np.argsort(-values, kind="stable")] = np.arange(1, len(values) + 1)
    return out


def person_item_features(
    candidates: IntArray,
    person: PersonItems,
    now: float,
    item_table: FloatArray,
    ease: FloatArray,
    cooccurrence: FloatArray,
    als: FloatArray,
    transition_table: FloatArray,
) -> FloatArray:
    """One row of `FEATURES` per candidate (no NaN: absent things get the `NEVER` sentinel).

    `ease`, `cooccurrence` and `als` are the models' scores for the candidates (not the catalog);
    `item_table` is `ItemStats.table(candidates, now)`, `transition_table` is
    `transitions.transition_table(...)` for the candidates.
    """
    n = len(candidates)
    position = np.searchsorted(person.items, candidates)
    owned = position < len(person.items)
    owned[owned] &= person.items[position[owned]] == candidates[owned]
    at = position[owned]
    invoices = np.zeros(n)
    invoices[owned] = person.invoices[at]
    since = np.full(n, NEVER)
    since[owned] = (now - person.last[at]) / DAY
    since_first = np.full(n, NEVER)
    since_first[owned] = (now - person.first[at]) / DAY
    decayed_30, decayed_180 = np.zeros(n), np.zeros(n)
    decayed_30[owned], decayed_180[owned] = person.decayed_30[at], person.decayed_180[at]
    repeated = owned & (invoices > 1)
    gap = np.full(n, NEVER)
    gap[repeated] = (since_first[repeated] - since[repeated]) / (invoices[repeated] - 1.0)
    orders = max(person.orders, 1)
    span = (person.last_order - person.first_order) / DAY if person.orders else 0.0
    order_gap = span / (person.orders - 1) if person.orders > 1 else NEVER
    share = invoices / orders
    expected_orders = min(HORIZON_DAYS / max(order_gap, 1.0), 30.0)
    repeat_rank = np.full(n, NEVER)
    repeat_rank[owned] = _ranks(decayed_180[owned] + 1e-3 * invoices[owned])
    items = item_table
    item_gap = items[:, 9]
    person_columns = np.array(
        [
            float(person.orders),
            float(len(person.items)),
            (now - person.last_order) / DAY if person.orders else NEVER,
            (now - person.first_order) / DAY if person.orders else 0.0,
            order_gap,
        ]
    )
    columns = np.empty((n, len(FEATURES)))
    columns[:, 0] = owned
    columns[:, 1] = invoices
    columns[:, 2] = since
    columns[:, 3] = since_first
    columns[:, 4] = decayed_30
    columns[:, 5] = decayed_180
    columns[:, 6] = gap
    columns[:, 7] = np.where(repeated, since / np.maximum(gap, 1.0), -1.0)
    columns[:, 8] = share
    columns[:, 9] = 1.0 - np.power(1.0 - np.minimum(share, 1.0), expected_orders)
    columns[:, 10] = repeat_rank
    columns[:, 11:16] = person_columns
    columns[:, 16] = ease
    columns[:, 17] = _ranks(ease)
    columns[:, 18] = ease / max(float(ease.max(initial=0.0)), 1e-9)
    columns[:, 19] = cooccurrence
    columns[:, 20] = _ranks(cooccurrence)
    columns[:, 21] = cooccurrence / max(float(cooccurrence.max(initial=0.0)), 1e-9)
    columns[:, 22] = als
    columns[:, 23] = _ranks(als)
    columns[:, 24:34] = items
    columns[:, 34] = np.where(owned, since / np.maximum(item_gap, 1.0), -1.0)
    columns[:, 35:41] = transition_table
    return columns

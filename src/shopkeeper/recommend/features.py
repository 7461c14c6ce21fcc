"""Per-(person, item) features for the re-ranker: the person's own history, item trends, model scores.

Item-side statistics come from `fit` (`ItemStats`); person-side ones are computed from the history
passed at scoring time, so they are always fresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shopkeeper.recommend.base import FloatArray, History, IntArray, Interactions
from shopkeeper.recommend.signals import DAY, decay, window_popularity

NEVER = 10_000.0  # "days since" for something that never happened: far beyond any real gap

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
    "person_invoices",
    "person_items",
    "days_since_order",
    "person_days",
    "ease",
    "ease_relative",
    "cooccurrence",
    "cooccurrence_relative",
    "als",
    "buyers_7",
    "buyers_30",
    "buyers_all",
    "trend",
    "item_days_since_sale",
    "item_age_days",
    "item_repeat_rate",
    "item_gap_days",
)


@dataclass(frozen=True)
class ItemStats:
    """Item-side numbers learned in `fit`: recent and all-time buyers, first/last sale, repeat habits."""

    buyers_7: FloatArray
    buyers_30: FloatArray
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
        return cls(
            buyers_7=window_popularity(interactions, 7.0),
            buyers_30=window_popularity(interactions, 30.0),
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


@dataclass(frozen=True)
class PersonItems:
    """A person's purchases summed per item: invoices, first and last time, decayed counts."""

    items: IntArray
    invoices: FloatArray
    first: FloatArray
    last: FloatArray
    orders: int
    first_order: float
    last_order: float

    @classmethod
    def of(cls, history: History, n_items: int) -> PersonItems:
        bought = history.purchases()
        keep = (bought.item_idx >= 0) & (bought.item_idx < n_items)
        items, times, weights = bought.item_idx[keep], bought.times[keep], bought.weights[keep]
        if not len(items):
            empty = np.zeros(0)
            return cls(np.zeros(0, np.int64), empty, empty, empty, 0, 0.0, 0.0)
        unique, inverse = np.unique(items, return_inverse=True)
        first = np.full(len(unique), np.inf)
        last = np.full(len(unique), -np.inf)
        np.minimum.at(first, inverse, times)
        np.maximum.at(last, inverse, times)
        return cls(
            items=unique.astype(np.int64),
            invoices=np.bincount(inverse, weights=weights, minlength=len(unique)).astype(np.float64),
            first=first,
            last=last,
            orders=len(np.unique(times)),
            first_order=float(times.min()),
            last_order=float(times.max()),
        )


def person_item_features(
    candidates: IntArray,
    person: PersonItems,
    history: History,
    now: float,
    stats: ItemStats,
    ease: FloatArray,
    cooccurrence: FloatArray,
    als: FloatArray,
) -> FloatArray:
    """One row of `FEATURES` per candidate item (no NaN: absent things get the `NEVER` sentinel)."""
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
    gap = np.full(n, NEVER)
    repeated = owned.copy()
    repeated[owned] = person.invoices[at] > 1
    gap[repeated] = (
        (person.last[position[repeated]] - person.first[position[repeated]])
        / DAY
        / (person.invoices[position[repeated]] - 1)
    )
    decayed_30, decayed_180 = np.zeros(n), np.zeros(n)
    if owned.any():
        bought = history.purchases()
        match = np.searchsorted(person.items, bought.item_idx)
        match = np.minimum(match, len(person.items) - 1)
        age = now - bought.times
        per_30 = np.bincount(match, weights=bought.weights * decay(age, 30.0), minlength=len(person.items))
        per_180 = np.bincount(match, weights=bought.weights * decay(age, 180.0), minlength=len(person.items))
        decayed_30[owned], decayed_180[owned] = per_30[at], per_180[at]
    orders = max(person.orders, 1)
    ease_c, cooc_c = ease[candidates], cooccurrence[candidates]
    item_since_sale = (now - stats.last_sale[candidates]) / DAY
    columns = (
        owned.astype(np.float64),
        invoices,
        since,
        since_first,
        decayed_30,
        decayed_180,
        gap,
        np.where(repeated, since / np.maximum(gap, 1.0), -1.0),
        invoices / orders,
        np.full(n, float(person.orders)),
        np.full(n, float(len(person.items))),
        np.full(n, (now - person.last_order) / DAY if person.orders else NEVER),
        np.full(n, (now - person.first_order) / DAY if person.orders else 0.0),
        ease_c,
        ease_c / max(float(ease_c.max()), 1e-9),
        cooc_c,
        cooc_c / max(float(cooc_c.max()), 1e-9),
        als[candidates],
        stats.buyers_7[candidates],
        stats.buyers_30[candidates],
        stats.buyers_all[candidates],
        (stats.buyers_7[candidates] + 1.0) / (stats.buyers_30[candidates] / 4.0 + 1.0),
        item_since_sale,
        (now - stats.first_sale[candidates]) / DAY,
        stats.repeat_rate[candidates],
        stats.gap_days[candidates],
    )
    return np.column_stack(columns)

"""Per-(person, item) features for the re-ranker: the person's own history, item trends, model scores.

Item-side statistics come from `fit` (`ItemStats`); person-side ones are computed from the history
passed at scoring time (`PersonItems`), so they are always fresh. Everything is vectorised over the
candidates: one person's rows cost a few dozen array operations, whatever their number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shopkeeper.recommend.base import FloatArray, History, IntArray, Interactions
from shopkeeper.recommend.signals import DAY, distinct

BoolArray = npt.NDArray[np.bool_]

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
ITEM_COLUMNS = slice(24, 34)  # the columns of `ItemStats.table`
TRANSITION_COLUMNS = slice(35, 41)  # transition score, rank, share of the best, `rebuy_columns`


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

    def table(self, items: IntArray, now: float, out: FloatArray | None = None) -> FloatArray:
        """The item-side feature columns for `items` (one row each), as of `now`; written into `out`
        (`len(items)` x 10, e.g. the `ITEM_COLUMNS` of a feature table) when given."""
        if out is None:
            out = np.empty((len(items), ITEM_COLUMNS.stop - ITEM_COLUMNS.start))
        b7, b30 = self.buyers_7.take(items), self.buyers_30.take(items)
        out[:, 0] = b7
        out[:, 1] = b30
        self.buyers_90.take(items, out=out[:, 2])
        self.buyers_all.take(items, out=out[:, 3])
        out[:, 4] = (b7 + 1.0) / (b30 / 4.0 + 1.0)
        out[:, 5] = (b30 + 1.0) / (self.buyers_prev_30.take(items) + 1.0)
        out[:, 6] = (now - self.last_sale.take(items)) / DAY
        out[:, 7] = (now - self.first_sale.take(items)) / DAY
        self.repeat_rate.take(items, out=out[:, 8])
        self.gap_days.take(items, out=out[:, 9])
        return out


@dataclass(frozen=True)
class Baskets:
    """A person's purchases of catalog items (in history order) and the orders they form: `stamps`
    are the distinct purchase times (sorted), and `pairs` the distinct (item, order) pairs, sorted,
    as `item * (len(stamps) + 1) + order` (`order` indexing `stamps`), split into `pair_item` and
    `pair_order`; `starts` marks each item's first pair. What `PersonItems` and
    `transitions.PersonOrders` are both computed from, once."""

    items: IntArray
    times: FloatArray
    weights: FloatArray
    stamps: FloatArray
    pairs: IntArray
    pair_item: IntArray
    pair_order: IntArray
    starts: BoolArray

    @classmethod
    def of(cls, history: History, n_items: int) -> Baskets:
        keep = (history.kinds == 0) & (history.item_idx >= 0) & (history.item_idx < n_items)
        items = history.item_idx[keep].astype(np.int64, copy=False)
        times = history.times[keep]
        stamps = distinct(times)
        pairs = distinct(items * (len(stamps) + 1) + np.searchsorted(stamps, times))
        pair_item, pair_order = np.divmod(pairs, len(stamps) + 1)
        return cls(
            items, times, history.weights[keep], stamps, pairs, pair_item, pair_order, run_starts(pair_item)
        )

    def grouped(self) -> tuple[IntArray, IntArray]:
        """The distinct items (sorted) and, for each pair, its item's position among them."""
        return self.pair_item[self.starts], np.cumsum(self.starts) - 1


def run_starts(ordered: IntArray) -> BoolArray:
    """True where a run of equal values begins in a sorted array."""
    starts = np.empty(len(ordered), np.bool_)
    starts[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    return starts


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
        return cls.of_baskets(Baskets.of(history, n_items), now)

    @classmethod
    def of_baskets(cls, baskets: Baskets, now: float) -> PersonItems:
        if not len(baskets.items):
            empty = np.zeros(0)
            return cls(np.zeros(0, np.int64), empty, empty, empty, empty, empty, 0, 0.0, 0.0)
        stamps, pair_order = baskets.stamps, baskets.pair_order
        unique = baskets.pair_item[baskets.starts]
        # An item's pairs run from its first order to its last.
        ends = np.empty_like(baskets.starts)
        ends[:-1] = baskets.starts[1:]
        ends[-1:] = True
        inverse = np.searchsorted(unique, baskets.items)
        weights = baskets.weights
        age = np.maximum(now - baskets.times, 0.0) / DAY
        size = len(unique)
        return cls(
            items=unique,
            invoices=_sums(inverse, weights, size),
            first=stamps[pair_order[baskets.starts]],
            last=stamps[pair_order[ends]],
            decayed_30=_sums(inverse, weights * np.exp2(-age / 30.0), size),
            decayed_180=_sums(inverse, weights * np.exp2(-age / 180.0), size),
            orders=len(stamps),
            first_order=float(stamps[0]),
            last_order=float(stamps[-1]),
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
    summed: FloatArray = np.bincount(groups, weights=values, minlength=size).astype(np.float64, copy=False)
    return summed


def ranks(values: FloatArray) -> FloatArray:
    """1 for the largest value, 2 for the next...; ties share the order they come in."""
    out = np.empty(len(values))
    out[np.argsort(-values, kind="stable")] = np.arange(1.0, len(values) + 1.0)
    return out


def score_columns(columns: FloatArray, first: int, scores: FloatArray) -> None:
    """One model's scores for the candidates, their rank and their share of the best score, into
    `columns` at `first`, `first + 1` and `first + 2`."""
    columns[:, first] = scores
    columns[:, first + 1] = ranks(scores)
    np.divide(scores, max(float(scores.max(initial=0.0)), 1e-9), out=columns[:, first + 2])


def person_item_features(
    candidates: IntArray,
    person: PersonItems,
    now: float,
    stats: ItemStats,
    ease: FloatArray,
    cooccurrence: FloatArray,
    als: FloatArray,
    transition: FloatArray,
    rebuy: FloatArray,
) -> FloatArray:
    """One row of `FEATURES` per candidate (no NaN: absent things get the `NEVER` sentinel), filled in
    place column block by column block.

    `ease`, `cooccurrence`, `als` and `transition` are the models' scores for the candidates (not the
    catalog); `rebuy` is `transitions.rebuy_columns(...)` for them (the last three columns).
    """
    columns = np.empty((len(candidates), len(FEATURES)))
    stats.table(candidates, now, out=columns[:, ITEM_COLUMNS])
    model_columns(columns, ease, cooccurrence, als, transition)
    columns[:, TRANSITION_COLUMNS.start + 3 : TRANSITION_COLUMNS.stop] = rebuy
    fill_person_columns(columns, candidates, person, now)
    return columns


def model_columns(
    columns: FloatArray, ease: FloatArray, cooccurrence: FloatArray, als: FloatArray, transition: FloatArray
) -> None:
    """The models' columns of `FEATURES`: score, rank and share of the best for EASE, co-occurrence
    and the transitions (the first three `TRANSITION_COLUMNS`), score and rank for ALS."""
    score_columns(columns, 16, ease)
    score_columns(columns, 19, cooccurrence)
    score_columns(columns, TRANSITION_COLUMNS.start, transition)
    columns[:, 22] = als
    if als.any():
        columns[:, 23] = ranks(als)
    else:  # ALS off: all tie, in the order they come
        columns[:, 23] = np.arange(1.0, len(als) + 1.0)


def fill_person_columns(columns: FloatArray, candidates: IntArray, person: PersonItems, now: float) -> None:
    """Write the person's columns of `FEATURES` (0-15 and 34, for one row per candidate) into
    `columns`, whose `ITEM_COLUMNS` must already hold the item table (the item's overdue ratio needs
    its gap)."""
    owned, at = locate(person.items, candidates)
    _fill_own_columns(columns, owned, at, person, now)
    order_gap = _fill_person_rhythm(columns, person, now)
    since, invoices = columns[:, 2], columns[:, 1]
    share = np.divide(invoices, max(person.orders, 1), out=columns[:, 8])
    expected_orders = min(HORIZON_DAYS / max(order_gap, 1.0), 30.0)
    columns[:, 9] = 1.0 - np.power(1.0 - np.minimum(share, 1.0), expected_orders)
    repeat_rank = columns[:, 10]
    repeat_rank.fill(NEVER)
    repeat_rank[owned] = ranks(columns[owned, 5] + 1e-3 * invoices[owned])
    item_gap = columns[:, ITEM_COLUMNS.start + 9]
    columns[:, 34] = np.where(owned, since / np.maximum(item_gap, 1.0), -1.0)


def locate(items: IntArray, candidates: IntArray) -> tuple[BoolArray, IntArray]:
    """Which candidates are in the sorted `items`, and where (a valid but meaningless position when
    not)."""
    if not len(items):
        return np.zeros(len(candidates), np.bool_), np.zeros(len(candidates), np.intp)
    at = np.searchsorted(items, candidates)
    np.minimum(at, len(items) - 1, out=at)
    return items.take(at) == candidates, at


def _fill_own_columns(
    columns: FloatArray, owned: BoolArray, at: IntArray, person: PersonItems, now: float
) -> None:
    """Columns 0-7: the person's own history with each candidate."""
    columns[:, 0] = owned
    invoices, since, since_first = columns[:, 1], columns[:, 2], columns[:, 3]
    if len(person.items):
        person.invoices.take(at, out=invoices)
        np.divide(now - person.last.take(at), DAY, out=since)
        np.divide(now - person.first.take(at), DAY, out=since_first)
        person.decayed_30.take(at, out=columns[:, 4])
        person.decayed_180.take(at, out=columns[:, 5])
    missing = ~owned
    columns[missing, 1] = 0.0
    columns[missing, 2:4] = NEVER
    columns[missing, 4:6] = 0.0
    repeated = owned & (invoices > 1)
    gap = columns[:, 6]
    gap.fill(NEVER)
    np.divide(since_first - since, invoices - 1.0, out=gap, where=repeated)
    columns[:, 7] = np.where(repeated, since / np.maximum(gap, 1.0), -1.0)


def _fill_person_rhythm(columns: FloatArray, person: PersonItems, now: float) -> float:
    """Columns 11-15, the same for every candidate: orders, items, days since the last and first
    order, mean days between orders (returned)."""
    span = (person.last_order - person.first_order) / DAY if person.orders else 0.0
    order_gap = span / (person.orders - 1) if person.orders > 1 else NEVER
    columns[:, 11:16] = (
        float(person.orders),
        float(len(person.items)),
        (now - person.last_order) / DAY if person.orders else NEVER,
        (now - person.first_order) / DAY if person.orders else 0.0,
        order_gap,
    )
    return order_gap

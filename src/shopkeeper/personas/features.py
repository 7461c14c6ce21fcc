"""Persona inputs, checked, and the two feature views of them: scaled for clustering, readable for rules.

The scaled matrix (`feature_matrix`), one row per person, columns in this order:

1. `orders (log)`: log1p(frequency).
2. `revenue (log)`: log1p(monetary clipped at 0; refunds can make it a little negative).
3. `days since last order`: capped at 3 years (1,095 days); never ordered = the cap.
4. `days as customer`: days since first seen, capped the same way.
5. `days between orders (log)`: log1p of the median gap, capped the same way; people with fewer than 2
   orders get the median of those who have one (a neutral value), and column 6 tells them apart.
6. `repeat buyer`: 1 with 2+ orders, else 0.
7. `share: <category>`: each person's category weights divided by their row sum (0 for no weights), for
   the 12 categories with the largest total weight; `share: other categories` sums the rest (only when
   there are more than 12).
8. `country: <name>`: one-hot of the 5 most common non-empty countries, and `country: other` (the rest,
   unknown included).
9. `channel: <name>`: one-hot of the 4 most common non-empty channels, and `channel: other`.

Columns 1-5 are robust-scaled: minus their median, divided by their interquartile range (or the 10-90
range, then 1, where that is 0), both taken over customers (frequency >= 1), or over everyone when there
are none; column 5's over repeat buyers only (the neutral values would shrink its range). Column 6 and
the blocks stay on their 0-1 scale and are multiplied by a weight, so that they cannot swamp recency,
frequency and money: repeat buyer 1.0, category shares 0.75, countries 0.5, channels 0.5 (two people in
different countries are then 0.71 apart; at opposite quartiles of one RFM column, 1.0).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shopkeeper.errors import InvalidInput
from shopkeeper.personas.rules import (
    CHANNEL,
    COUNTRY,
    ORDERS,
    RECENCY,
    REVENUE,
    SHARE,
    TENURE,
    Column,
    Readable,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

CAP_DAYS = 3 * 365.0
TOP_CATEGORIES = 12
TOP_COUNTRIES = 5
TOP_CHANNELS = 4
REPEAT_WEIGHT = 1.0
CATEGORY_WEIGHT = 0.75
COUNTRY_WEIGHT = 0.5
CHANNEL_WEIGHT = 0.5


@dataclass(frozen=True)
class PersonaInputs:
    """One row per person. Arrays are coerced to numpy and checked on construction (`InvalidInput`).

    `recency_days`: days since last order, `inf` for never ordered. `frequency`: orders (>= 0).
    `monetary`: revenue in the shop's currency. `tenure_days`: days since first seen. `rhythm_days`:
    median days between orders, `nan` with fewer than 2. `category_weights`: (n, c) decayed affinity
    (>= 0) for the `categories`. `countries`, `channels`: strings, "" when unknown.
    """

    recency_days: FloatArray
    frequency: FloatArray
    monetary: FloatArray
    tenure_days: FloatArray
    rhythm_days: FloatArray
    categories: tuple[str, ...]
    category_weights: FloatArray
    countries: npt.NDArray[np.str_]
    channels: npt.NDArray[np.str_]

    def __post_init__(self) -> None:
        numeric = ("recency_days", "frequency", "monetary", "tenure_days", "rhythm_days")
        for field in numeric:
            _set(self, field, _vector(getattr(self, field), field, float))
        for field in ("countries", "channels"):
            _set(self, field, _vector(getattr(self, field), field, str))
        _set(self, "categories", tuple(str(name) for name in self.categories))
        n = len(self.frequency)
        for field in (*numeric, "countries", "channels"):
            if len(getattr(self, field)) != n:
                raise InvalidInput(
                    f"{field} has {len(getattr(self, field))} rows, frequency has {n}", field=field
                )
        try:
            weights = np.asarray(self.category_weights, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise InvalidInput("category_weights must be numbers", field="category_weights") from error
        if weights.size == 0:
            weights = weights.reshape(n, len(self.categories))
        if weights.shape != (n, len(self.categories)):
            shape = f"({n}, {len(self.categories)})"
            raise InvalidInput(
                f"category_weights must be {shape}, not {weights.shape}", field="category_weights"
            )
        _set(self, "category_weights", weights)
        self._check_values()

    def _check_values(self) -> None:
        checks = [
            ("frequency", np.isfinite(self.frequency) & (self.frequency >= 0)),
            ("monetary", np.isfinite(self.monetary)),
            ("recency_days", ~np.isnan(self.recency_days) & (self.recency_days >= 0)),
            ("tenure_days", np.isfinite(self.tenure_days) & (self.tenure_days >= 0)),
            ("rhythm_days", np.isnan(self.rhythm_days) | (self.rhythm_days >= 0)),
            (
                "category_weights",
                (np.isfinite(self.category_weights) & (self.category_weights >= 0)).all(axis=1),
            ),
        ]
        for field, ok in checks:
            if not ok.all():
                row = int(np.argmin(ok))
                raise InvalidInput(f"{field} has an invalid value in row {row}", field=field)
        if len(set(self.categories)) != len(self.categories):
            raise InvalidInput("categories must be unique", field="categories")

    @property
    def n(self) -> int:
        return len(self.frequency)


def _set(inputs: PersonaInputs, field: str, value: object) -> None:
    object.__setattr__(inputs, field, value)


def _vector(value: object, field: str, kind: type) -> npt.NDArray[np.generic]:
    try:
        array = np.asarray(value, dtype=np.float64 if kind is float else np.str_)
    except (TypeError, ValueError) as error:
        raise InvalidInput(
            f"{field} must be {'numbers' if kind is float else 'strings'}", field=field
        ) from error
    if array.ndim != 1:
        raise InvalidInput(f"{field} must be one-dimensional, not {array.shape}", field=field)
    return array


@dataclass(frozen=True)
class Features:
    """Both views of the inputs: `scaled` (n, d) with `names`, `readable`, and the category shares."""

    scaled: FloatArray
    names: list[str]
    readable: Readable
    shares: FloatArray  # (n, c) row-normalized category weights, every category


def customers_of(inputs: PersonaInputs) -> BoolArray:
    """People with at least one order: the ones personas are made of."""
    return inputs.frequency >= 1


def _capped(days: FloatArray) -> FloatArray:
    return np.minimum(np.where(np.isfinite(days), days, CAP_DAYS), CAP_DAYS)


def _top(values: npt.NDArray[np.str_], how_many: int) -> list[str]:
    counts = Counter(str(value) for value in values if value)
    return [value for value, _count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))][
        :how_many
    ]


def _robust(columns: FloatArray, reference: BoolArray) -> FloatArray:
    basis = columns[reference] if reference.any() else columns
    if len(basis) == 0:
        return columns
    q10, q25, median, q75, q90 = np.percentile(basis, [10, 25, 50, 75, 90], axis=0)
    spread = np.where(q75 - q25 > 0, q75 - q25, np.where(q90 - q10 > 0, q90 - q10, 1.0))
    return np.asarray((columns - median) / spread, dtype=np.float64)


def _one_hot(values: npt.NDArray[np.str_], top: list[str]) -> FloatArray:
    block = np.zeros((len(values), len(top) + 1))
    for j, value in enumerate(top):
        block[:, j] = values == value
    block[:, -1] = block[:, :-1].sum(axis=1) == 0
    return block


def top_categories(inputs: PersonaInputs) -> list[int]:
    """The indices of the (up to) 12 categories with the largest total weight, largest first."""
    totals = inputs.category_weights.sum(axis=0)
    order = sorted(range(len(totals)), key=lambda j: (-totals[j], j))
    return [j for j in order if totals[j] > 0][:TOP_CATEGORIES]


def features(inputs: PersonaInputs) -> Features:
    """The scaled matrix (see the module docstring), the readable view and the category shares."""
    customers = customers_of(inputs)
    orders, revenue = inputs.frequency, np.maximum(inputs.monetary, 0.0)
    recency, tenure = _capped(inputs.recency_days), _capped(inputs.tenure_days)
    has_rhythm = np.isfinite(inputs.rhythm_days)
    rhythm = np.log1p(_capped(inputs.rhythm_days))
    neutral = float(np.median(rhythm[has_rhythm])) if has_rhythm.any() else 0.0
    rhythm = np.where(has_rhythm, rhythm, neutral)
    continuous = np.column_stack([np.log1p(orders), np.log1p(revenue), recency, tenure])
    names = [
        "orders (log)",
        "revenue (log)",
        "days since last order",
        "days as customer",
        "days between orders (log)",
    ]
    scaled_rhythm = _robust(rhythm[:, None], customers & has_rhythm)
    blocks = [
        _robust(continuous, customers),
        scaled_rhythm,
        REPEAT_WEIGHT * (orders >= 2)[:, None].astype(np.float64),
    ]
    names.append("repeat buyer")

    row_sums = inputs.category_weights.sum(axis=1, keepdims=True)
    shares = np.divide(
        inputs.category_weights, row_sums, out=np.zeros_like(inputs.category_weights), where=row_sums > 0
    )
    top = top_categories(inputs)
    share_block = shares[:, top]
    names += [f"share: {inputs.categories[j]}" for j in top]
    if len(inputs.categories) > len(top):
        share_block = np.column_stack([share_block, 1.0 * (row_sums[:, 0] > 0) - share_block.sum(axis=1)])
        names.append("share: other categories")
    blocks.append(CATEGORY_WEIGHT * share_block)

    countries, channels = _top(inputs.countries, TOP_COUNTRIES), _top(inputs.channels, TOP_CHANNELS)
    blocks.append(COUNTRY_WEIGHT * _one_hot(inputs.countries, countries))
    names += [f"country: {value}" for value in countries] + ["country: other"]
    blocks.append(CHANNEL_WEIGHT * _one_hot(inputs.channels, channels))
    names += [f"channel: {value}" for value in channels] + ["channel: other"]
    scaled = np.ascontiguousarray(np.column_stack(blocks), dtype=np.float64)

    columns = [Column(ORDERS), Column(RECENCY), Column(REVENUE), Column(TENURE)]
    values = [orders, recency, revenue, tenure]
    columns += [Column(SHARE, inputs.categories[j]) for j in top]
    values += [shares[:, j] for j in top]
    columns += [Column(COUNTRY, value) for value in countries] + [
        Column(CHANNEL, value) for value in channels
    ]
    values += [1.0 * (inputs.countries == value) for value in countries]
    values += [1.0 * (inputs.channels == value) for value in channels]
    readable = Readable(np.column_stack(values).astype(np.float64), columns)
    return Features(scaled, names, readable, shares)


def feature_matrix(inputs: PersonaInputs) -> tuple[FloatArray, list[str]]:
    """The scaled feature matrix (n, d) and its column names; see the module docstring."""
    found = features(inputs)
    return found.scaled, found.names

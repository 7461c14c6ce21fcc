"""Order lines for offline evaluation, as arrays: one event per (customer, item, invoice).

Reading and cleaning a file's rows is intake's (`shopkeeper.events.importers.online_retail`); the shop's
own purchases come from `shopkeeper.training.store_orders`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shopkeeper.recommend.base import FloatArray, IntArray


@dataclass(frozen=True)
class OrderEvents:
    """One row per distinct (customer, item, invoice): codes into `customers` / `items`, epoch `times`."""

    customer: IntArray
    item: IntArray
    times: FloatArray
    price: FloatArray
    customers: list[str]
    items: list[str]
    rows_read: int
    rows_kept: int

    @classmethod
    def from_rows(
        cls,
        rows: Sequence[tuple[int, int, float, float]],
        customers: list[str],
        items: list[str],
        *,
        rows_read: int,
        rows_kept: int,
    ) -> OrderEvents:
        """From (customer code, item code, epoch time, price) rows."""
        table = np.array(rows, dtype=np.float64).reshape(-1, 4)
        return cls(
            customer=table[:, 0].astype(np.int64),
            item=table[:, 1].astype(np.int64),
            times=table[:, 2].copy(),
            price=table[:, 3].copy(),
            customers=customers,
            items=items,
            rows_read=rows_read,
            rows_kept=rows_kept,
        )


class DistinctOrderLines:
    """Collects `OrderEvents` rows: one per distinct (customer, item, order), the first one's time and
    price, customers and items coded in the order first seen."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str, str]] = set()
        self._customers: dict[str, int] = {}
        self._items: dict[str, int] = {}
        self._rows: list[tuple[int, int, float, float]] = []

    def add(self, customer: str, item: str, order: str, at: float, price: float = 0.0) -> None:
        if (customer, item, order) in self._seen:
            return
        self._seen.add((customer, item, order))
        code_of_customer = self._customers.setdefault(customer, len(self._customers))
        self._rows.append((code_of_customer, self._items.setdefault(item, len(self._items)), at, price))

    def events(self, *, rows_read: int, rows_kept: int) -> OrderEvents:
        return OrderEvents.from_rows(
            self._rows, list(self._customers), list(self._items), rows_read=rows_read, rows_kept=rows_kept
        )

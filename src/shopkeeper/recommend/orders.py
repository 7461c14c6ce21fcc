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

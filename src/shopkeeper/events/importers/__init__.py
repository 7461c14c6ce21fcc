"""Import a shop's past orders from files: the Online Retail format, or any order-lines CSV."""

from shopkeeper.events.importers.book import REASONS, BadRow, OrderBook
from shopkeeper.events.importers.generic import ColumnMapping, load_mapping, mapping_from
from shopkeeper.events.importers.orders import (
    ORDER_COMPLETED,
    ORDER_REFUNDED,
    Format,
    ImportReport,
    import_orders,
    read_orders,
)
from shopkeeper.events.importers.source import Source, open_file, open_sample

__all__ = [
    "ORDER_COMPLETED",
    "ORDER_REFUNDED",
    "REASONS",
    "BadRow",
    "ColumnMapping",
    "Format",
    "ImportReport",
    "OrderBook",
    "Source",
    "import_orders",
    "load_mapping",
    "mapping_from",
    "open_file",
    "open_sample",
    "read_orders",
]

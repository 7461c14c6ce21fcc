"""The catalog: items, their variants (size, colour) with stock, and the history of price and stock."""

from shopkeeper.catalog.items import ItemIn, VariantIn, parse_items

__all__ = ["ItemIn", "VariantIn", "parse_items"]

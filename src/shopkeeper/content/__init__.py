"""Guarded content: templates whose merge fields are checked for their slot and their source."""

from pathlib import Path

EXAMPLES = (
    Path(__file__).parent / "examples"
)  # the shipped templates: back_in_stock, price_drop, picked_for_you

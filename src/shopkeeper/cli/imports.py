"""`shopkeeper import`: load a shop's history (orders) and its catalog (items)."""

from __future__ import annotations

import typer

from shopkeeper.cli import import_items, import_orders

app = typer.Typer(
    help="Load a shop's past orders and its catalog. Imports are idempotent.", no_args_is_help=True
)
app.command("items")(import_items.import_items)
app.command("orders")(import_orders.import_orders_command)

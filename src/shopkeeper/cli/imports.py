"""`shopkeeper import`: load a shop's history (orders) and its catalog (items)."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Load a shop's past orders and its catalog. Imports are idempotent.", no_args_is_help=True
)

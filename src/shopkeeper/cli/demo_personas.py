"""The demo's personas and audiences: the few groups that cover most of the sample's customers, and one
narrow audience with the reach guard's word on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shopkeeper.cli._common import console
from shopkeeper.cli.personas import persona_table, print_reach, run_line

if TYPE_CHECKING:
    from shopkeeper.shop import Shop

# A narrow audience a marketer might be tempted by: regulars who bought gift wrap in the last 60 days.
NARROW = {"all": [{"purchased": "Wraps", "within_days": 60}, {"trait": "order_count", "gte": 5}]}


def show_personas(shop: Shop) -> None:
    """Discover the personas, print them, and show a narrow audience's reach and the guard's warning."""
    with console.status("Finding personas"):
        found = shop.personas.discover()
    console.print(f"\n[bold]Personas[/bold]: {run_line(found)}")
    console.print(persona_table(found["personas"]))
    saved, _ = shop.audiences.put("wrap-regulars", NARROW, "Regulars who bought gift wrap lately")
    console.print(f"An audience, wrap-regulars: {saved['summary']}.", markup=False)
    print_reach(saved["reach"])
    console.print(
        "Rename a persona with `shopkeeper personas rename ID NAME`; build audiences with "
        "`shopkeeper audiences create NAME --where JSON` (docs: Personas and audiences)."
    )

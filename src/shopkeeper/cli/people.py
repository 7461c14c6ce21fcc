"""`shopkeeper people`: what is known about a person, and the identity merges."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from shopkeeper.cli._common import DbOption, JsonOption, console, open_store, print_json
from shopkeeper.records import Merge, merge_to_json

app = typer.Typer(help="Look up people and the merges of their identities.", no_args_is_help=True)


@app.command("show")
def show(
    person_ref: Annotated[
        str,
        typer.Argument(
            metavar="ID", help="Any id the person is known by: a userId, an anonymousId or an email."
        ),
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a person's ids, merges, event counts and when they were last seen."""
    store = open_store(db)
    try:
        summary = store.person_summary(person_ref)
    finally:
        store.close()
    if as_json:
        print_json(summary.to_json())
        return
    console.print(
        f"[bold]Person {summary.person_id}[/bold] (internal id), known since "
        f"{summary.created_at:%Y-%m-%d %H:%M} UTC"
    )
    ids = Table("kind", "id", "linked", title="Ids", title_justify="left")
    for identity in summary.identities:
        ids.add_row(identity.kind, identity.value, f"{identity.linked_at:%Y-%m-%d %H:%M}")
    console.print(ids)
    counts = ", ".join(f"{n} {t}" for t, n in sorted(summary.event_counts.items())) or "none"
    console.print(f"Events: {summary.event_count} ({counts})")
    if summary.last_seen and summary.first_seen:
        console.print(
            f"First seen {summary.first_seen:%Y-%m-%d %H:%M}, last seen "
            f"{summary.last_seen:%Y-%m-%d %H:%M} UTC"
        )
    if summary.merges:
        console.print(_merge_table(summary.merges))


@app.command("merges")
def merges(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List every identity merge, and every merge refused because both sides were known users."""
    store = open_store(db)
    try:
        found = store.identities.merges()
    finally:
        store.close()
    if as_json:
        print_json([merge_to_json(m) for m in found])
        return
    if not found:
        console.print("No merges yet.")
        return
    console.print(_merge_table(found))


def _merge_table(found: list[Merge]) -> Table:
    table = Table("at", "outcome", "from person", "into person", "why", title="Merges", title_justify="left")
    for m in found:
        table.add_row(
            f"{m.at:%Y-%m-%d %H:%M}", m.outcome, str(m.from_person_id), str(m.into_person_id), m.reason
        )
    return table

"""`shopkeeper import items FILE`: load a catalog file, with a progress bar and a summary of what moved."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from shopkeeper.cli._common import DbOption, JsonOption, console, open_store, print_json

if TYPE_CHECKING:
    from shopkeeper.catalog.files import CatalogFile
    from shopkeeper.store import Store
    from shopkeeper.store.catalog import UpsertResult

CHUNK = 250  # items per transaction: each item is written whole, and a rerun picks up where one stopped
SHOWN_SKIPS = 50


def import_items(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help='A .json (a list of items, or {"items": [...]}), .jsonl (an item per line) or .csv file.',
            show_default=False,
        ),
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Load the catalog: items, their variants and stock. Importing the same file twice changes nothing."""
    from shopkeeper.catalog.files import read_catalog  # noqa: PLC0415 (the file formats: only here)

    catalog = read_catalog(file)
    store = open_store(db)
    try:
        result = _save(store, catalog, show_progress=not as_json)
    finally:
        store.close()
    if as_json:
        print_json(
            {
                "file": str(file),
                "format": catalog.format,
                "lines_read": catalog.lines_read,
                "items": len(catalog.items),
                "created": result.created,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "changes": result.changes,
                "skipped": [{"line": s.line, "reason": s.reason} for s in catalog.skipped],
            }
        )
        return
    _print_summary(file, catalog, result)


def _save(store: Store, catalog: CatalogFile, *, show_progress: bool) -> UpsertResult:
    from rich.progress import (  # noqa: PLC0415 (only an import draws a progress bar)
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from shopkeeper.store.catalog import UpsertResult  # noqa: PLC0415 (the store: on first use)

    created = updated = unchanged = changes = 0
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show_progress,
        transient=True,
    )
    with progress:
        task = progress.add_task("Saving items", total=len(catalog.items))
        for start in range(0, len(catalog.items), CHUNK):
            chunk = catalog.items[start : start + CHUNK]
            done = store.catalog.upsert(chunk)
            created += done.created
            updated += done.updated
            unchanged += done.unchanged
            changes += done.changes
            progress.advance(task, len(chunk))
    return UpsertResult(created=created, updated=updated, unchanged=unchanged, changes=changes)


def _print_summary(file: Path, catalog: CatalogFile, result: UpsertResult) -> None:
    table = Table("", "count", title=f"Imported {file.name} ({catalog.format})", title_justify="left")
    table.add_row("lines read", str(catalog.lines_read))
    table.add_row("items", str(len(catalog.items)))
    table.add_row("created", str(result.created))
    table.add_row("updated", str(result.updated))
    table.add_row("unchanged", str(result.unchanged))
    table.add_row("price and stock changes", str(result.changes))
    table.add_row("lines skipped", str(len(catalog.skipped)))
    console.print(table)
    if not catalog.skipped:
        return
    skips = Table("line", "why it was skipped", title="Skipped lines", title_justify="left")
    for skipped in catalog.skipped[:SHOWN_SKIPS]:
        skips.add_row(str(skipped.line), skipped.reason)
    console.print(skips)
    if len(catalog.skipped) > SHOWN_SKIPS:
        console.print(f"... and {len(catalog.skipped) - SHOWN_SKIPS} more; --json lists them all.")

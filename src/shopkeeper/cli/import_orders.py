"""`shopkeeper import orders FILE`: load past orders, with a progress bar and a summary of what moved."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shopkeeper.cli._common import (
    DbOption,
    JsonOption,
    console,
    open_store,
    print_json,
    without_cycle_collection,
)
from shopkeeper.errors import InvalidInput
from shopkeeper.wording import counted

if TYPE_CHECKING:
    from rich.progress import TaskID

    from shopkeeper.events.importers import ColumnMapping, ImportReport, Source
    from shopkeeper.store import Store

# The importers' `Format`, spelled out here: typer reads it from the signature when the CLI starts, and the
# importers (pydantic, the catalog, the store) load only for an import (issue 13, item 10). A test checks
# that both name the same formats (tests/cli/test_startup.py).
Format = Literal["online-retail", "generic"]

SHOWN_BAD_ROWS = 10
_COLUMNS = "Generic format: columns"


def _column(flag: str, field: str) -> Any:
    """A `--flag COL` option naming the column of one field (generic format)."""
    return typer.Option(
        flag,
        metavar="COL",
        help=f"The column holding the {field}.",
        rich_help_panel=_COLUMNS,
        show_default=False,
    )


def import_orders_command(
    file: Annotated[
        Path | None,
        typer.Argument(
            metavar="FILE",
            help="An order-lines CSV file, plain or gzip-compressed. Not with --sample.",
            show_default=False,
        ),
    ] = None,
    format: Annotated[
        Format | None,
        typer.Option(
            "--format",
            help="online-retail: the UCI Online Retail columns. generic: any order-lines CSV, through a "
            "column mapping. (Default: online-retail when the header is Online Retail's, else generic.)",
            show_default=False,
        ),
    ] = None,
    sample: Annotated[
        bool,
        typer.Option(
            "--sample",
            help="Import the sample of the UCI Online Retail data (CC BY 4.0) that ships with shopkeeper.",
        ),
    ] = False,
    as_recorded: Annotated[
        bool,
        typer.Option(
            "--as-recorded",
            help="With --sample: keep its own 2010-2011 dates (e.g. to evaluate on its months) instead of "
            "replaying it shifted so that it ends today.",
        ),
    ] = False,
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping",
            metavar="FILE.toml",
            help='A TOML file of `field = "column"` lines (and default_currency, timestamp_format, source). '
            "Flags override it.",
            rich_help_panel=_COLUMNS,
            show_default=False,
        ),
    ] = None,
    order_id: Annotated[str | None, _column("--order-id", "order id")] = None,
    customer_id: Annotated[str | None, _column("--customer-id", "customer id (empty: a guest order)")] = None,
    item_id: Annotated[str | None, _column("--item-id", "item id (SKU)")] = None,
    title: Annotated[str | None, _column("--title", "item's title")] = None,
    quantity: Annotated[str | None, _column("--quantity", "quantity (negative: a return)")] = None,
    price: Annotated[str | None, _column("--price", "unit price")] = None,
    timestamp: Annotated[str | None, _column("--timestamp", "order's date and time")] = None,
    currency: Annotated[str | None, _column("--currency", "currency code")] = None,
    country: Annotated[str | None, _column("--country", "customer's country")] = None,
    default_currency: Annotated[
        str | None,
        typer.Option(
            "--default-currency",
            metavar="CODE",
            help="The currency when there is no currency column, e.g. GBP.",
            rich_help_panel=_COLUMNS,
            show_default=False,
        ),
    ] = None,
    timestamp_format: Annotated[
        str | None,
        typer.Option(
            "--timestamp-format",
            metavar="FMT",
            help="A strptime format such as '%d/%m/%Y %H:%M' (default: ISO 8601). No zone means UTC.",
            rich_help_panel=_COLUMNS,
            show_default=False,
        ),
    ] = None,
    source_name: Annotated[
        str | None,
        typer.Option(
            "--source",
            metavar="NAME",
            help="What messageIds start with (`NAME:<order id>`), to keep two shops' order ids apart "
            "(default: generic).",
            rich_help_panel=_COLUMNS,
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import past orders: people, items and one order event per order. Importing twice changes nothing."""
    from shopkeeper.events.importers import (  # noqa: PLC0415 (the importers: on first use)
        ColumnMapping,
        load_mapping,
        open_file,
        open_sample,
    )
    from shopkeeper.profiles.builder import ProfileBuilder  # noqa: PLC0415

    flags = ColumnMapping(
        order_id=order_id,
        customer_id=customer_id,
        item_id=item_id,
        title=title,
        quantity=quantity,
        price=price,
        timestamp=timestamp,
        currency=currency,
        country=country,
        default_currency=default_currency,
        timestamp_format=timestamp_format,
        source=source_name,
    )
    generic_given = mapping is not None or flags != ColumnMapping()
    if sample and file is not None:
        raise InvalidInput("give FILE or --sample, not both", field="file")
    if not sample and file is None:
        raise InvalidInput("give an orders FILE to import, or --sample", field="file")
    if (sample or format == "online-retail") and generic_given:
        raise InvalidInput("--mapping and the column flags are for --format generic only", field="mapping")
    if as_recorded and not sample:
        raise InvalidInput(
            "--as-recorded is for --sample only: a file keeps its own dates", field="as_recorded"
        )
    if sample and format == "generic":
        raise InvalidInput("the sample is in the online-retail format", field="format")
    column_mapping: ColumnMapping | None = None
    if generic_given or format == "generic":
        base = load_mapping(mapping) if mapping is not None else ColumnMapping()
        column_mapping = base.overridden_by(flags).check()
        format = "generic"
    if sample:
        source = open_sample()
    else:
        assert file is not None
        source = open_file(file)
    # One acknowledgement, at the end: the chunks' commits skip SQLite's fsync, and one sync below makes
    # them all durable before the command reports (a rerun of an interrupted import stores the rest).
    store = open_store(db, bulk=True)
    now = datetime.now(UTC)
    try:
        with without_cycle_collection():
            report = _run(
                store,
                source,
                format,
                column_mapping,
                replay_until=now if sample and not as_recorded else None,
                show_progress=not as_json and sys.stderr.isatty(),
            )
            # Derive the imported people's profiles now, so that the first decision for each of them
            # doesn't pay for it.
            started = time.perf_counter()
            rebuilt = ProfileBuilder(store).refresh_dirty()
            store.sync()
            rebuild_seconds = time.perf_counter() - started
    finally:
        store.close()
        source.close()
    if as_json:
        print_json(
            {**report.to_json(), "profiles_rebuilt": rebuilt, "rebuild_seconds": round(rebuild_seconds, 2)}
        )
        return
    console.print(f"Profiles of {counted(rebuilt, 'person', 'people')} derived in {rebuild_seconds:.1f} s.")
    _print_summary(report)
    if sample and not as_recorded:
        console.print(replay_note(report, now))


def _run(
    store: Store,
    source: Source,
    format: Format | None,
    mapping: ColumnMapping | None,
    *,
    replay_until: datetime | None,
    show_progress: bool,
) -> ImportReport:
    from rich.progress import (  # noqa: PLC0415 (only an import draws a progress bar)
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    from shopkeeper.events.importers import import_orders  # noqa: PLC0415 (the importers: on first use)

    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show_progress,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def on_progress(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            label = "Reading the file (bytes)" if stage == "read" else "Storing orders"
            tasks[stage] = progress.add_task(label, total=total)
        progress.update(tasks[stage], completed=done, total=total)

    with progress:
        return import_orders(
            store, source, format=format, mapping=mapping, on_progress=on_progress, replay_until=replay_until
        )


def replay_note(report: ImportReport, now: datetime) -> str:
    """What a replay of the sample did to its dates, in one sentence."""
    end = report.newest_order_at
    if end is None:
        return ""
    if not report.shifted_days:
        return (
            f"The sample's orders are stored with their own dates, up to {end.day} {end:%b %Y} (an earlier "
            "import stored them so), and ages and expiry measure them against now; a new database "
            "replays them shifted so that they end today."
        )
    real_end = end - timedelta(days=report.shifted_days)
    when = {now.date(): "today", (now - timedelta(days=1)).date(): "yesterday"}.get(
        end.date(), f"on {end.day} {end:%b %Y}"
    )
    return (
        f"The sample's real orders, up to {real_end.day} {real_end:%b %Y}, are replayed shifted by "
        f"{report.shifted_days:,} days so that they end {when}, as a live shop's would: profile ages, "
        "expiry and purge all measure against now."
    )


def _print_summary(report: ImportReport) -> None:
    from shopkeeper.events.importers import REASONS  # noqa: PLC0415 (loaded by the import before this)

    console.print(
        f"Imported [bold]{escape(report.file)}[/bold] ({report.format}) in {report.seconds:.1f} s: "
        f"{counted(report.orders, 'order')} and {counted(report.returns, 'return')} stored."
    )
    table = Table("", "rows", "", title="Summary", title_justify="left", show_header=False)
    table.add_row("rows read", f"{report.rows_read:,}", "")
    table.add_row("imported", f"{report.rows_imported:,}", "order lines stored now")
    table.add_row("already imported", f"{report.rows_already_imported:,}", "in orders stored before")
    table.add_row("skipped", f"{sum(report.skipped.values()):,}", "")
    for reason, count in sorted(report.skipped.items(), key=lambda pair: -pair[1]):
        table.add_row(f"  {reason}", f"{count:,}", REASONS.get(reason, ""))
    table.add_row("orders", f"{report.orders:,}", '"Order Completed" events stored')
    table.add_row("returns", f"{report.returns:,}", '"Order Refunded" events stored')
    table.add_row("orders already imported", f"{report.orders_already_imported:,}", "orders and returns")
    table.add_row("people created", f"{report.people_created:,}", "")
    table.add_row("items created", f"{report.items_created:,}", "")
    table.add_row("items updated", f"{report.items_updated:,}", "empty fields filled in")
    table.add_row("items unchanged", f"{report.items_unchanged:,}", "")
    console.print(table)
    if report.bad_rows:
        shown = report.bad_rows[:SHOWN_BAD_ROWS]
        bad = Table(
            "line",
            "reason",
            "detail",
            title=f"Bad rows (the first {len(shown)} of {len(report.bad_rows):,}; all with --json)",
            title_justify="left",
        )
        for row in shown:
            bad.add_row(str(row.line), row.reason, escape(row.detail))
        console.print(bad)

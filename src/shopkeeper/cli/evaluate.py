"""`shopkeeper evaluate`: the default model against tuned anchors on a global temporal split (issue 4)."""

from __future__ import annotations

import enum
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shopkeeper.cli._common import DbOption, JsonOption, console, open_store, print_json, safe_url
from shopkeeper.errors import InvalidInput


class OrdersFormat(enum.StrEnum):
    online_retail = "online-retail"


def _date(value: str, flag: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidInput(f"{flag} must be a date like 2011-09-01, not {value!r}", field=flag) from exc


def evaluate(
    cutoff: Annotated[
        str,
        typer.Option(
            "--cutoff", metavar="DATE", help="First day of the test window (YYYY-MM-DD).", show_default=False
        ),
    ],
    orders: Annotated[
        Path | None,
        typer.Option(
            "--orders",
            metavar="FILE",
            help="An order-lines CSV (plain or .gz). Without it, the purchases in the shop's database.",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="DATE",
            help="Last day of the test window, included (default: the end of the file).",
            show_default=False,
        ),
    ] = None,
    format: Annotated[
        OrdersFormat, typer.Option("--format", help="The CSV's columns.")
    ] = OrdersFormat.online_retail,
    db: DbOption = None,
    no_default: Annotated[
        bool, typer.Option("--no-default", help="Only the anchors: skip the default model.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Evaluate the default model and the tuned anchors offline: train before --cutoff, test until --until.

    Hyperparameters are tuned on the last 30 days before the cutoff only. Metrics are NDCG@10,
    Recall@20, HR@10 and catalog coverage@10, for the tasks `all` (repeat purchases count) and `new`.
    The orders come from --orders FILE, or else from the shop at --db (its purchases, one weight per
    order); an evaluation of the shop's own purchases is kept in it, for the dashboard to chart.
    """
    from shopkeeper.events.importers.online_retail import read_online_retail  # noqa: PLC0415
    from shopkeeper.recommend.anchors import run_protocol  # noqa: PLC0415 (the recommenders: only here)
    from shopkeeper.recommend.default import make_default  # noqa: PLC0415
    from shopkeeper.training import store_orders  # noqa: PLC0415

    if orders is not None and db is not None:
        raise InvalidInput("give --orders FILE or --db URL, not both", field="--db")
    start = _date(cutoff, "--cutoff")
    end = _date(until, "--until") + timedelta(days=1) if until is not None else None
    if end is not None and end <= start:
        raise InvalidInput("--until must not be before --cutoff", field="--until")
    status = Console(stderr=True, highlight=False)
    with status.status("reading orders") as spinner:
        if orders is not None:
            events, source = read_online_retail(orders), str(orders)
        else:
            with closing(open_store(db)) as store:
                events, source = store_orders(store), f"the shop at {safe_url(str(store.engine.url))}"
        if not len(events.times) or not (events.times < start.timestamp()).any():
            raise InvalidInput(f"no cleaned orders before the cutoff {cutoff} in {source}", field="--cutoff")
        report = run_protocol(
            events,
            start.timestamp(),
            None if end is None else end.timestamp(),
            default_factory=None if no_default else make_default,
            progress=lambda message: spinner.update(message),
        )
    report["split"].update(
        source="file" if orders is not None else "database",
        rows_read=events.rows_read,
        rows_kept=events.rows_kept,
        cutoff=start.date().isoformat(),
        until=None if end is None else (end - timedelta(days=1)).date().isoformat(),
        validation_cutoff=datetime.fromtimestamp(report["split"]["validation_cutoff"], UTC)
        .date()
        .isoformat(),
    )
    if orders is None:  # the shop's own purchases: kept, for the dashboard's Recommendations page
        with closing(open_store(db)) as store:
            store.evaluations.record(report)
    if as_json:
        print_json(report)
        return
    print_report(report)
    if orders is None:
        console.print("Kept as the shop's latest evaluation: the dashboard's Recommendations page charts it.")


def print_report(report: dict[str, Any]) -> None:
    """The split's counts, then one table per task, best NDCG@10 first."""
    split = report["split"]
    console.print(
        f"Train before {split['cutoff']}: {split['train_users']} people, {split['train_items']} items, "
        f"{split['train_events']} item-invoices. Test to {split['until'] or 'the end'}: "
        f"{split['test_users']} people (task all), {split['test_users_new']} (task new). "
        f"Tuned on {split['validation_cutoff']} .. {split['cutoff']} ({split['validation_users']} people)."
    )
    for task in ("all", "new"):
        rows = sorted(
            (r for r in report["results"] if r["task"] == task), key=lambda r: -float(r["ndcg_at_10"])
        )
        table = Table(
            "model",
            "NDCG@10",
            "Recall@20",
            "HR@10",
            "coverage@10",
            "fit s",
            "validation NDCG@10",
            title=f"task {task}",
            title_justify="left",
        )
        for row in rows:
            name = f"[bold]{row['model']} (default)[/bold]" if row["default"] else row["model"]
            table.add_row(
                name,
                f"{row['ndcg_at_10']:.4f}",
                f"{row['recall_at_20']:.4f}",
                f"{row['hr_at_10']:.4f}",
                f"{row['coverage_at_10']:.4f}",
                f"{row['fit_seconds']:.2f}",
                "" if row.get("validation_ndcg_at_10") is None else f"{row['validation_ndcg_at_10']:.4f}",
            )
        console.print(table)

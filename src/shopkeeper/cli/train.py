"""`shopkeeper train`: refit the default model on the whole event log and publish a new version."""

from __future__ import annotations

from rich.table import Table

from shopkeeper.cli._common import DbOption, JsonOption, console, open_shop, print_json
from shopkeeper.wording import counted


def train(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Fit the default recommender on every purchase, cart and view, and publish it atomically.

    Running servers pick the new version up within a few seconds; they never see half a model.
    """
    with (
        open_shop(db) as shop,
        console.status("Training", spinner="dots") if not as_json and console.is_terminal else _nothing(),
    ):
        published = shop.train()
    summary = published.summary
    if as_json:
        print_json({"version": published.version, **summary})
        return
    table = Table("", "", title=f"Model version {published.version} published", title_justify="left")
    table.add_row("model", str(summary["model"]))
    people = counted(summary["people"], "person", "people")
    table.add_row("trained on", f"{counted(summary['purchases'], 'purchase')} by {people}")
    table.add_row("items", f"{summary['items']:,}")
    table.add_row("data up to", str(summary["trained_until"])[:16].replace("T", " "))
    table.add_row("time", f"{summary['load_seconds'] + summary['fit_seconds']:.1f} s")
    console.print(table)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None

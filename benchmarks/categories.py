"""How often the title categorizer names what a shop assistant would shelve a product under.

Both rules are fitted on the bundled sample's 3,035 titles, as `import orders --sample` does, and scored
on hand labels (tests/catalog/README.md says how they were made): `test` is 200 titles labelled before
the categorizer changed and never used to choose anything; `dev` is 80 more, used to choose the new rule.
A title is right when its head's plural is the label ("Bags > Lunch bags" is right for "bags").

    .venv/bin/python benchmarks/categories.py
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Protocol

from categories_support import rightmost
from goals import record
from rich.console import Console
from rich.table import Table

from shopkeeper.events.importers import open_sample, read_orders
from shopkeeper.events.importers.categorize import OTHER, TitleCategorizer

LABELS = Path(__file__).parents[1] / "tests" / "catalog"
DRAWS = {"test": ("category_labels.csv", 12, 200), "dev": ("category_labels_dev.csv", 7, 80)}


class Categorizer(Protocol):
    def category(self, title: str) -> rightmost.Category: ...


def plural_of(model: Categorizer, word: str) -> str:
    return model.plural_of(word) if isinstance(model, TitleCategorizer) else model._plural(word)


def sample_titles() -> list[str]:
    """The sample's item titles, as the importer names each item (its most common description)."""
    with open_sample() as source:
        _, book = read_orders(source)
    return [seen.title(item_id) for item_id, seen in book.items.items()]


def drawn(titles: list[str], seed: int, n: int, leave_out: set[str]) -> list[str]:
    """The seeded draw the labels were made on: `n` distinct titles (the dev draw leaves out test's)."""
    distinct = sorted(set(titles))
    if not leave_out:
        return random.Random(seed).sample(distinct, n)
    return [t for t in random.Random(seed).sample(distinct, 120) if t not in leave_out][:n]


def labels(name: str) -> list[tuple[str, str]]:
    with (LABELS / DRAWS[name][0]).open(newline="") as file:
        return [(row["title"], row["label"]) for row in csv.DictReader(file)]


def shelf(model: Categorizer, title: str) -> str:
    """The head's plural, lower-case: what the labels name; "other" for a title with no head."""
    head = model.category(title).head
    return plural_of(model, head).lower() if head is not None else OTHER.lower()


def main() -> None:
    titles = sample_titles()
    test = labels("test")
    assert [t for t, _ in test] == drawn(titles, 12, 200, set()), "the test labels are not the seeded draw"
    dev = labels("dev")
    assert [t for t, _ in dev] == drawn(titles, 7, 80, {t for t, _ in test}), "the dev labels moved"
    models: dict[str, Categorizer] = {
        "rightmost head (before issue 12)": rightmost.TitleCategorizer().fit(titles),
        "product lines (now)": TitleCategorizer().fit(titles),
    }
    accuracy: dict[str, float] = {}
    table = Table("rule", "test: right", "test accuracy", "dev: right", "dev accuracy", title="Categories")
    for name, model in models.items():
        right = {
            part: sum(shelf(model, t) == label for t, label in labelled)
            for part, labelled in (("test", test), ("dev", dev))
        }
        accuracy[name] = right["test"] / len(test)
        table.add_row(
            name,
            f"{right['test']} / {len(test)}",
            f"{right['test'] / len(test):.1%}",
            f"{right['dev']} / {len(dev)}",
            f"{right['dev'] / len(dev):.1%}",
        )
    console = Console()
    console.print(table)
    now, before = accuracy["product lines (now)"], accuracy["rightmost head (before issue 12)"]
    record(
        "categories",
        f"titles shelved right, {len(test)} hand-labelled test titles (no goal stated)",
        f"{now:.1%}",
        anchor=f"rightmost head (before issue 12) {before:.1%}",
        ratio=now / before,
    )
    examples = ("JUMBO BAG DOILEY PATTERNS", "HOT WATER BOTTLE KEEP CALM")
    for name, model in models.items():
        console.print(f"{name}: " + "; ".join(f"{t} -> {model.category(t).path}" for t in examples))


if __name__ == "__main__":
    main()

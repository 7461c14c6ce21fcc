"""`shopkeeper people`: what is known about a person, and the identity merges."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from shopkeeper.cli._common import DbOption, JsonOption, console, open_shop, print_json
from shopkeeper.wording import counted

if TYPE_CHECKING:
    from shopkeeper.profiles.service import Profile
    from shopkeeper.profiles.traits import ResolvedTrait
    from shopkeeper.shop import Shop
    from shopkeeper.store.identity import Merge

app = typer.Typer(
    help="Look up people and the merges of their identities; their consent, a preference-centre link, "
    "an export of everything about them, and erasure.",
    no_args_is_help=True,
)


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
    """Print a person's ids, merges, event counts, and traits grouped by source with their evidence."""
    with open_shop(db) as shop:
        profile = shop.profile(person_ref)
        wishes = _wishes(shop, profile.summary.person_id)
    if as_json:
        print_json(profile.to_json())
        return
    summary = profile.summary
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
    _print_traits(profile)
    for wish in wishes:
        console.print(wish)


def _wishes(shop: Shop, person_id: int) -> list[str]:
    """The person's wishes in force, a line each (read from the store: `people show` loads no service)."""
    with shop.store.engine.connect() as conn:
        everyone = shop.store.identities.with_merged(person_id, conn)
        found = [w for w in shop.store.moments.wishes_of(conn, everyone) if w.status in ("open", "notified")]
        titles = shop.store.moments.item_facts(conn, [w.item_id for w in found])
    lines = []
    for wish in found:
        title = titles.get(wish.item_id, {}).get("title", wish.item_id)
        wanted = wish.variant_id or ", ".join(f"{k} {v}" for k, v in wish.attributes.items()) or "any"
        lines.append(f"Wish: {title} ({wanted}), {wish.source}, since {wish.created_at:%Y-%m-%d}")
    return lines


def _print_traits(profile: Profile) -> None:
    titles = {
        "stated": "You told us (stated)",
        "observed": "We saw (observed)",
        "inferred": "We guessed (inferred)",
    }
    for source, found in profile.by_source().items():
        if not found:
            continue
        table = Table(
            "trait", "value", "age", "weight", "evidence", title=titles[source], title_justify="left"
        )
        for trait in found:
            table.add_row(
                trait.key,
                _show(trait.value),
                _age(trait.age.days),
                f"{trait.weight:.2f}",
                _evidence(trait.record.evidence, trait),
            )
        console.print(table)
    if not profile.traits:
        console.print("No traits yet.")
    console.print(f"Ages are measured to now, {profile.as_of:%Y-%m-%d %H:%M} UTC.")


def _show(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _age(days: int) -> str:
    if days < 1:
        return "today"
    if days < 60:
        return f"{days} d"
    return f"{days / 30.4:.0f} mo" if days < 730 else f"{days / 365.25:.1f} y"


def _evidence(evidence: Mapping[str, object], trait: ResolvedTrait) -> str:
    parts = []
    if "model" in evidence:
        parts.append(f"model {evidence['model']}")
    count = evidence.get("count")
    if isinstance(count, int):
        parts.append(f"{count} event{'s' if count != 1 else ''}")
    overridden = [c for c in trait.considered if c.status == "outranked"]
    if overridden:
        parts.append("beats " + ", ".join(f"{c.record.source} {_show(c.record.value)}" for c in overridden))
    return "; ".join(parts)


@app.command("merges")
def merges(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List every identity merge, and every merge refused because both sides were known users."""
    from shopkeeper.store.identity import merge_to_json  # noqa: PLC0415 (the store: on first use)

    with open_shop(db) as shop:
        found = shop.merges()
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


@app.command("rebuild")
def rebuild(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Rebuild every profile's traits from the event log (the source of truth)."""
    from rich.progress import Progress  # noqa: PLC0415 (only a rebuild draws a progress bar)

    with open_shop(db) as shop:
        started = time.perf_counter()
        with Progress(transient=True, disable=as_json or not console.is_terminal, console=console) as bar:
            task = bar.add_task("Rebuilding profiles", total=None)
            count = shop.profiles.builder.rebuild_all(on_progress=lambda n: bar.advance(task, n))
        seconds = time.perf_counter() - started
    if as_json:
        print_json({"people": count, "seconds": round(seconds, 3)})
        return
    console.print(f"Rebuilt {counted(count, 'profile')} from the event log in {seconds:.1f} s.")

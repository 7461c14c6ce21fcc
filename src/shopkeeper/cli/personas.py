"""`shopkeeper personas` and `shopkeeper audiences`: the few groups that cover most customers, and saved
audiences with their reach and the reach guard's word."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from shopkeeper.cli._common import DbOption, JsonOption, console, open_shop, print_json
from shopkeeper.errors import InvalidInput, NotFound

personas = typer.Typer(
    help="Personas: discover the few groups that cover most customers, list, show and rename them.",
    no_args_is_help=True,
)
audiences = typer.Typer(
    help="Audiences: saved conditions on people, with their live size and reach.", no_args_is_help=True
)


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def persona_table(found: list[dict[str, Any]]) -> Table:
    table = Table("id", "name", "people", "customers", "revenue", "who (the rule, its agreement)", "buys")
    for p in found:
        table.add_row(
            escape(p["id"]),
            escape(p["name"]) + ("" if p.get("stable", True) else " [yellow](unstable)[/yellow]"),
            f"{p['size']:,}",
            _pct(p["share_customers"]),
            _pct(p["share_revenue"]),
            escape(f"{p['rule']} ({_pct(p['rule_agreement'])})"),
            escape(", ".join(p["top_categories"]) or "-"),
        )
    return table


def run_line(run: dict[str, Any]) -> str:
    silhouette = "-" if run["silhouette"] is None else f"{run['silhouette']:.2f}"
    stability = "-" if run["stability_ari"] is None else f"{run['stability_ari']:.2f}"
    how = "RFM groups (a small shop)" if run["method"] == "rfm" else "clusters"
    rest = run["everyone_else"]
    return (
        f"{run['k']} personas cover {run['coverage']:.0%} of {run['customers']:,} customers "
        f"({how}; separation: silhouette {silhouette}; stability under resampling: ARI {stability}). "
        f"Everyone else: {rest['size']:,} ({_pct(rest['share_customers'])})."
    )


@personas.command("discover")
def discover(
    k: Annotated[
        str, typer.Option("--k", help="How many personas: auto (the fewest that cover the target), or N.")
    ] = "auto",
    seed: Annotated[int, typer.Option("--seed", help="The random seed (the same seed, the same run).")] = 0,
    target: Annotated[
        float, typer.Option("--target", help="The share of customers the personas should cover.")
    ] = 0.7,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find the personas now, keep their ids and names from the last run, and say who moved."""
    wanted: int | None
    if k == "auto":
        wanted = None
    else:
        try:
            wanted = int(k)
        except ValueError:
            raise InvalidInput("--k is auto or a number of personas from 2 to 12", field="k") from None
    if not 0 <= seed < 2**31:
        raise InvalidInput("--seed is a whole number from 0 to 2147483647", field="seed")
    with open_shop(db) as shop:
        found = shop.personas.discover(k=wanted, seed=seed, target=target)
    if as_json:
        print_json(found)
        return
    console.print(run_line(found))
    console.print(persona_table(found["personas"]))
    for moved in found["churn"][:5]:
        console.print(f"Since the last run: {moved['text']}.", markup=False)
    console.print(f"Done in {found['seconds']:.1f} s. Rename one: shopkeeper personas rename ID NAME")


@personas.command("list")
def list_personas(db: DbOption = None, as_json: JsonOption = False) -> None:
    """The personas of the newest run, with its coverage."""
    with open_shop(db) as shop:
        found = shop.personas.list()
    if as_json:
        print_json(found)
        return
    if found["run"] is None:
        console.print("No personas yet: run `shopkeeper personas discover`.")
        return
    console.print(run_line(found["run"]))
    console.print(persona_table(found["personas"]))


@personas.command("show")
def show_persona(
    persona_id: Annotated[str, typer.Argument(metavar="ID", help="The persona's id, e.g. p3.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """A persona: its rule, size, shares, top categories and items, and typical members."""
    with open_shop(db) as shop:
        found = shop.personas.get(persona_id)
    if as_json:
        print_json(found)
        return
    console.print(
        f"[bold]{escape(found['id'])}: {escape(found['name'])}[/bold]. {escape(found['description'])}"
    )
    console.print(
        f"Who: {found['rule']} (the rule agrees on {_pct(found['rule_agreement'])} of them).", markup=False
    )
    console.print(f"Top categories: {', '.join(found['top_categories']) or '-'}", markup=False)
    for item in found["top_items"]:
        console.print(f"  {item['title']} ({item['item_id']}): bought by {item['buyers']:,}", markup=False)
    typical = ", ".join(str(p) for p in found["typical_members"]) or "-"
    console.print(f"Typical members (internal numbers): {typical}")
    if not found["stable"]:
        console.print("[yellow]Not stable: resampling the customers often splits or merges it.[/yellow]")


@personas.command("rename")
def rename_persona(
    persona_id: Annotated[str, typer.Argument(metavar="ID", help="The persona's id, e.g. p3.")],
    name: Annotated[str, typer.Argument(metavar="NAME", help="Its new name; it stays across runs.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Name a persona; the name stays when later runs find it again."""
    with open_shop(db) as shop:
        found = shop.personas.rename(persona_id, name)
    if as_json:
        print_json(found)
        return
    console.print(f"{found['id']} is now {found['name']!r}.", markup=False)


# ---- audiences ---------------------------------------------------------------------------------------


def print_reach(found: dict[str, Any]) -> None:
    """An audience's reach and the guard's warnings, as a person reads them."""
    known, active, revenue = found["known"], found["active"], found["revenue"]
    console.print(
        f"{found['size']:,} people: {_pct(known['share'])} of {known['people']:,} known, "
        f"{_pct(active['share'])} of {active['of']:,} active (last {active['days']} days), "
        f"{_pct(revenue['share'])} of revenue."
    )
    reachable = ", ".join(f"{purpose} {entry['people']:,}" for purpose, entry in found["reachable"].items())
    console.print(f"Reachable (consented, less the holdout's {found['holdout']['people']:,}): {reachable}.")
    for warning in found["guard"]["warnings"]:
        console.print(f"[yellow]{escape(warning)}[/yellow]")


@audiences.command("create")
def create_audience(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The audience's name.")],
    where: Annotated[
        str,
        typer.Option(
            "--where", metavar="JSON", help="The condition, in the audience language (docs/audiences)."
        ),
    ],
    description: Annotated[str | None, typer.Option("--description", help="What it is for.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create (or replace) an audience, and print its reach and the guard's word."""
    try:
        condition = orjson.loads(where)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"--where is not valid JSON: {exc}", field="where") from None
    with open_shop(db) as shop:
        found, created = shop.audiences.put(name, condition, description)
    if as_json:
        print_json(found | {"created": created})
        return
    console.print(
        f"{'Created' if created else 'Replaced'} {found['name']}: {found['summary']}.", markup=False
    )
    print_reach(found["reach"])


@audiences.command("list")
def list_audiences(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every audience and its live size."""
    with open_shop(db) as shop:
        found = shop.audiences.list()
    if as_json:
        print_json({"items": found})
        return
    table = Table("name", "people", "who")
    for audience in found:
        table.add_row(escape(audience["name"]), f"{audience['size']:,}", escape(audience["summary"]))
    console.print(table)


@audiences.command("show")
def show_audience(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The audience's name.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """An audience: its condition, its reach and the guard's word."""
    with open_shop(db) as shop:
        found = shop.audiences.show(name)
    if as_json:
        print_json(found)
        return
    console.print(f"[bold]{escape(found['name'])}[/bold]: {escape(found['summary'])}.")
    print_reach(found["reach"])


@audiences.command("delete")
def delete_audience(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The audience's name.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete an audience (what targets it must be changed first)."""
    with open_shop(db) as shop:
        deleted = shop.audiences.delete(name)
    if not deleted:
        raise NotFound(f"no audience is named {name!r}", field="name")
    if as_json:
        print_json({"deleted": True, "name": name})
        return
    console.print(f"Deleted {name}.")


@audiences.command("compare")
def compare_audience(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The narrow audience.")],
    placement: Annotated[
        str, typer.Option("--placement", help="Where the same placement is shown to both groups.")
    ] = "web",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Broad vs narrow: show the same placement to the audience and to an equal random sample of
    everyone else, and report which reaches more revenue in total (started on the first call)."""
    from shopkeeper.decide.placements import placements_from  # noqa: PLC0415
    from shopkeeper.personas.compare import compare  # noqa: PLC0415

    with open_shop(db) as shop:
        placements = placements_from(shop.settings.placements_json)
        found = compare(shop.audiences, shop.experiments, placements, name, placement=placement)
    if as_json:
        print_json(found)
        return
    console.print(found["headline"], markup=False)
    for line in found["summary"]:
        console.print(f"  {line}", markup=False)

"""`shopkeeper content`: lint, preview, load and list the shop's templates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from shopkeeper.cli._common import DbOption, JsonOption, console, open_shop, print_json, settings_for

if TYPE_CHECKING:
    from shopkeeper.content.service import Message

app = typer.Typer(
    help="Templates whose merge fields never embarrass the shop: lint, preview, load, list.",
    no_args_is_help=True,
)


@app.command("lint")
def lint_template(
    target: Annotated[
        str, typer.Argument(metavar="FILE|NAME", help="A template file (JSON), or a saved name.")
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lint a template: each finding with its line, column, code and the fix. Exit 1 on findings."""
    from shopkeeper.content.sensitive import DEFAULT_SENSITIVE, Sensitive  # noqa: PLC0415 (on first use)
    from shopkeeper.content.service import read_template_file  # noqa: PLC0415
    from shopkeeper.content.template import lint, parse_template  # noqa: PLC0415

    settings = settings_for(db)
    path = Path(target)
    source_text: str | None = None
    if path.suffix == ".json" or path.is_file():
        raw = read_template_file(path)
        source_text = path.read_text(encoding="utf-8", errors="replace")
        where = str(path)
    else:
        with open_shop(db) as shop:
            stored = shop.content.get(target)
        raw, where = stored.body, f"{stored.name} (version {stored.version})"
    findings = [
        f.to_json()
        for f in lint(
            parse_template(raw), sensitive=Sensitive(settings.sensitive_categories or DEFAULT_SENSITIVE)
        )
    ]
    if source_text is not None:
        findings = [_in_file(f, source_text) for f in findings]
    if as_json:
        print_json({"template": where, "findings": findings})
    elif not findings:
        console.print(f"{where}: no findings")
    else:
        for f in findings:
            typer.echo(f"{where}:{f['line']}:{f['column']}: {f['code']} ({f['part']}) {f['message']}")
        console.print(f"{len(findings)} finding(s)")
    if findings:
        raise typer.Exit(1)


@app.command("preview")
def preview(
    name: Annotated[str, typer.Argument(help="A saved template's name.")],
    person: Annotated[
        list[str] | None,
        typer.Option("--person", help="A person's id (any of their ids). Repeat for several."),
    ] = None,
    hostile: Annotated[
        bool,
        typer.Option("--hostile", help="Also the built-in hostile profiles (ALL CAPS, emoji, RTL, ...)."),
    ] = False,
    html: Annotated[bool, typer.Option("--html", help="Print each HTML part too.")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Render a template for real people and hostile profiles: the parts, each field's value and source,
    whether its fallback was used, and any abort with its reason. Nothing is sent or logged."""
    if not person and not hostile:
        raise typer.BadParameter("name at least one --person, or --hostile", param_hint="--person")
    with open_shop(db) as shop:
        previews = shop.content.preview(name, person or [], hostile=hostile)
    if as_json:
        print_json({"previews": [_preview_json(m) for m in previews]})
        return
    for message in previews:
        _print_message(message, html=html)


@app.command("load")
def load(
    folder: Annotated[
        Path | None, typer.Argument(metavar="[DIR]", help="A folder of *.json templates.")
    ] = None,
    examples: Annotated[
        bool, typer.Option("--examples", help="The two example templates shipped with shopkeeper.")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Save every *.json template in DIR (or the shipped examples) under its file name, a new version
    when it changed. All are linted first; none is saved when any has findings."""
    from shopkeeper.content import EXAMPLES  # noqa: PLC0415

    if (folder is None) == (not examples):
        raise typer.BadParameter("name a DIR, or say --examples (not both)", param_hint="DIR")
    with open_shop(db) as shop:
        saved = shop.content.load(folder or EXAMPLES)
    if as_json:
        print_json({"templates": [t.summary() for t in saved]})
        return
    for stored in saved:
        console.print(f"{stored.name}: version {stored.version} ({stored.channel})")


@app.command("list")
def list_templates(db: DbOption = None, as_json: JsonOption = False) -> None:
    """The shop's templates, each at its latest version."""
    with open_shop(db) as shop:
        found = shop.content.latest()
    if as_json:
        print_json({"templates": [t.summary() for t in found]})
        return
    if not found:
        console.print("No templates yet: `shopkeeper content load DIR` saves a folder of them.")
        return
    table = Table("name", "version", "channel", "saved", "by")
    for t in found:
        table.add_row(t.name, str(t.version), t.channel, f"{t.saved_at:%Y-%m-%d %H:%M}", t.saved_by)
    console.print(table)


def _preview_json(message: Message) -> dict[str, Any]:
    """The HTTP preview's shape: person, subject, html, text, fields, aborted (and the rest)."""
    return message.to_json()


def _print_message(message: Message, *, html: bool) -> None:
    console.print(f"\n== {message.person} ==", markup=False, highlight=False)
    if message.aborted is not None:
        console.print(f"[red]not produced[/red]: {message.aborted}", markup=True, highlight=False)
    else:
        console.print(f"Subject:   {message.subject}", markup=False, highlight=False)
        console.print(f"Preheader: {message.preheader}", markup=False, highlight=False)
    table = Table("field", "value", "source", "fallback used", title=None)
    for use in message.fields:
        value = (
            use.value
            if isinstance(use.value, str)
            else f"{len(use.value)} item(s)"
            if isinstance(use.value, list)
            else str(use.value)
        )
        table.add_row(
            use.name,
            value,
            use.source or "-",
            f"yes: {use.reason}" if use.fallback_used else "no",
        )
    console.print(table)
    if message.text:
        console.print(message.text, markup=False, highlight=False)
    if html and message.html:
        console.print(message.html, markup=False, highlight=False)


def _in_file(finding: dict[str, Any], text: str) -> dict[str, Any]:
    """A field's finding, pointed at the line and column of the field's name in the file."""
    if finding["part"] != "fields":
        return finding
    name = re.search(r"field '([^']+)'", finding["message"])
    start = text.find('"fields"')
    if name is None or start < 0:
        return finding
    found = re.compile(rf'"{re.escape(name.group(1))}"\s*:').search(text, start)
    if found is None:
        return finding
    line = text.count("\n", 0, found.start()) + 1
    column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    return {**finding, "line": line, "column": column}

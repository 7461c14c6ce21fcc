"""`shopkeeper keys`: create, list and revoke API keys."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from rich.table import Table

from shopkeeper.cli._common import DbOption, JsonOption, console, open_store, print_json

app = typer.Typer(
    help="Create, list and revoke API keys. Keys are stored hashed and shown once.", no_args_is_help=True
)


@app.command("create")
def create(
    kind: Annotated[
        Literal["write", "admin"],
        typer.Option("--kind", help="write: may only ingest events. admin: may read and manage."),
    ],
    name: Annotated[str, typer.Option("--name", help="A label to tell keys apart.")] = "",
    origin: Annotated[
        list[str] | None,
        typer.Option(
            "--origin",
            help="A browser origin this write key may be used from (CORS), e.g. "
            "https://shop.example. Repeat for several; '*' for any.",
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it. The key is the last word of the output."""
    store = open_store(db)
    try:
        raw, key = store.keys.create(kind, name=name, origins=origin or [])
    finally:
        store.close()
    if as_json:
        print_json(
            {
                "id": key.id,
                "kind": key.kind,
                "name": key.name,
                "allowed_origins": list(key.allowed_origins),
                "key": raw,
            }
        )
        return
    console.print(f"Created {kind} key {key.id}{f' ({name})' if name else ''}. It is shown only once:")
    typer.echo(raw)


@app.command("list")
def list_keys(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List keys (never the secrets: only their first characters)."""
    store = open_store(db)
    try:
        keys = store.keys.list()
    finally:
        store.close()
    if as_json:
        print_json(
            [
                {
                    "id": k.id,
                    "kind": k.kind,
                    "prefix": k.prefix,
                    "name": k.name,
                    "allowed_origins": list(k.allowed_origins),
                    "created_at": k.created_at.isoformat() if k.created_at else None,
                    "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                }
                for k in keys
            ]
        )
        return
    table = Table("id", "kind", "starts with", "name", "origins", "created", "revoked")
    for k in keys:
        table.add_row(
            str(k.id),
            k.kind,
            k.prefix + "…",
            k.name,
            ", ".join(k.allowed_origins),
            f"{k.created_at:%Y-%m-%d %H:%M}" if k.created_at else "",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
        )
    console.print(table)


@app.command("revoke")
def revoke(
    key_id: Annotated[int, typer.Argument(metavar="ID", help="The key's id, from `keys list`.")],
    db: DbOption = None,
) -> None:
    """Revoke a key. Servers stop accepting it within a few seconds."""
    store = open_store(db)
    try:
        store.keys.revoke(key_id)
    finally:
        store.close()
    console.print(f"Revoked key {key_id}.")

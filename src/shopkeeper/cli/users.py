"""`shopkeeper users`: the dashboard's users (owner, marketers, staff): create, list, change, disable."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from rich.table import Table

from shopkeeper.cli._common import DbOption, JsonOption, console, open_store, print_json

app = typer.Typer(
    help="The dashboard's users: owners manage users and keys, marketers see everything else, staff see "
    "the inbox and the people their tasks name. Passwords are stored as Argon2id hashes.",
    no_args_is_help=True,
)

RoleOption = Annotated[
    Literal["owner", "marketer", "staff"],
    typer.Option("--role", help="owner: everything. marketer: all but users and keys. staff: the inbox."),
]


def _accounts(db: str | None):  # type: ignore[no-untyped-def]
    from shopkeeper.privacy.accounts import Accounts  # noqa: PLC0415 (argon2 loads only here)

    store = open_store(db)
    return store, Accounts(store)


def _user_json(user: object) -> dict[str, object]:
    return {
        "id": user.id,  # type: ignore[attr-defined]
        "email": user.email,  # type: ignore[attr-defined]
        "role": user.role,  # type: ignore[attr-defined]
        "created_at": user.created_at.isoformat(),  # type: ignore[attr-defined]
        "disabled": user.disabled_at is not None,  # type: ignore[attr-defined]
    }


@app.command("create")
def create(
    email: Annotated[str, typer.Argument(help="The user's email: what they log in with.")],
    role: RoleOption,
    password: Annotated[
        str | None,
        typer.Option("--password", help="At least 10 characters. Asked for (hidden) when not given."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a dashboard user."""
    if password is None:
        password = typer.prompt(
            "Password (at least 10 characters)", hide_input=True, confirmation_prompt=True
        )
    store, accounts = _accounts(db)
    try:
        user = accounts.create(email, role, password)
    finally:
        store.close()
    if as_json:
        print_json(_user_json(user))
        return
    console.print(f"Created {user.role} {user.email} (user {user.id}). Log in at /dashboard.", markup=False)


@app.command("list")
def list_users(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List the dashboard's users (never their passwords)."""
    store, accounts = _accounts(db)
    try:
        users = accounts.list()
    finally:
        store.close()
    if as_json:
        print_json({"users": [_user_json(u) for u in users]})
        return
    table = Table("id", "email", "role", "created", "status")
    for user in users:
        table.add_row(
            str(user.id),
            user.email,
            user.role,
            f"{user.created_at:%Y-%m-%d}",
            "active" if user.active else "disabled",
        )
    console.print(table)


@app.command("set")
def change(
    user_id: Annotated[int, typer.Argument(help="The user's number (from `users list`).")],
    role: Annotated[
        Literal["owner", "marketer", "staff"] | None, typer.Option("--role", help="A new role.")
    ] = None,
    disable: Annotated[
        bool | None, typer.Option("--disable/--enable", help="Disable (logs them out) or enable the user.")
    ] = None,
    password: Annotated[
        bool, typer.Option("--password", help="Set a new password (asked for, hidden).")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a user's role, password, or whether they may log in. Any change ends their sessions."""
    new_password = (
        typer.prompt("New password (at least 10 characters)", hide_input=True, confirmation_prompt=True)
        if password
        else None
    )
    store, accounts = _accounts(db)
    try:
        if new_password is not None:
            accounts.set_password(user_id, new_password)
        user = accounts.change(user_id, role=role, disabled=disable)
    finally:
        store.close()
    if as_json:
        print_json(_user_json(user))
        return
    state = "active" if user.active else "disabled"
    console.print(f"User {user.id} ({user.email}) is now {user.role}, {state}.", markup=False)

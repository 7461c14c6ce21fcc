"""A person's rights from the command line (`people link|export|erase|consent`) and `maintenance purge`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from shopkeeper.cli._common import DbOption, JsonOption, console, open_shop, print_json, settings_for
from shopkeeper.cli._running import running, server_url
from shopkeeper.errors import InvalidInput
from shopkeeper.wording import counted

PersonArg = Annotated[
    str,
    typer.Argument(metavar="ID", help="Any id the person is known by: a userId, an anonymousId or an email."),
]
maintenance = typer.Typer(help="Housekeeping: retention.", no_args_is_help=True)


def link(
    person_ref: PersonArg,
    days: Annotated[int | None, typer.Option("--days", min=1, max=365, help="Valid for (default 30)")] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="The shop's public URL (default: SHOPKEEPER_PUBLIC_URL, else the server running on this "
            "database, else http://SHOPKEEPER_HOST:SHOPKEEPER_PORT)",
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a signed, expiring preference-centre link for one person (no password needed)."""
    from shopkeeper.privacy.tokens import issue_link, signing_secret  # noqa: PLC0415 (on first use)
    from shopkeeper.shop import Shop  # noqa: PLC0415

    settings = settings_for(db)
    with Shop.from_settings(settings) as shop:
        ttl = timedelta(days=days or settings.link_days)
        token = issue_link(shop.store, signing_secret(shop.store, settings), person_ref, ttl=ttl)
    server = running(settings.database_url)
    base = (
        base_url
        or settings.public_url
        or (server.url if server else server_url(settings.host, settings.port))
    ).rstrip("/")
    found = {"url": f"{base}/preferences#token={token}", "expires_at": (datetime.now(UTC) + ttl).isoformat()}
    if as_json:
        print_json(found)
        return
    console.print(found["url"])
    if not (base_url or settings.public_url or server):
        console.print(
            f"No server is running on this database, so the link assumes {base}: give the shop's address "
            "with --base-url or SHOPKEEPER_PUBLIC_URL."
        )
    console.print(
        f"Valid until {found['expires_at'][:16]} UTC. Anyone with this link can change this person's choices."
    )


def export(person_ref: PersonArg, db: DbOption = None) -> None:
    """Print everything about a person as JSON (events, traits with provenance, consents, decisions)."""
    with open_shop(db) as shop:
        print_json(shop.export(person_ref))


def erase(
    person_ref: PersonArg,
    yes: Annotated[bool, typer.Option("--yes", help="Don't ask for confirmation.")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Erase a person everywhere: events, ids, traits, decisions, consents. It cannot be undone."""
    with open_shop(db) as shop:
        person_id = shop.privacy.find(person_ref)
        if not yes and not typer.confirm(f"Erase person {person_id} and everything about them?"):
            raise typer.Exit(1)
        result = shop.erase(person_ref)
    if as_json:
        print_json(result)
        return
    counts = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in result["deleted"].items())
    console.print(f"Erased person {person_id}: {counts}.")
    console.print(result["note"])


def consent(
    person_ref: PersonArg,
    changes: Annotated[
        list[str] | None, typer.Argument(metavar="[PURPOSE=yes|no]...", help="e.g. email_marketing=no")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a person's consent per purpose and its history, or record changes (channel `cli`)."""
    with open_shop(db) as shop:
        if changes:
            parsed: dict[str, bool] = {}
            for change in changes:
                purpose, _, answer = change.partition("=")
                if answer.lower() not in ("yes", "no", "true", "false"):
                    raise InvalidInput(f"write PURPOSE=yes or PURPOSE=no, not {change!r}", field="consent")
                parsed[purpose] = answer.lower() in ("yes", "true")
            result = shop.set_consent(person_ref, parsed)
        else:
            result = shop.privacy.consent_of(person_ref, shop.privacy_actor)
    if as_json:
        print_json(result)
        return
    table = Table("purpose", "allowed", "since", "through", title="Consent", title_justify="left")
    for purpose, choice in result["purposes"].items():
        since = choice["at"][:16] if choice["at"] else "(default)"
        table.add_row(purpose, "yes" if choice["granted"] else "no", since, choice["channel"] or "")
    console.print(table)
    console.print(f"{counted(len(result['history']), 'recorded change')}.")


@maintenance.command("purge")
def purge(
    days: Annotated[
        int | None,
        typer.Option("--days", min=1, help="Keep events this many days (default SHOPKEEPER_RETENTION_DAYS)"),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete events, decisions and guesses older than the retention period. Safe to run again."""
    from shopkeeper.privacy.rights import purge as purge_store  # noqa: PLC0415 (on first use)
    from shopkeeper.shop import Shop  # noqa: PLC0415

    settings = settings_for(db)
    with Shop.from_settings(settings) as shop:
        counts = purge_store(
            shop.store,
            retention_days=days or settings.retention_days,
            inferred_retention_days=settings.inferred_retention_days,
        )
    if as_json:
        print_json(counts)
        return
    console.print(
        f"Purged {counted(counts['events'], 'event')}, {counted(counts['interactions'], 'interaction')}, "
        f"{counted(counts['decisions'], 'decision')} and "
        f"{counted(counts['inferred_traits'], 'guess', 'guesses')}; "
        f"{counted(counts['people_to_rebuild'], 'profile')} will be rebuilt from what is left."
    )

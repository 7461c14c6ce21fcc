"""`shopkeeper demo`: a real shop in one command. Import the bundled sample, train, show, serve."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from shopkeeper.cli._common import console, safe_url
from shopkeeper.cli._running import port_in_use, running, server_url
from shopkeeper.cli.demo_moments import MAIL_FOLDER, show_moments, with_mail_folder
from shopkeeper.cli.demo_personas import show_personas
from shopkeeper.cli.import_orders import replay_note
from shopkeeper.cli.serve import run_server

if TYPE_CHECKING:
    from shopkeeper.settings import Settings
    from shopkeeper.shop import Shop

DEMO_DATABASE = "sqlite:///shopkeeper-demo.db"
SHOWN_CUSTOMERS = 3


def demo(
    db: Annotated[
        str, typer.Option("--db", metavar="URL", help="Where the demo shop lives.")
    ] = DEMO_DATABASE,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Interface to listen on (default: SHOPKEEPER_HOST, 127.0.0.1)"),
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default: SHOPKEEPER_PORT, 8000)")] = None,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the server at the end.")] = True,
) -> None:
    """Create a local shop from the bundled real sample, train, show a few customers' picks, and serve."""
    # Loaded here, not when the CLI starts (issue 13, item 10).
    from shopkeeper.settings import Settings  # noqa: PLC0415

    settings = Settings().with_database(db)
    host, port = host or settings.host, port or settings.port
    if serve:
        _refuse_a_second_server(db, host, port)
    with ExitStack() as exits:
        _demo(with_mail_folder(settings, exits), db, host, port, serve=serve)


def _demo(settings: Settings, db: str, host: str, port: int, *, serve: bool) -> None:
    from shopkeeper.events.importers import import_orders, open_sample  # noqa: PLC0415
    from shopkeeper.shop import Shop  # noqa: PLC0415

    console.print(
        Panel.fit(
            "A real UK gift shop's orders (UCI Online Retail, Dec 2010 to Sep 2011, CC BY 4.0): customers "
            "17000-17999.\nNothing here is simulated, except where it says so (the sample has no stock).",
            title="shopkeeper demo",
        )
    )
    with Shop.from_settings(settings) as shop:
        now = datetime.now(UTC)
        with console.status("Importing the sample"), open_sample() as source:
            report = import_orders(shop.store, source, replay_until=now)
        console.print(
            f"Imported {report.orders:,} orders and {report.returns:,} returns "
            f"({report.orders_already_imported:,} were already there) into {safe_url(db)}."
        )
        console.print(replay_note(report, now))
        with console.status("Training"):
            published = shop.train()
        console.print(
            f"Trained model version {published.version} ({published.summary['model']}) on "
            f"{published.summary['purchases']:,} purchases in "
            f"{published.summary['fit_seconds']:.1f} s."
        )
        show_personas(shop)
        for user_id in _customers(shop):
            _show(shop, user_id)
        _show_newcomer(shop)
        _show_email(shop, _customers(shop)[0], db)
        show_moments(shop, _customers(shop))
        keys = shop.store.keys.list()
        new_keys: list[tuple[str, str]] = []
        if not keys:
            new_keys = [(kind, shop.store.keys.create(kind, name="demo")[0]) for kind in ("write", "admin")]
        login = _dashboard_login(shop)
    if new_keys:
        console.print("Keys for this demo shop (shown once):")
        for kind, raw in new_keys:
            console.print(f"  {kind:5}  {raw}")
        exports = " ".join(f"{kind.upper()}_KEY={raw}" for kind, raw in new_keys)
        console.print(f"For the README's examples: export {exports}")
    else:
        console.print(
            "This shop's keys were shown once, when they were made. Make another with: "
            f"shopkeeper keys create --kind admin --db {safe_url(db)}"
        )
    _print_dashboard(login, server_url(host, port), db)
    if not serve:
        return
    console.print(f"\nServing on http://{host}:{port}  (API docs: http://{host}:{port}/docs). Ctrl+C stops.")
    if settings.smtp_host == "127.0.0.1" and settings.mail_from == "demo-shop@example.com":
        console.print(
            f"Email moments are written to {MAIL_FOLDER.resolve()}/ while it runs; no real mail is sent."
        )
    run_server(settings, host, port)


DEMO_OWNER = "owner@shop.example"


def _dashboard_login(shop: Shop) -> str | None:
    """The demo's dashboard owner, made on the first run with a random password: the password (shown once),
    or None when the shop has users already."""
    import secrets  # noqa: PLC0415

    from shopkeeper.privacy.accounts import Accounts  # noqa: PLC0415

    accounts = Accounts(shop.store)
    if accounts.list():
        return None
    password = secrets.token_urlsafe(12)
    accounts.create(DEMO_OWNER, "owner", password)
    return password


def _print_dashboard(password: str | None, url: str, db: str) -> None:
    console.print(f"\nThe dashboard: {url}/dashboard", markup=False)
    if password is not None:
        console.print(f"  log in as {DEMO_OWNER} with the password {password} (shown once)", markup=False)
    else:
        console.print(
            "  log in with a user made before (shopkeeper users list). A lost password: "
            f"shopkeeper users set 1 --password --db {safe_url(db)}",
            markup=False,
        )


def _refuse_a_second_server(db: str, host: str, port: int) -> None:
    """Stop before importing and training when this shop is already served, or the port is taken."""
    server = running(db)
    if server is not None:
        console.print(
            f"This demo shop is already being served at {server.url} (API docs: {server.url}/docs), by "
            f"process {server.pid}. Nothing was changed.\n"
            "Its keys were shown once, when they were made. Make another with: "
            f"shopkeeper keys create --kind admin --db {safe_url(db)}\n"
            "To start afresh, stop that server first (Ctrl+C in its terminal)."
        )
        raise typer.Exit(1)
    if port_in_use(host, port):
        console.print(
            f"Another program already listens on {server_url(host, port)}. Nothing was changed.\n"
            "Stop it, or run the demo on another port: ./scripts/run --port 9000 "
            "(shopkeeper demo --port 9000)."
        )
        raise typer.Exit(1)


def _customers(shop: Shop) -> list[str]:
    """17850 (the first customer in the file), then the most frequent buyers."""
    busiest = shop.store.interactions.busiest_buyers(SHOWN_CUSTOMERS)
    chosen = ["17850", *[c for c in busiest if c != "17850"]]
    return chosen[:SHOWN_CUSTOMERS]


def _show(shop: Shop, user_id: str) -> None:
    profile = shop.profile(user_id)
    traits = profile.traits
    orders = traits["order_count"].value if "order_count" in traits else 0
    revenue = traits["revenue"].value if "revenue" in traits else 0
    liked = ", ".join(traits["favourite_categories"].value) if "favourite_categories" in traits else "-"
    decision = shop.decide(user_id=user_id, placement="email", n=5)
    table = Table(
        "#",
        "item",
        "why",
        show_header=True,
        title_justify="left",
        title=f"Customer {user_id}: {orders} orders, £{revenue:,.2f} spent; favourite: {liked}",
    )
    for rank, item in enumerate(decision.items, 1):
        table.add_row(str(rank), item.title or item.item_id, "; ".join(r.text for r in item.reasons))
    console.print(table)


def _show_email(shop: Shop, user_id: str, db: str) -> None:
    """Load the shipped templates, and preview the "picked for you" email for one customer (a preview:
    nothing is sent, nor logged as an exposure)."""
    from shopkeeper.content import EXAMPLES  # noqa: PLC0415

    saved = shop.content.load(EXAMPLES, by="demo")
    [message] = shop.content.preview("picked_for_you", [user_id])
    names = ", ".join(f"{t.name} (version {t.version})" for t in saved)
    console.print(f"Templates: {names}.")
    if message.aborted is not None:
        console.print(f'Customer {user_id}\'s "picked for you" email would not go out: {message.aborted}')
    else:
        console.print(f'Customer {user_id}\'s "picked for you" email: {message.subject}', markup=False)
    console.print(
        "See it whole, and against hostile names: shopkeeper content preview picked_for_you "
        f"--person {user_id} --hostile --db {safe_url(db)}",
        markup=False,
    )


def _show_newcomer(shop: Shop) -> None:
    decision = shop.decide(anonymous_id="a-first-time-visitor", placement="web", n=5)
    table = Table("#", "item", "why", title="A first-time visitor (no history yet)", title_justify="left")
    for rank, item in enumerate(decision.items, 1):
        table.add_row(str(rank), item.title or item.item_id, "; ".join(r.text for r in item.reasons))
    console.print(table)

"""The demo's moments: the default rules, a local mail folder instead of real mail, and one moment end to
end (a staff task for one customer, an email for another).

The sample has no stock and no email addresses, so the demo simulates what it needs and says so on
screen: an item of theirs sells out, they ask to be told when it is back, it comes back. Everything else
(the wish ledger, the rules, respect, the task's context, the rendered email) runs as in a real shop.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from shopkeeper.cli._common import console

if TYPE_CHECKING:
    from shopkeeper.settings import Settings
    from shopkeeper.shop import Shop

MAIL_FOLDER = Path("shopkeeper-mail")
DEMO_FROM = "demo-shop@example.com"


def with_mail_folder(settings: Settings, exits: ExitStack) -> Settings:
    """The settings, sending email to a local SMTP sink that writes each message into `shopkeeper-mail/`,
    unless the shop configured an SMTP server itself (`SHOPKEEPER_SMTP_HOST`): the demo never sends real
    mail on its own. The sink lives as long as `exits`."""
    if settings.smtp_host:
        return settings
    from shopkeeper.channels.email import MailFolderSink  # noqa: PLC0415 (aiosmtpd: on first use)

    sink = exits.enter_context(MailFolderSink(MAIL_FOLDER.resolve()))
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": sink.port,
            "mail_from": settings.mail_from or DEMO_FROM,
            "shop_name": settings.shop_name or "the demo gift shop",
        }
    )


def show_moments(shop: Shop, customers: list[str]) -> None:
    """The rules, then one back-in-stock moment each for two customers: by staff task, then by email."""
    rules = shop.moments.rules()
    console.print("Moment rules: " + "; ".join(f"{r['name']} ({' > '.join(r['channels'])})" for r in rules))
    shop.moments.engine.step()  # the engine reads from here on: the imported history is not news
    first, second = customers[0], customers[1] if len(customers) > 1 else customers[0]
    console.print(
        f"[dim]Simulated, to show a moment (the sample has no stock): one item each of customers {first} "
        f"and {second} sells out, they ask to hear when it is back, and it comes back. {second} has said no "
        "to staff calls and has a made-up address.[/dim]"
    )
    shop.set_consent(second, {"staff_outreach": False})
    shop.identify(user_id=second, traits={"email": f"customer-{second}@example.com"})
    for customer in (first, second):
        row = _restock_for(shop, customer)
        if row is not None:
            _show_row(shop, row)
    console.print(
        "Moments go out as events and stock changes arrive, while `shopkeeper serve` runs. See them all: "
        "shopkeeper outbox list; the staff inbox: shopkeeper tasks list",
        markup=False,
    )


def _restock_for(shop: Shop, customer: str) -> dict[str, Any] | None:
    from shopkeeper.catalog.items import parse_items  # noqa: PLC0415

    person_id = shop.privacy.find(customer)
    with shop.store.engine.connect() as conn:
        bought = shop.store.moments.purchases(conn, [person_id])[person_id]
    if not bought:
        return None
    item_id = bought[-1][1]  # the newest thing they bought
    item = shop.store.catalog.get(item_id)
    base = {
        "item_id": item.item_id,
        "title": item.title,
        "category": item.category,
        "price": item.price,
        "currency": item.currency,
        "attributes": item.attributes,
    }
    one = {"variant_id": "one-size", "attributes": {}}
    shop.store.catalog.upsert(parse_items([{**base, "variants": [{**one, "stock": 0}]}]))
    shop.moments.add_wish(customer, {"item_id": item.item_id, "source": "stated", "note": "demo"})
    shop.store.catalog.upsert(parse_items([{**base, "variants": [{**one, "stock": 4}]}]))
    shop.moments.engine.step()
    shop.worker().deliver()
    found = shop.moments.outbox(person=customer, limit=1)["items"]
    return found[0] if found else None


def _show_row(shop: Shop, row: dict[str, Any]) -> None:
    who = row["person"]
    if row["channel"] == "staff" and row["status"] == "sent":
        [task] = shop.moments.tasks(person=who, limit=1)["items"] or [None]
        if task is not None:
            context = task["context"]
            table = Table(
                "",
                "",
                title=f"Staff task {task['id']} for customer {who}",
                title_justify="left",
                show_header=False,
            )
            table.add_row("why now", context["why_now"])
            table.add_row("say", context["say"])
            for fact in context["facts"]:
                table.add_row("we know", fact["label"])
            for kind in ("tried", "viewed", "bought"):
                seen = context["history"].get(kind) or []
                if seen:
                    table.add_row(
                        kind, "; ".join(f"{e['title']} ({e['age_days']} days ago)" for e in seen[:3])
                    )
            if context["next_items"]:
                table.add_row(
                    "next", "; ".join(i.get("title") or i["item_id"] for i in context["next_items"])
                )
            console.print(table)
            return
    if row["channel"] == "email" and row["status"] == "sent":
        console.print(
            f'Customer {who}: emailed "{row["subject"]}", written to {MAIL_FOLDER}/ '
            "(a local mail folder, not real mail).",
            markup=False,
        )
        return
    why = row["reason_text"] or row["reason"] or ""
    console.print(f"Customer {who}: the {row['rule']} moment is {row['status']} ({why}).", markup=False)

"""`shopkeeper moments`, `tasks`, `outbox` and `worker`: the rules, the staff inbox, what went out (and
what did not, and why), and the process that makes and delivers moments."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shopkeeper.cli._common import DbOption, JsonOption, console, open_shop, print_json
from shopkeeper.cli.personas import print_reach

moments = typer.Typer(
    help="Moment rules: list, show, test against a person's history, load from TOML.", no_args_is_help=True
)
tasks = typer.Typer(help="The staff inbox: list, claim and close tasks.", no_args_is_help=True)
outbox = typer.Typer(
    help="Every moment: sent, pending, failed, and suppressed with its reason.", no_args_is_help=True
)
PersonOption = Annotated[str | None, typer.Option("--person", help="A person's id (any of their ids).")]


@moments.command("list")
def list_rules(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every rule: its trigger, channels, template, and what it did in the last 30 days."""
    with open_shop(db) as shop:
        found = shop.moments.rules()
    if as_json:
        print_json({"items": found})
        return
    table = Table("rule", "trigger", "channels", "template", "on", "origin", "sent", "suppressed (30 days)")
    for rule in found:
        recent = rule["last_30_days"]
        suppressed = ", ".join(f"{why} {n}" for why, n in sorted(recent["suppressed"].items())) or "-"
        table.add_row(
            rule["name"],
            rule["trigger"],
            " > ".join(rule["channels"]),
            rule["template"] or "-",
            "yes" if rule["enabled"] else "no",
            rule["origin"],
            str(recent["sent"]),
            suppressed,
        )
    console.print(table)


@moments.command("show")
def show_rule(
    name: Annotated[str, typer.Argument(help="The rule's name.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """A rule, its counts and its latest moments."""
    with open_shop(db) as shop:
        found = shop.moments.rule(name)
    if as_json:
        print_json(found)
        return
    console.print(f"[bold]{found['name']}[/bold]: {found['description'] or found['trigger']}")
    console.print(
        f"trigger {found['trigger']}, channels {' > '.join(found['channels'])}, "
        f"template {found['template'] or '-'}, "
        f"delay {found['delay_seconds']} s, priority {found['priority']}, params {found['params']}"
    )
    if "reach" in found:
        print_reach(found["reach"])
    if "answered" in found:
        answered = found["answered"]
        console.print(
            f"asked {answered['asked']}, answered {answered['answered']} (share {answered['share']})"
        )
    _messages(found["recent"])


@moments.command("test")
def test_rule(
    name: Annotated[str, typer.Argument(help="The rule's name.")],
    person: Annotated[str, typer.Option("--person", help="A person's id (any of their ids).")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay the person's recorded events through the rule: what would have fired, when, and why not
    otherwise. Nothing is written."""
    with open_shop(db) as shop:
        person_id = shop.privacy.find(person)
        lines = shop.moments.engine.replay(name, person_id)
    if as_json:
        print_json({"rule": name, "person": person, "lines": lines})
        return
    if not lines:
        console.print(f"{name}: nothing in {person}'s history would have fired it")
        return
    table = Table("at", "what happened", "outcome", "why", "channel", "due")
    for line in lines:
        table.add_row(
            line["at"][:19],
            line["what"],
            line["outcome"],
            line["why"],
            line.get("channel", ""),
            (line.get("due_at") or "")[:19],
        )
    console.print(table)


@moments.command("load")
def load_rules(
    file: Annotated[
        Path, typer.Argument(metavar="FILE.toml", help="One table per rule, e.g. [back_in_stock].")
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Save every rule of a TOML file (all are checked before any is saved)."""
    with open_shop(db) as shop:
        saved = shop.moments.load(file)
    if as_json:
        print_json({"items": saved})
        return
    for rule in saved:
        console.print(f"saved {rule['name']} ({rule['trigger']}, {' > '.join(rule['channels'])})")


@tasks.command("list")
def list_tasks(
    person: PersonOption = None,
    status: Annotated[
        str, typer.Option(help="open (open, claimed or snoozed), claimed, snoozed, done, cancelled, all.")
    ] = "open",
    assignee: Annotated[str | None, typer.Option(help="Only this staff member's.")] = None,
    store: Annotated[str | None, typer.Option(help="Only this store's.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The staff inbox: who, why now, and what to say."""
    with open_shop(db) as shop:
        found = shop.moments.tasks(person=person, status=status, assignee=assignee, store=store)
    if as_json:
        print_json(found)
        return
    if not found["items"]:
        console.print("no tasks")
        return
    for task in found["items"]:
        _task(task)


@tasks.command("claim")
def claim_task(
    task_id: Annotated[int, typer.Argument(metavar="ID")],
    assignee: Annotated[str, typer.Option("--as", help="Who claims it.")] = "staff",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Claim a task."""
    with open_shop(db) as shop:
        task = shop.moments.claim(task_id, assignee)
    print_json(task) if as_json else console.print(f"task {task_id} claimed by {task['assignee']}")


@tasks.command("done")
def done_task(
    task_id: Annotated[int, typer.Argument(metavar="ID")],
    outcome: Annotated[str, typer.Option("--outcome", help="contacted, purchased, declined or unreachable.")],
    note: Annotated[str | None, typer.Option("--note", help="What happened, for the next person.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Close a task with its outcome (written to the event log, so it counts in lift)."""
    with open_shop(db) as shop:
        task = shop.moments.done(task_id, outcome, note, by="cli")
    print_json(task) if as_json else console.print(f"task {task_id} done: {task['outcome']}")


@outbox.command("list")
def list_outbox(
    status: Annotated[
        str | None, typer.Option(help="pending, held, sending, sent, failed, suppressed or cancelled.")
    ] = None,
    person: PersonOption = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Moments, newest first, each with its status and, when it did not go, the reason."""
    with open_shop(db) as shop:
        found = shop.moments.outbox(person=person, status=status, limit=limit)
    if as_json:
        print_json(found)
        return
    _messages(found["items"])


@outbox.command("replay")
def replay(
    ids: Annotated[list[int], typer.Argument(metavar="ID...", help="Failed messages to queue again.")],
    db: DbOption = None,
) -> None:
    """Queue failed messages (the dead-letter list) again."""
    with open_shop(db) as shop:
        queued = shop.moments.replay(ids)
    console.print(f"{queued} message(s) queued again")


def worker(
    once: Annotated[bool, typer.Option("--once", help="Do what is due now, then stop.")] = False,
    db: DbOption = None,
) -> None:
    """Make moments from new events and stock changes, and deliver the due ones (email, webhook, staff
    tasks), until stopped (Ctrl-C or SIGTERM finish the message in hand first). On PostgreSQL, run as
    many as you like; on SQLite, one (or the one inside `shopkeeper serve`)."""
    from shopkeeper.channels.worker import run  # noqa: PLC0415

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with open_shop(db) as shop, shop.worker() as delivering:
        done = run(shop.moments.engine, delivering, once=once, stop=stopping.is_set)
    console.print(
        f"sent {done.sent}, retried {done.retried}, failed {done.failed}, "
        f"suppressed {done.suppressed}, held {done.held}"
    )


def _messages(rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print("nothing in the outbox")
        return
    table = Table("id", "person", "rule", "channel", "status", "reason", "item", "created")
    for row in rows:
        table.add_row(
            str(row["id"]),
            str(row["person"]),
            row["rule"],
            row["channel"] or "-",
            row["status"],
            row["reason"] or "",
            row["item_id"] or "",
            row["created_at"][:19],
        )
    console.print(table)


def _task(task: dict[str, Any]) -> None:
    context = task["context"]
    name = (context.get("name") or {}).get("value") or task["person"]
    console.print(f"[bold]task {task['id']}[/bold] ({task['status']}, due {task['due_at'][:16]}): {name}")
    console.print(f"  why now: {context.get('why_now')}")
    console.print(f"  say: {context.get('say')}")
    for fact in context.get("facts", []):
        console.print(f"  - {fact['label']}")
    history = context.get("history", {})
    for kind in ("tried", "viewed", "bought"):
        if history.get(kind):
            console.print(
                f"  {kind}: " + "; ".join(f"{e['title']} ({e['age_days']} days ago)" for e in history[kind])
            )
    if context.get("last_contact"):
        last = context["last_contact"]
        console.print(f"  last contact: {last['channel']} ({last['rule']}), {last['age_days']} days ago")
    if context.get("next_items"):
        console.print("  next: " + "; ".join(i.get("title") or i["item_id"] for i in context["next_items"]))

"""The `shopkeeper` command: one sub-command per job, each with `--db URL` and `--help`."""

from __future__ import annotations

import gc
import sys

import typer

from shopkeeper.cli import (
    content,
    demo,
    evaluate,
    experiments,
    imports,
    keys,
    lift,
    moments,
    people,
    personas,
    serve,
    train,
    users,
)
from shopkeeper.cli import privacy as rights
from shopkeeper.errors import ShopkeeperError

app = typer.Typer(
    name="shopkeeper",
    help="shopkeeper: a self-hosted personalization engine for small and mid-size shops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("evaluate")(evaluate.evaluate)
app.command("lift")(lift.lift)
app.add_typer(keys.app, name="keys")
app.add_typer(users.app, name="users")
app.add_typer(experiments.app, name="experiments")
app.add_typer(people.app, name="people")
for name in ("link", "export", "erase", "consent"):
    people.app.command(name)(getattr(rights, name))
app.add_typer(rights.maintenance, name="maintenance")
app.add_typer(imports.app, name="import")
app.add_typer(content.app, name="content")
app.add_typer(moments.moments, name="moments")
app.add_typer(moments.tasks, name="tasks")
app.add_typer(moments.outbox, name="outbox")
app.add_typer(personas.personas, name="personas")
app.add_typer(personas.audiences, name="audiences")
app.command("worker")(moments.worker)
app.command("train")(train.train)


def main() -> None:
    """Run the CLI. A user's mistake is one line on stderr and exit code 1, never a traceback."""
    # What start-up loaded lives as long as the command: keep it out of the collector's full passes, which
    # would otherwise walk it again and again while the command starts (a fifth of `--help`'s time).
    gc.freeze()
    try:
        app()
    except ShopkeeperError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    finally:
        gc.unfreeze()  # for a caller that goes on (the tests run commands in their own process)

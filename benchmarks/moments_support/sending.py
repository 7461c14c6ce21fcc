"""Part 3 of benchmarks/moments.py: email moments sent by one outbox worker to a local aiosmtpd server in
another process that only counts, against `smtplib` in a bare loop (its docstring says more)."""

from __future__ import annotations

import multiprocessing
import smtplib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from rich.console import Console

from moments_support.shop import add_wishers, catch_up, settings_for, shirt, upsert
from shopkeeper.channels.email import FreePortController
from shopkeeper.content import EXAMPLES
from shopkeeper.shop import Shop
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.outbox import OutboxRow

MAIL_FROM = "shop@example.com"


class CountingHandler:
    """An aiosmtpd handler that counts messages, and keeps the first `keep` as received."""

    def __init__(self, keep: int) -> None:
        self.count = 0
        self.keep = keep
        self.kept: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        if len(self.kept) < self.keep:
            self.kept.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


def smtp_server(pipe: Pipe, keep: int) -> None:
    """The SMTP server's process: says its port, then answers "count" and "kept" until "stop"."""
    handler = CountingHandler(keep)
    controller = FreePortController(handler, hostname="127.0.0.1", port=0, server_hostname="localhost")
    controller.start()
    pipe.send(controller.port)
    try:
        while (asked := pipe.recv()) != "stop":
            pipe.send(handler.count if asked == "count" else handler.kept)
    finally:
        controller.stop()


@contextmanager
def smtp_running(keep: int) -> Iterator[tuple[int, Pipe]]:
    """The counting SMTP server in a process of its own: its port, and the pipe that asks it."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=smtp_server, args=(theirs, keep))
    process.start()
    try:
        yield ours.recv(), ours
    finally:
        ours.send("stop")
        process.join(10)


@dataclass
class SendResult:
    messages: int  # per batch
    at_send: float  # seconds for the batch rendered at send
    rendered: float  # seconds for the batch already rendered
    anchor: float  # seconds for smtplib to send the first batch again
    received: int  # by the server, in all
    outcomes: dict[str, int]


def deliver_all(shop: Shop, outcomes: dict[str, int]) -> float:
    """One worker's deliver() passes until nothing is due; the seconds, and `outcomes` counted."""
    worker = shop.worker()
    started = time.perf_counter()
    while (done := worker.deliver()).busy:
        for name in ("sent", "retried", "failed", "suppressed", "held"):
            outcomes[name] = outcomes.get(name, 0) + getattr(done, name)
    return time.perf_counter() - started


def prepare_email(shop: Shop, messages: int) -> int:
    """Two groups of `messages` people (a and b), each person wishing for a size M of their group's
    items, which are out of stock; back in stock goes by email. Returns the items per group."""
    shop.content.load(EXAMPLES, by="benchmark")
    rule = {"trigger": "back_in_stock", "channels": ["email"], "template": "back_in_stock", "priority": 80}
    shop.moments.put_rule("back_in_stock", rule, origin="benchmark")
    items = messages // 20
    upsert(shop, [shirt(n, group, lambda s: 0) for group in ("a", "b") for n in range(items)])
    shop.moments.engine.step()
    for group in ("a", "b"):
        add_wishers(shop, group, messages, [f"{group}{n}" for n in range(items)], sized=True)
    return items


def prefill(shop: Shop, sent: dict[int, OutboxRow]) -> None:
    """Give the pending email moments the content of the same person number's sent one (group a's):
    already rendered, as a retry finds them."""
    pending = shop.store.outbox.messages(status="pending", limit=10**6)
    numbers = {row.id: int(str(shop.moments.person_ref(row.person_id))[1:]) for row in pending}
    now = datetime.now(UTC)
    with write_transaction(shop.store.engine) as conn:
        for row in pending:
            source = sent[numbers[row.id]]
            shop.store.outbox.set(
                conn,
                row.id,
                now,
                subject=source.subject,
                body_html=source.body_html,
                body_text=source.body_text,
                template_version=source.template_version,
            )


def smtplib_loop(port: int, kept: list[tuple[str, list[str], bytes]]) -> float:
    """The anchor: these messages, as the server received them, sent again over one connection."""
    connection = smtplib.SMTP("127.0.0.1", port)
    started = time.perf_counter()
    for mail_from, to, data in kept:
        connection.sendmail(mail_from, to, data)
    seconds = time.perf_counter() - started
    connection.quit()
    return seconds


def sending(folder: Path, messages: int, console: Console) -> SendResult:
    outcomes: dict[str, int] = {}
    with smtp_running(keep=messages) as (port, server):
        extra = {
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "mail_from": MAIL_FROM,
            "shop_name": "Linen & Co",
        }
        with Shop.from_settings(settings_for(folder, **extra)) as shop:
            with console.status(f"Part 3: the shop ({2 * messages:,} email moments)"):
                items = prepare_email(shop, messages)
                upsert(shop, [shirt(n, "a", lambda s: 50) for n in range(items)])
                catch_up(shop)
            with console.status(f"Part 3: {messages:,} emails rendered at send"):
                at_send = deliver_all(shop, outcomes)
            sent = {
                int(str(shop.moments.person_ref(row.person_id))[1:]): row
                for row in shop.store.outbox.messages(status="sent", limit=10**6)
            }
            upsert(shop, [shirt(n, "b", lambda s: 50) for n in range(items)])
            catch_up(shop)
            prefill(shop, sent)
            with console.status(f"Part 3: {messages:,} emails already rendered"):
                rendered = deliver_all(shop, outcomes)
        server.send("kept")
        with console.status("Part 3: the anchor, smtplib in a bare loop"):
            anchor = smtplib_loop(port, server.recv())
        server.send("count")
        received = server.recv()
    return SendResult(messages, at_send, rendered, anchor, received, outcomes)

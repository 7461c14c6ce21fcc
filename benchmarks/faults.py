"""Faults under load, on SQLite and PostgreSQL: is every acknowledged event stored, and what did clients see?

Client threads stream /v1/batch calls (100 events each, unique messageIds) to a real `shopkeeper serve`,
and retry a batch that was not acknowledged, as the Segment SDKs do. Mid-stream, one fault:
- `kill -9`: the server is SIGKILLed, then started again on the same database;
- `database killed` (PostgreSQL): the TCP proxy between server and database drops every connection and
  refuses new ones for a while;
- `database frozen` (PostgreSQL): the proxy keeps every connection open but forwards nothing for a while;
- `disk full` (SQLite): the database lives on a small tmpfs that a filler file fills up, then frees.
Afterwards every acknowledged messageId is looked up in the database. The table gives, per fault, the
events acknowledged, how many of those were found (lost must be 0), and every status code seen.

    .venv/bin/python benchmarks/faults.py [--quick] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from goals import record
from ingest_support.databases import DEFAULT_PG_URL, Databases, prepare
from ingest_support.server import running_server
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for the tests' pieces
from tests.api.test_durability import BATCH_SIZE, batch_body, batch_ids
from tests.tcp_proxy import TcpProxy

from shopkeeper.store import Store
from shopkeeper.store.schema import events

CLIENTS = 4
# The servers give up on a frozen database after this (and 2 s more), instead of the default 10 s.
STATEMENT_TIMEOUT = "2"


@dataclass
class Phases:
    before: float  # seconds of streaming before the fault
    fault: float  # how long the fault lasts
    after: float  # seconds of streaming once it is over


@dataclass
class Stream:
    """Clients posting batches back to back, retrying until acknowledged; what they saw."""

    url: str
    write_key: str
    acked: set[int] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    numbers: Iterator[int] = field(default_factory=itertools.count)

    def _post(self, client: httpx.Client, number: int) -> bool:
        """One try at batch `number`: whether it was acknowledged, whole."""
        try:
            response = client.post(f"{self.url}/v1/batch", json=batch_body(number), auth=(self.write_key, ""))
        except httpx.TransportError as exc:
            self._count(f"no answer ({type(exc).__name__})")
            return False
        self._count(str(response.status_code))
        if response.status_code != 200:
            return False
        body = response.json()
        return bool(body["stored"] + body["duplicates"] == BATCH_SIZE)

    def _count(self, status: str) -> None:
        with self.lock:
            self.statuses[status] += 1

    def run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self.stop.is_set():
                with self.lock:
                    number = next(self.numbers)
                while not self.stop.is_set():
                    if self._post(client, number):
                        with self.lock:
                            self.acked.add(number)
                        break
                    time.sleep(0.2)  # the SDKs back off before retrying

    @contextmanager
    def running(self) -> Iterator[Stream]:
        threads = [threading.Thread(target=self.run, daemon=True) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(timeout=120)


@dataclass
class Outcome:
    backend: str
    fault: str
    acked_events: int
    found: int
    statuses: Counter[str]
    note: str = ""


def check(url: str, backend: str, fault: str, stream: Stream, note: str = "") -> Outcome:
    """Every messageId of every acknowledged batch, looked up in the database."""
    wanted = {message for number in stream.acked for message in batch_ids(number)}
    store = Store.open(url, upgrade=False)
    try:
        with store.engine.connect() as conn:
            stored = set(conn.scalars(select(events.c.message_id)))
    finally:
        store.close()
    return Outcome(backend, fault, len(wanted), len(wanted & stored), stream.statuses, note)


def kill_9(url: str, key: str, workdir: Path, phases: Phases, backend: str) -> Outcome:
    with running_server(url, workdir) as first:
        stream = Stream(first.url, key)
        with stream.running():
            time.sleep(phases.before)
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(timeout=10)
            time.sleep(phases.fault)
            with running_server(url, workdir) as second:
                stream.url = second.url  # the clients' retries go to the new server
                time.sleep(phases.after)
    return check(url, backend, "kill -9 of the server", stream)


def through_proxy(
    url: str, key: str, workdir: Path, phases: Phases, name: str, fault: Callable[[TcpProxy], None]
) -> Outcome:
    """A PostgreSQL fault between the server and the database: `fault` starts it, the proxy heals it."""
    parsed = make_url(url)
    proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
    try:
        with running_server(proxy.url_for(url), workdir) as server:
            stream = Stream(server.url, key)
            with stream.running():
                time.sleep(phases.before)
                fault(proxy)
                time.sleep(phases.fault)
                if name == "database killed":
                    proxy.revive()
                proxy.thaw()
                time.sleep(phases.after)
    finally:
        proxy.thaw()
        proxy.close()
    return check(url, "postgresql", name, stream)


def fill(filler: Path, leave: int) -> None:
    """Write `filler` until its file system has `leave` bytes free, or none (the server writes too)."""
    chunk = b"\0" * (1024 * 1024)
    with filler.open("wb") as out:
        try:
            while shutil.disk_usage(filler.parent).free > leave:
                out.write(chunk)
                out.flush()
        except OSError:  # full already
            pass


def disk_full(key_for: Callable[[str], str], workdir: Path, phases: Phases) -> Outcome:
    """SQLite on a small tmpfs, filled up mid-stream by a filler file, then freed."""
    mount = workdir / "tmpfs"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        note = f"not measured: mount refused ({mounted.stderr.strip()[:80]})"
        return Outcome("sqlite", "disk full", 0, 0, Counter(), note)
    try:
        url = f"sqlite:///{mount / 'shop.db'}"
        key = key_for(url)
        filler = mount / "filler"
        with running_server(url, workdir) as server:
            stream = Stream(server.url, key)
            with stream.running():
                time.sleep(phases.before)
                fill(filler, leave=2 * 1024 * 1024)  # the next few batches take the rest
                deadline = time.monotonic() + max(30.0, phases.fault * 5)
                while stream.statuses["503"] == 0 and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(phases.fault)
                filler.unlink()
                time.sleep(phases.after)
        return check(
            url, "sqlite", "disk full", stream, "" if stream.statuses["503"] else "the disk never filled"
        )
    finally:
        # lazily: this process keeps the writer-lock file open (store.engine keeps one per database)
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


def run(backend: str, phases: Phases, pg_url: str, workdir: Path) -> list[Outcome]:
    databases = Databases(backend, workdir, pg_url)
    outcomes: list[Outcome] = []
    try:
        url = databases.fresh("kill9")
        outcomes.append(kill_9(url, prepare(url, 0), workdir, phases, backend))
        if backend == "postgresql":
            url = databases.fresh("dbkill")
            outcomes.append(
                through_proxy(url, prepare(url, 0), workdir, phases, "database killed", TcpProxy.kill)
            )
            url = databases.fresh("dbfreeze")
            frozen = Phases(phases.before, max(phases.fault, 8.0), phases.after)  # past the 2 s + 2 s bound
            outcomes.append(
                through_proxy(url, prepare(url, 0), workdir, frozen, "database frozen", TcpProxy.freeze)
            )
        else:
            outcomes.append(disk_full(lambda url: prepare(url, 0), workdir, phases))
    finally:
        databases.drop_all()
    return outcomes


def table(outcomes: list[Outcome]) -> Table:
    out = Table(title="Faults mid-stream: acknowledged vs stored, and the status codes clients saw")
    for column in ("backend", "fault", "acked events", "found", "lost", "statuses seen (count)", "note"):
        out.add_column(column, justify="right" if column in ("acked events", "found", "lost") else "left")
    for o in outcomes:
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(o.statuses.items()))
        lost = o.acked_events - o.found
        out.add_row(o.backend, o.fault, f"{o.acked_events:,}", f"{o.found:,}", str(lost), statuses, o.note)
    return out


def record_goals(outcomes: list[Outcome]) -> None:
    """Per fault: no acknowledged event lost, and no 500 (a 503 is the documented answer)."""
    for o in outcomes:
        lost = o.acked_events - o.found
        measured = not o.note.startswith("not measured")
        record(
            "faults",
            f"acked events lost, {o.fault} ({o.backend})",
            f"{lost:,} lost of {o.acked_events:,}; {o.statuses['500']} 500s" if measured else o.note,
            goal="0 lost, no 500",
            met=lost == 0 and "500" not in o.statuses if measured else None,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases (about a minute in all)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    phases = Phases(1.5, 2.0, 2.0) if args.quick else Phases(5.0, 8.0, 5.0)
    os.environ["SHOPKEEPER_DATABASE_STATEMENT_TIMEOUT"] = STATEMENT_TIMEOUT
    os.environ["SHOPKEEPER_DATABASE_CONNECT_TIMEOUT"] = STATEMENT_TIMEOUT
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="shopkeeper-faults-") as tmp:
        for backend in backends:
            outcomes += run(backend, phases, args.pg_url, Path(tmp))
    Console(width=200).print(table(outcomes))
    record_goals(outcomes)
    if any(o.acked_events != o.found or "500" in o.statuses for o in outcomes):
        sys.exit("acknowledged events were lost, or a server answered 5xx other than 503")


if __name__ == "__main__":
    main()

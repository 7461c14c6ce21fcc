"""Batched HTTP ingestion (/v1/batch) on SQLite and PostgreSQL, against a raw `executemany` anchor."""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import gzip
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from shopkeeper.store import Store
from shopkeeper.store.schema import events, identities, merges, people

try:
    from uvloop import run as run_loop  # with uvicorn[standard], except on Windows
except ImportError:
    from asyncio import run as run_loop  # type: ignore[assignment]

RETAIL_CSV = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "online-retail" / "online_retail.csv.gz"
)
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET_EVENTS_PER_SECOND = 5_000.0
TARGET_P99_MS = 50.0
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
TRACK_EVENTS = (
    ("Product Viewed", 55),
    ("Product Added", 18),
    ("Cart Viewed", 8),
    ("Products Searched", 7),
    ("Checkout Started", 6),
    ("Order Completed", 6),
)
PAGES = (("Home", "/"), ("Gifts", "/c/gifts"), ("Christmas", "/c/christmas"), ("Sale", "/sale"))

console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 120)
progress = Console(highlight=False, soft_wrap=True, stderr=True, markup=False)


# --- workload ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    price: float


@dataclass(slots=True)
class Visitor:
    """One browser (an anonymousId), which may belong to a known customer and may identify later."""

    anonymous_id: str
    user_id: str | None
    person: int
    identified: bool = False


@dataclass
class Workload:
    """Pre-serialized /v1/batch bodies and, for the anchor, the `events` rows they become."""

    bodies: list[bytes]
    rows: list[list[dict[str, Any]]]


def load_catalog(n_rows: int = 20_000) -> tuple[list[Product], list[str], list[str]]:
    """Products, customer ids and invoice numbers from the first rows of the UCI Online Retail log."""
    products: dict[str, Product] = {}
    customers: dict[str, None] = {}
    invoices: dict[str, None] = {}
    with gzip.open(RETAIL_CSV, "rt", newline="") as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            if index >= n_rows:
                break
            price = float(row["UnitPrice"])
            if row["Description"] and price > 0 and row["StockCode"] not in products:
                products[row["StockCode"]] = Product(row["StockCode"], row["Description"].strip(), price)
            if row["CustomerID"]:
                customers[str(int(float(row["CustomerID"])))] = None
            invoices[row["InvoiceNo"]] = None
    return list(products.values()), list(customers), list(invoices)


class EventStream:
    """A deterministic, stationary stream of realistic Segment messages with identity stitching in it.

    About one message in twenty comes from a browser never seen before; the rest come from the visitors
    browsing right now, or from one coming back. Some new browsers belong to a customer of the shop (a new
    device, or cleared cookies) and some visitors sign up; these identify at some point, linking the
    anonymous person to the customer or merging it into the one already known from another device. After
    that their messages carry both ids, and half of their orders arrive server-side with the userId only.
    """

    def __init__(
        self,
        seed: int,
        *,
        new_visitor_share: float = 0.05,
        known_share: float = 0.30,
        signup_share: float = 0.05,
        online: int = 300,
    ) -> None:
        self._rng = random.Random(seed)
        self._products, self._customers, self._invoices = load_catalog()
        self._clock = datetime(2024, 11, 29, 9, 0, tzinfo=UTC)
        self._new_visitor_share = new_visitor_share
        self._known_share = known_share
        self._signup_share = signup_share
        self._visitors: list[Visitor] = []
        self._online: deque[Visitor] = deque(maxlen=online)
        self._signups = 0
        self._events = [name for name, _ in TRACK_EVENTS]
        self._weights = [weight for _, weight in TRACK_EVENTS]

    def _visitor(self) -> Visitor:
        """Who sends the next message: a new browser, one browsing now, or one coming back."""
        rng = self._rng
        roll = rng.random()
        if roll < self._new_visitor_share or not self._visitors:
            kind = rng.random()
            person = len(self._customers) + len(self._visitors) + 1
            user: str | None = None
            if kind < self._known_share:
                index = rng.randrange(len(self._customers))
                user, person = self._customers[index], index + 1
            elif kind < self._known_share + self._signup_share:
                self._signups += 1
                user = f"new-{self._signups}"
            visitor = Visitor(self._uuid(), user, person)
            self._visitors.append(visitor)
        elif roll < 0.90:
            return rng.choice(self._online)
        else:
            visitor = rng.choice(self._visitors)
        self._online.append(visitor)
        return visitor

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def batches(self, n_batches: int, batch_size: int, key_id: int) -> Workload:
        bodies: list[bytes] = []
        rows: list[list[dict[str, Any]]] = []
        for _ in range(n_batches):
            messages = [self._message() for _ in range(batch_size)]
            sent_at = self._clock + timedelta(milliseconds=self._rng.randint(5, 500))
            body = {"batch": [m for m, _, _ in messages], "sentAt": _iso(sent_at)}
            bodies.append(orjson.dumps(body))
            rows.append([self._row(m, at, person, sent_at, key_id) for m, at, person in messages])
        return Workload(bodies, rows)

    def _message(self) -> tuple[dict[str, Any], datetime, int]:
        rng = self._rng
        self._clock += timedelta(milliseconds=rng.randint(1, 40))
        visitor = self._visitor()
        roll = rng.random()
        if visitor.user_id is not None and not visitor.identified and roll < 0.15:
            visitor.identified = True
            message = self._identify(visitor)
        elif roll < 0.40:
            name, path = rng.choice(PAGES)
            message = {
                "type": "page",
                "name": name,
                "properties": {"path": path, "url": f"https://shop.example{path}", "title": name},
            }
        else:
            message = self._track(rng.choices(self._events, self._weights)[0])
        server_side = message.get("event") == "Order Completed" and visitor.identified and rng.random() < 0.5
        if server_side:
            message["userId"] = visitor.user_id
            message["context"] = {"library": {"name": "analytics-python", "version": "2.3.3"}}
        else:
            message["anonymousId"] = visitor.anonymous_id
            if visitor.identified:
                message["userId"] = visitor.user_id
            message["context"] = {
                "library": {"name": "analytics.js", "version": "next-1.72.0"},
                "userAgent": USER_AGENT,
                "locale": "en-GB",
                "ip": f"81.2.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                "page": {"path": "/", "url": "https://shop.example/", "referrer": "https://www.google.com/"},
            }
        message["messageId"] = self._uuid()
        message["timestamp"] = _iso(self._clock)
        return message, self._clock, visitor.person

    def _identify(self, visitor: Visitor) -> dict[str, Any]:
        return {
            "type": "identify",
            "traits": {
                "email": f"customer{visitor.user_id}@example.com",
                "firstName": "Customer",
                "lastName": visitor.user_id,
                "country": "United Kingdom",
                "newsletter": self._rng.random() < 0.4,
            },
        }

    def _track(self, event: str) -> dict[str, Any]:
        rng = self._rng
        product = rng.choice(self._products)
        item: dict[str, Any] = {
            "product_id": product.sku,
            "sku": product.sku,
            "name": product.name,
            "price": product.price,
            "currency": "GBP",
            "url": f"https://shop.example/p/{product.sku.lower()}",
        }
        if event == "Products Searched":
            properties: dict[str, Any] = {"query": product.name.split()[-1].lower()}
        elif event in ("Checkout Started", "Order Completed"):
            lines: list[dict[str, Any]] = [
                {**item, "quantity": rng.choice((1, 2, 6, 12))},
                *(
                    {"product_id": p.sku, "name": p.name, "price": p.price, "quantity": rng.choice((1, 2, 6))}
                    for p in rng.sample(self._products, rng.randint(0, 4))
                ),
            ]
            total = round(sum(line["price"] * line["quantity"] for line in lines), 2)
            properties = {"order_id": rng.choice(self._invoices), "total": total, "revenue": total}
            properties.update({"currency": "GBP", "products": lines})
        else:
            properties = {**item, "quantity": 1 if event == "Product Viewed" else rng.choice((1, 2, 6))}
        return {"type": "track", "event": event, "properties": properties}

    def _row(
        self, message: dict[str, Any], at: datetime, person: int, sent_at: datetime, key_id: int
    ) -> dict[str, Any]:
        """The `events` row the server stores for this message (what the anchor inserts)."""
        received_at = datetime.now(UTC)
        payload = {
            **message,
            "originalTimestamp": message["timestamp"],
            "sentAt": _iso(sent_at),
            "receivedAt": _iso(received_at),
        }
        return {
            "message_id": message["messageId"],
            "type": message["type"],
            "event": message.get("event") or message.get("name"),
            "user_id": message.get("userId"),
            "anonymous_id": message.get("anonymousId"),
            "person_id": person,
            "timestamp": at,
            "received_at": received_at,
            "key_id": key_id,
            "payload": orjson.dumps(payload).decode(),
        }


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the server --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _shopkeeper_command() -> list[str]:
    script = Path(sys.executable).with_name("shopkeeper")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from shopkeeper.cli.main import main; main()"]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def cpu_seconds(self) -> float:
        """CPU of the server and its worker processes."""
        return sum(_process_cpu(pid) for pid in _process_tree(self.process.pid))


@contextmanager
def running_server(db_url: str, workdir: Path, workers: int = 1) -> Iterator[Server]:
    """`shopkeeper serve` as a subprocess on a free loopback port, stopped (and reaped) on exit."""
    port = _free_port()
    log = workdir / f"server-{port}.log"
    env = {**os.environ, "SHOPKEEPER_LOG_LEVEL": "warning"}
    env.pop("SHOPKEEPER_DATABASE_URL", None)
    command = [*_shopkeeper_command(), "serve", "--db", db_url, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_ready(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{server.log.read_text(errors='replace')}")
        with suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/readyz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the server did not become ready:\n{server.log.read_text(errors='replace')}")


def _process_tree(pid: int) -> list[int]:
    """A process and all its descendants (uvicorn's workers), from /proc."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        with suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                queue += [int(child) for child in (task / "children").read_text().split()]
    return found


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:  # a worker that has exited
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine so far, from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


class CpuMeter:
    """CPU used over one measured window, in cores: the server, this load generator, everything else."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._start = self._read()
        self.began = self._start[0]
        self.ended = math.inf
        self.server_seconds = 0.0
        self.usage: dict[str, float] = {}

    def _read(self) -> tuple[float, ...]:
        return (time.monotonic(), self._server.cpu_seconds(), time.process_time(), *_machine_cpu())

    def stop(self) -> None:
        now = self._read()
        wall, server, generator, busy, stolen = (
            end - start for end, start in zip(now, self._start, strict=True)
        )
        self.ended, self.server_seconds = now[0], server
        self.usage = {
            "server_cores": server / wall,
            "generator_cores": generator / wall,
            "other_cores": max(0.0, busy - server - generator) / wall,
            "stolen_cores": stolen / wall,
        }


# --- load generators ---------------------------------------------------------------------------------


@dataclass
class Sample:
    sent: float  # when the request was due (open loop) or sent (closed loop), monotonic seconds
    done: float
    events: int
    ok: bool


@dataclass
class PhaseResult:
    """One measured window: throughput, acknowledgement latency and CPU."""

    name: str
    seconds: float = 0.0
    batches: int = 0
    events: int = 0
    errors: int = 0
    events_per_second: float = 0.0
    worst_second: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    offered_per_second: float | None = None
    server_cores: float = 0.0  # CPU used, in cores (this machine has os.cpu_count())
    generator_cores: float = 0.0
    other_cores: float = 0.0  # everything else: PostgreSQL, and whatever else runs on the machine
    stolen_cores: float = 0.0  # taken by the hypervisor
    server_ms_per_batch: float = 0.0
    ran_out: bool = False
    acknowledged: int = 0  # events acknowledged over the whole phase, warm-up included
    stored: int = 0  # rows in `events` afterwards: must equal `acknowledged`
    first_error: str | None = None


class Connections:
    """A minimal HTTP/1.1 keep-alive client, so that the load generator costs little CPU next to the server.

    Connections are reused newest first, and dropped after `idle_seconds` unused (before uvicorn's 5 s
    keep-alive timeout closes them under our feet).
    """

    def __init__(self, url: str, write_key: str, limit: int, *, idle_seconds: float = 2.0) -> None:
        parsed = httpx.URL(url)
        self._host, self._port = parsed.host, parsed.port or 80
        token = base64.b64encode(f"{write_key}:".encode()).decode()
        self._head = (
            f"POST /v1/batch HTTP/1.1\r\nHost: {self._host}:{self._port}\r\nAuthorization: Basic {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        )
        self._slots = asyncio.Semaphore(limit)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._idle_seconds = idle_seconds

    async def post_batch(self, body: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
        """POST one /v1/batch body; the response's status and body."""
        async with self._slots:
            reader, writer = await self._connection()
            try:
                async with asyncio.timeout(timeout):
                    writer.write(f"{self._head}{len(body)}\r\n\r\n".encode())
                    writer.write(body)
                    head = await reader.readuntil(b"\r\n\r\n")
                    status = int(head[9:12])
                    headers = head.decode("latin-1").lower()
                    length = int(headers.split("content-length:", 1)[1].split("\r\n", 1)[0])
                    payload = await reader.readexactly(length)
            except BaseException:
                writer.close()
                raise
            if "connection: close" in headers:
                writer.close()
            else:
                self._idle.append((reader, writer, time.monotonic()))
            return status, payload

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self._idle:
            reader, writer, since = self._idle.pop()
            if time.monotonic() - since < self._idle_seconds and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self._host, self._port)

    def close(self) -> None:
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()


async def _post(client: Connections, body: bytes, events_in: int, due: float) -> tuple[Sample, str]:
    try:
        status, payload = await client.post_batch(body)
        ok = status == 200 and orjson.loads(payload).get("stored") == events_in
        error = "" if ok else f"{status} {payload[:200]!r}"
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as exc:
        ok, error = False, f"{type(exc).__name__}: {exc}"
    return Sample(due, time.monotonic(), events_in, ok), error


async def open_loop(
    server: Server, write_key: str, work: Workload, rate: float, warmup: float, seconds: float
) -> PhaseResult:
    """Send batch i at t0 + i/rate whatever happened before; latency counts from when it was due."""
    per_batch = len(work.rows[0])
    interval = per_batch / rate
    n_batches = min(len(work.bodies), math.ceil((warmup + seconds) / interval))
    samples: list[Sample] = []
    errors: list[str] = []
    client = Connections(server.url, write_key, limit=256)
    try:
        start = time.monotonic()
        meter: CpuMeter | None = None
        tasks: set[asyncio.Task[tuple[Sample, str]]] = set()

        def collect(task: asyncio.Task[tuple[Sample, str]]) -> None:
            tasks.discard(task)
            sample, error = task.result()
            samples.append(sample)
            if error:
                errors.append(error)

        for index in range(n_batches):
            due = start + index * interval
            if meter is None and due >= start + warmup:
                meter = CpuMeter(server)
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(_post(client, work.bodies[index], len(work.rows[index]), due))
            task.add_done_callback(collect)
            tasks.add(task)
        while tasks:
            await asyncio.sleep(0.01)
        meter = meter or CpuMeter(server)
        meter.stop()
    finally:
        client.close()
    result = _summarize("open loop", samples, start + warmup, start + warmup + seconds, errors, meter)
    result.offered_per_second = rate
    return result


async def closed_loop(
    server: Server, write_key: str, work: Workload, clients: int, warmup: float, seconds: float
) -> PhaseResult:
    """`clients` senders, each posting its next batch as soon as the last one is acknowledged."""
    samples: list[Sample] = []
    errors: list[str] = []
    cursor = iter(range(len(work.bodies)))
    ran_out = False
    client = Connections(server.url, write_key, limit=clients)
    try:
        start = time.monotonic()
        stop_at = start + warmup + seconds

        async def sender() -> None:
            nonlocal ran_out
            while time.monotonic() < stop_at:
                index = next(cursor, None)
                if index is None:
                    ran_out = True
                    return
                sample, error = await _post(
                    client, work.bodies[index], len(work.rows[index]), time.monotonic()
                )
                samples.append(sample)
                if error:
                    errors.append(error)

        await asyncio.sleep(0)
        warm = asyncio.gather(*(sender() for _ in range(clients)))
        await asyncio.sleep(max(0.0, start + warmup - time.monotonic()))
        meter = CpuMeter(server)
        await warm
        meter.stop()
    finally:
        client.close()
    result = _summarize(f"closed loop, {clients} clients", samples, start + warmup, stop_at, errors, meter)
    result.ran_out = ran_out
    return result


def _summarize(
    name: str, samples: list[Sample], begin: float, end: float, errors: list[str], meter: CpuMeter
) -> PhaseResult:
    """Throughput counts acknowledgements inside [begin, end); latency covers the batches due in it."""
    metered = sum(1 for s in samples if meter.began <= s.done < meter.ended)
    window = [s for s in samples if begin <= s.sent < end]
    acked = [s for s in samples if begin <= s.done < end and s.ok]
    last = min(end, max((s.done for s in samples), default=end))
    span = max(last - begin, 1e-9)
    latencies = sorted((s.done - s.sent) * 1000 for s in window if s.ok)
    per_second: dict[int, int] = {}
    for s in acked:
        per_second[int(s.done - begin)] = per_second.get(int(s.done - begin), 0) + s.events
    full_seconds = [per_second.get(i, 0) for i in range(int(span))]
    return PhaseResult(
        name=name,
        seconds=span,
        batches=len(window),
        events=sum(s.events for s in acked),
        errors=sum(1 for s in samples if not s.ok),
        events_per_second=sum(s.events for s in acked) / span,
        worst_second=min(full_seconds, default=0),
        p50_ms=_quantile(latencies, 0.50),
        p90_ms=_quantile(latencies, 0.90),
        p99_ms=_quantile(latencies, 0.99),
        max_ms=latencies[-1] if latencies else math.nan,
        first_error=errors[0] if errors else None,
        acknowledged=sum(s.events for s in samples if s.ok),
        server_ms_per_batch=meter.server_seconds * 1000 / max(metered, 1),
        server_cores=meter.usage["server_cores"],
        generator_cores=meter.usage["generator_cores"],
        other_cores=meter.usage["other_cores"],
        stolen_cores=meter.usage["stolen_cores"],
    )


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=1000, method="inclusive")[round(q * 1000) - 1]


# --- the anchor ----------------------------------------------------------------------------------------


def executemany_anchor(url: str, rows: list[list[dict[str, Any]]]) -> PhaseResult:
    """The floor: the same rows straight into `events`, one committed transaction per batch."""
    store = Store.open(url)
    try:
        start = time.perf_counter()
        cpu_start = time.process_time()
        for batch in rows:
            with store.engine.begin() as conn:
                conn.execute(insert(events), batch)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        with store.engine.connect() as conn:
            stored = int(conn.scalar(select(func.count()).select_from(events)) or 0)
    finally:
        store.close()
    total = sum(len(batch) for batch in rows)
    if stored != total:
        raise RuntimeError(f"the anchor stored {stored} of {total} rows")
    return PhaseResult(
        name="executemany",
        seconds=elapsed,
        batches=len(rows),
        events=total,
        events_per_second=total / elapsed,
        generator_cores=cpu / elapsed,
        server_ms_per_batch=cpu * 1000 / max(len(rows), 1),
    )


# --- databases -----------------------------------------------------------------------------------------


class Databases:
    """Fresh, empty databases: SQLite files in a temp dir, or PostgreSQL schemas dropped at the end."""

    def __init__(self, backend: str, workdir: Path, pg_url: str) -> None:
        self.backend = backend
        self._workdir = workdir
        self._pg_url = pg_url
        self._schemas: list[str] = []

    def fresh(self, label: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self._workdir / f'{label}.db'}"
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        engine = create_engine(self._pg_url)
        try:
            with engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        finally:
            engine.dispose()
        self._schemas.append(schema)
        return (
            make_url(self._pg_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )

    def drop_all(self) -> None:
        if not self._schemas:
            return
        engine = create_engine(self._pg_url)
        try:
            with engine.begin() as conn:
                for schema in self._schemas:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            engine.dispose()
        self._schemas.clear()


def _prepare(url: str, existing_people: int) -> str:
    """Migrate the database, create a write key, and add people known from before when asked to."""
    store = Store.open(url)
    try:
        raw, _ = store.keys.create("write", name="benchmark")
        _add_people(store, existing_people)
    finally:
        store.close()
    return raw


def _add_people(store: Store, n: int, chunk: int = 10_000) -> None:
    """`n` earlier visitors, each with an anonymousId, a third with a userId: an identity graph to search."""
    now = datetime.now(UTC)
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        with store.engine.begin() as conn:
            first = int(conn.scalar(select(func.coalesce(func.max(people.c.person_id), 0))) or 0) + 1
            conn.execute(insert(people), [{"created_at": now}] * size)
            links = [
                {
                    "kind": kind,
                    "value": f"earlier-{kind}-{start + i}",
                    "person_id": first + i,
                    "created_at": now,
                }
                for i in range(size)
                for kind in ("anonymous_id", "user_id")[: 2 if (start + i) % 3 == 0 else 1]
            ]
            conn.execute(insert(identities), links)


def _count_events(url: str) -> int:
    store = Store.open(url, upgrade=False)
    try:
        return store.events.count()
    finally:
        store.close()


def _stitching(url: str) -> dict[str, int]:
    """What identity resolution did: people created, ids linked, merges made and refused."""
    store = Store.open(url, upgrade=False)
    try:
        with store.engine.connect() as conn:
            counted = conn.execute(select(merges.c.outcome, func.count()).group_by(merges.c.outcome))
            outcomes: dict[str, int] = {str(outcome): int(n) for outcome, n in counted}
            return {
                "people": int(conn.scalar(select(func.count()).select_from(people)) or 0),
                "ids": int(conn.scalar(select(func.count()).select_from(identities)) or 0),
                "merged": int(outcomes.get("merged", 0)),
                "refused": int(outcomes.get("refused", 0)),
            }
    finally:
        store.close()


# --- the run -------------------------------------------------------------------------------------------


@dataclass
class BackendResult:
    backend: str
    open_loop: PhaseResult
    closed_loop: PhaseResult
    anchor: PhaseResult
    mix: dict[str, int]  # messages per type, in the closed loop's batches
    stitching: dict[str, int]  # what the closed loop's identity resolution did

    @property
    def ratio(self) -> float:
        return self.closed_loop.events_per_second / self.anchor.events_per_second


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> BackendResult:
    databases = Databases(backend, workdir, args.pg_url)
    try:
        stream = EventStream(args.seed)
        open_batches = math.ceil((args.warmup + args.seconds) * args.rate / args.batch_size)
        closed_batches = math.ceil((args.warmup + args.seconds) * args.max_rate / args.batch_size)
        progress.print(
            f"[{backend}] preparing {open_batches + closed_batches:,} batches of {args.batch_size}…"
        )
        open_work = stream.batches(open_batches, args.batch_size, key_id=1)
        closed_work = stream.batches(closed_batches, args.batch_size, key_id=1)

        url = databases.fresh("open")
        key = _prepare(url, args.people)
        progress.print(
            f"[{backend}] open loop at {args.rate:,.0f} events/s for {args.warmup}+{args.seconds} s…"
        )
        with running_server(url, workdir, args.workers) as server:
            opened = run_loop(open_loop(server, key, open_work, args.rate, args.warmup, args.seconds))
        opened.stored = _count_events(url)

        url = databases.fresh("closed")
        key = _prepare(url, args.people)
        progress.print(
            f"[{backend}] closed loop, {args.clients} clients, for {args.warmup}+{args.seconds} s…"
        )
        with running_server(url, workdir, args.workers) as server:
            closed = run_loop(closed_loop(server, key, closed_work, args.clients, args.warmup, args.seconds))
        closed.stored = _count_events(url)
        stitching = _stitching(url)
        n_batches = math.ceil(closed.stored / args.batch_size)

        progress.print(f"[{backend}] anchor: executemany of the same {closed.stored:,} rows…")
        anchor = executemany_anchor(databases.fresh("anchor"), closed_work.rows[:n_batches])
        mix: dict[str, int] = {}
        for batch in closed_work.rows[:n_batches]:
            for row in batch:
                mix[row["type"]] = mix.get(row["type"], 0) + 1
        return BackendResult(backend, opened, closed, anchor, mix, stitching)
    finally:
        databases.drop_all()


def _ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.1f}"


def _verdict(value: str, passed: bool) -> str:
    return f"[green]{value} ✓[/green]" if passed else f"[red]{value} ✗[/red]"


def _cpu(phase: PhaseResult) -> str:
    return (
        f"{phase.server_cores:.2f} / {phase.generator_cores:.2f} / {phase.other_cores:.2f}"
        f" / {phase.stolen_cores:.2f}"
    )


def _mix(mix: dict[str, int]) -> str:
    total = sum(mix.values()) or 1
    return " ".join(
        f"{kind} {count / total:.0%}" for kind, count in sorted(mix.items(), key=lambda kv: -kv[1])
    )


def _integrity(phase: PhaseResult) -> str:
    lost = phase.acknowledged - phase.stored
    return f"{phase.errors} / {lost}" if phase.errors or lost else "0 / 0"


def print_table(results: list[BackendResult], args: argparse.Namespace) -> None:
    table = Table(
        title=f"/v1/batch ingestion: {args.batch_size} events per batch over loopback, "
        f"{args.seconds:g} s measured after {args.warmup:g} s warm-up, {args.people:,} people known before, "
        f"{os.cpu_count()} CPUs, `serve --workers {args.workers}`",
        title_justify="left",
    )
    table.add_column("measure")
    for result in results:
        table.add_column(result.backend, justify="right")
    table.add_column("target", justify="right")

    def row(label: str, values: list[str], target: str = "") -> None:
        table.add_row(label, *values, target)

    p99_ok = [r.open_loop.p99_ms <= TARGET_P99_MS for r in results]
    rate_ok = [r.closed_loop.events_per_second >= TARGET_EVENTS_PER_SECOND for r in results]
    row(f"open loop, offered {args.rate:,.0f} events/s", ["" for _ in results])
    row("  achieved events/s", [f"{r.open_loop.events_per_second:,.0f}" for r in results])
    row(
        "  ack latency p50 / p90 ms",
        [f"{_ms(r.open_loop.p50_ms)} / {_ms(r.open_loop.p90_ms)}" for r in results],
    )
    row(
        "  ack latency p99 ms",
        [_verdict(_ms(r.open_loop.p99_ms), ok) for r, ok in zip(results, p99_ok, strict=True)],
        f"≤ {TARGET_P99_MS:.0f}",
    )
    row("  ack latency max ms", [_ms(r.open_loop.max_ms) for r in results])
    row("  failed requests / acked-not-stored", [_integrity(r.open_loop) for r in results])
    row("  server CPU ms per batch", [f"{r.open_loop.server_ms_per_batch:.1f}" for r in results])
    row("  cores: server/generator/other/stolen", [_cpu(r.open_loop) for r in results])
    row(f"closed loop, {args.clients} clients", ["" for _ in results])
    row(
        "  sustained events/s",
        [
            _verdict(f"{r.closed_loop.events_per_second:,.0f}", ok)
            for r, ok in zip(results, rate_ok, strict=True)
        ],
        f"≥ {TARGET_EVENTS_PER_SECOND:,.0f}",
    )
    row("  worst 1 s events/s", [f"{r.closed_loop.worst_second:,.0f}" for r in results])
    row(
        "  ack latency p50 / p99 ms",
        [f"{_ms(r.closed_loop.p50_ms)} / {_ms(r.closed_loop.p99_ms)}" for r in results],
    )
    row("  failed requests / acked-not-stored", [_integrity(r.closed_loop) for r in results])
    row("  server CPU ms per batch", [f"{r.closed_loop.server_ms_per_batch:.1f}" for r in results])
    row("  cores: server/generator/other/stolen", [_cpu(r.closed_loop) for r in results])
    row("  message mix", [_mix(r.mix) for r in results])
    row(
        "  people / ids / merges / refusals",
        [" / ".join(f"{r.stitching[k]:,}" for k in ("people", "ids", "merged", "refused")) for r in results],
    )
    row("anchor: executemany, 1 commit per batch", ["" for _ in results])
    row("  events/s", [f"{r.anchor.events_per_second:,.0f}" for r in results])
    row("  rows (those of the closed loop)", [f"{r.anchor.events:,}" for r in results])
    row("  CPU ms per batch", [f"{r.anchor.server_ms_per_batch:.1f}" for r in results])
    row("HTTP closed loop / anchor", [f"{r.ratio:.2f}" for r in results])
    console.print(table)
    for result in results:
        for phase in (result.open_loop, result.closed_loop):
            if phase.first_error:
                console.print(escape(f"[{result.backend}] {phase.name}: first error: {phase.first_error}"))
            if phase.ran_out:
                console.print(
                    escape(f"[{result.backend}] {phase.name} used every prepared batch; ")
                    + "raise --max-rate"
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=25.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each phase")
    parser.add_argument("--rate", type=float, default=5_000.0, help="open-loop offered events/s")
    parser.add_argument("--clients", type=int, default=4, help="closed-loop concurrent clients")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="`shopkeeper serve --workers`: one per core is the recommended setup",
    )
    parser.add_argument(
        "--max-rate", type=float, default=15_000.0, help="events/s to prepare for the closed loop (a cap)"
    )
    parser.add_argument("--pg-url", default=os.environ.get("SHOPKEEPER_TEST_POSTGRES_URL", DEFAULT_PG_URL))
    parser.add_argument(
        "--people", type=int, default=0, help="people already known before each phase (an identity graph)"
    )
    parser.add_argument("--seed", type=int, default=20_241_129)
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead")
    args = parser.parse_args(argv)

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    workdir = Path(tempfile.mkdtemp(prefix="shopkeeper-bench-"))
    try:
        results = [run_backend(backend, args, workdir) for backend in backends]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        payload = [
            {
                "backend": r.backend,
                "open_loop": asdict(r.open_loop),
                "closed_loop": asdict(r.closed_loop),
                "anchor": asdict(r.anchor),
                "http_over_anchor": r.ratio,
                "mix": r.mix,
                "stitching": r.stitching,
            }
            for r in results
        ]
        sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print_table(results, args)
    met = all(
        r.open_loop.p99_ms <= TARGET_P99_MS and r.closed_loop.events_per_second >= TARGET_EVENTS_PER_SECOND
        for r in results
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

"""Load generators: an open loop at a fixed offered rate and a closed loop of eager clients."""

from __future__ import annotations

import asyncio
import base64
import math
import statistics
import time
from dataclasses import dataclass

import httpx
import orjson

from ingest_support.server import CpuMeter, Server
from ingest_support.workload import Workload


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
    server_problems: str = ""  # the server's log from its first error or worker restart on


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

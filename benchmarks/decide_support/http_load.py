"""`benchmarks/decide.py`'s HTTP part: the servers it measures (`shopkeeper serve`, and a bare FastAPI
endpoint as the anchor) and the open-loop load generator, which runs in its own process."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

VISITOR_SHARE = 0.05  # of the calls, for visitors nobody knows (the cold start)
WARMUP_SECONDS = 3.0
REQUEST_TIMEOUT = 10.0  # seconds; a request that takes longer counts as an error
MAX_CONNECTIONS = 512  # the load generator's bound; past it, requests count as dropped
IDLE_SECONDS = 4.0  # a keep-alive connection idle longer is closed, not reused
SERVER_START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_bare(port: int) -> None:
    """The anchor server: one FastAPI route returning a small fixed JSON, served as `shopkeeper serve`
    serves (uvicorn, one worker, log level info, no access log)."""
    import os  # noqa: PLC0415 (only in the server's process)

    import uvicorn  # noqa: PLC0415
    from fastapi import FastAPI  # noqa: PLC0415

    quiet = os.open(os.devnull, os.O_WRONLY)  # as `shopkeeper serve`'s output goes to /dev/null
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)

    app = FastAPI()

    @app.post("/v1/decide")
    async def decide(body: dict[str, Any]) -> dict[str, Any]:
        return {"decision_id": "0", "placement": "web", "items": [], "reasons": [], "model_version": 1}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info", access_log=False)


def wait_until_up(port: int, alive: Any) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the server exited before it answered")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no server answered on port {port} within {SERVER_START_TIMEOUT} s")


def wait_until_prepared(port: int) -> None:
    """Until the server has prepared its people for its model (it starts when it starts)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            ready = json.loads(response.read())
        if ready.get("model_version") is not None and ready.get("prepared_version") == ready["model_version"]:
            return
        time.sleep(0.2)
    raise RuntimeError("the server did not prepare its people within 600 s")


@dataclass
class LoadResult:
    latencies_ms: list[float]
    errors: int
    dropped: int
    seconds: float


async def offer_load(
    port: int, requests: list[bytes], rate: float, warmup: float, seconds: float
) -> LoadResult:
    """Send `requests` (cycled) at `rate` per second for `warmup + seconds`, open loop, over a pool of
    keep-alive connections; a request finding no idle connection opens a new one. As HTTP clients do,
    a connection idle for longer than `IDLE_SECONDS` is closed rather than reused: the server may
    already have closed it (uvicorn keeps an idle connection for 5 s)."""
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    open_count = 0
    latencies: list[float] = []
    errors = dropped = 0

    async def exchange(request: bytes) -> bool:
        nonlocal open_count
        while idle and loop.time() - idle[-1][2] > IDLE_SECONDS:
            idle.pop()[1].close()
            open_count -= 1
        if idle:
            reader, writer, _ = idle.pop()
        else:
            open_count += 1
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
        except BaseException:
            writer.close()
            open_count -= 1
            raise
        idle.append((reader, writer, loop.time()))
        return head.startswith(b"HTTP/1.1 200")

    async def one(request: bytes, scheduled: float, timed: bool) -> None:
        nonlocal errors
        try:
            ok = await asyncio.wait_for(exchange(request), REQUEST_TIMEOUT)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            ok = False
        if timed:
            if ok:
                latencies.append((loop.time() - scheduled) * 1000)
            else:
                errors += 1

    total = int((warmup + seconds) * rate)
    first_timed = int(warmup * rate)
    start = loop.time() + 0.05
    tasks = []
    for k in range(total):
        scheduled = start + k / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if open_count >= MAX_CONNECTIONS and not idle:
            dropped += k >= first_timed
            continue
        tasks.append(asyncio.ensure_future(one(requests[k % len(requests)], scheduled, k >= first_timed)))
    if tasks:
        await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT + 1)
    for _, writer, _ in idle:
        writer.close()
    return LoadResult(latencies, errors, dropped, loop.time() - start)


def generate_load(
    port: int, requests: list[bytes], rate: float, warmup: float, seconds: float, out: Connection
) -> None:
    """The load generator's process: offers the load and sends back what it measured. Its garbage
    collector is off (it runs for seconds): its own pauses must not count as the server's latency."""
    import gc  # noqa: PLC0415 (only in the generator's process)

    gc.disable()
    result = asyncio.run(offer_load(port, requests, rate, warmup, seconds))
    out.send(vars(result))  # a plain dict: the class lives in another `__main__`
    out.close()


def measure(port: int, requests: list[bytes], rate: float, seconds: float) -> LoadResult:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    generator = context.Process(
        target=generate_load, args=(port, requests, rate, WARMUP_SECONDS, seconds, sender)
    )
    generator.start()
    sender.close()
    try:
        if not receiver.poll(WARMUP_SECONDS + seconds + REQUEST_TIMEOUT + 60):
            raise RuntimeError("the load generator did not report")
        result = LoadResult(**receiver.recv())
    finally:
        generator.join(10)
        if generator.is_alive():
            generator.kill()
    return result


def decide_requests(key: str, customers: list[str], port: int, count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    requests = []
    for k in range(count):
        who = (
            {"anonymousId": f"visitor-http-{k}"}
            if rng.random() < VISITOR_SHARE
            else {"userId": rng.choice(customers)}
        )
        body = json.dumps({**who, "placement": "web", "n": 10}).encode()
        requests.append(
            b"POST /v1/decide HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (port, key.encode(), len(body), body)
        )
    return requests


@contextmanager
def served(name: str, url: str, port: int) -> Iterator[None]:
    """Run a server in its own process until the block ends: `shopkeeper serve`, or the bare anchor."""
    if name == "bare":
        bare = multiprocessing.get_context("spawn").Process(target=serve_bare, args=(port,))
        bare.start()
        try:
            wait_until_up(port, bare.is_alive)
            yield
        finally:
            bare.terminate()
            bare.join(15)
            if bare.is_alive():
                bare.kill()
                bare.join(5)
        return
    server = subprocess.Popen(
        [sys.executable, "-m", "shopkeeper", "serve", "--db", url, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(port, lambda: server.poll() is None)
        wait_until_prepared(port)
        yield
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)

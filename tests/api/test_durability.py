"""Crash safety: SIGKILL a real `shopkeeper serve` mid-stream; every acknowledged batch survives, whole."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from shopkeeper.store import Store
from shopkeeper.store.schema import identities

pytestmark = pytest.mark.slow

BATCH_SIZE = 100
CLIENT_THREADS = 4
PEOPLE_PER_BATCH = 10
MIN_ACKED_BEFORE_KILL = 5
STREAM_SECONDS_BEFORE_KILL = 0.7


def _shopkeeper() -> list[str]:
    """The installed `shopkeeper` console script beside this interpreter, as a user would run it."""
    script = Path(sys.executable).with_name("shopkeeper")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from shopkeeper.cli.main import main; main()"]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPKEEPER_")}
    env["SHOPKEEPER_LOG_LEVEL"] = "warning"
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_write_key(database_url: str, workdir: Path) -> str:
    """Through the CLI, as the docs tell a shop to: the key is the last word printed."""
    done = subprocess.run(
        [*_shopkeeper(), "keys", "create", "--kind", "write", "--name", "crash test", "--db", database_url],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=_environment(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    key = done.stdout.split()[-1]
    assert key.startswith("sk_write_"), done.stdout
    return key


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@contextmanager
def serve(database_url: str, workdir: Path, name: str, workers: int = 1) -> Iterator[ServerProcess]:
    """`shopkeeper serve` as a real child process, ready when it yields; killed afterwards if still up."""
    port = _free_port()
    log = workdir / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                *_shopkeeper(),
                "serve",
                "--db",
                database_url,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=_environment(),
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_ready(server)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_ready(server: ServerProcess, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"shopkeeper serve exited with {server.process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"shopkeeper serve was not ready within {timeout} s:\n{server.output()}")


def batch_body(number: int) -> dict[str, Any]:
    """Batch `number`: BATCH_SIZE track calls from PEOPLE_PER_BATCH people, each with a unique messageId."""
    return {
        "batch": [
            {
                "type": "track",
                "event": "Product Viewed",
                "userId": f"user-{number}-{i % PEOPLE_PER_BATCH}",
                "anonymousId": f"anon-{number}-{i % PEOPLE_PER_BATCH}",
                "messageId": message_id(number, i),
                "properties": {"batch": number, "position": i, "sku": f"SKU{i:04d}"},
                "timestamp": "2011-06-01T12:00:00Z",
            }
            for i in range(BATCH_SIZE)
        ]
    }


def message_id(number: int, position: int) -> str:
    return f"crash-{number:05d}-{position:03d}"


def batch_ids(number: int) -> list[str]:
    return [message_id(number, i) for i in range(BATCH_SIZE)]


@dataclass
class Stream:
    """Clients posting batches back to back; what was sent and which batches got a 200."""

    url: str
    write_key: str
    sent: set[int] = field(default_factory=set)
    acked: set[int] = field(default_factory=set)
    unexpected: list[str] = field(default_factory=list)
    in_flight: int = 0
    killed: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    numbers: Iterator[int] = field(default_factory=itertools.count)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, auth=(self.write_key, ""), timeout=20) as client:
            while not self.killed.is_set():
                with self.lock:
                    number = next(self.numbers)
                    self.sent.add(number)
                    self.in_flight += 1
                try:
                    response = client.post("/v1/batch", json=batch_body(number))
                except httpx.TransportError as exc:
                    if not self.killed.is_set():
                        self.unexpected.append(f"batch {number}: {exc!r} before the kill")
                    return
                finally:
                    with self.lock:
                        self.in_flight -= 1
                body = response.json() if response.status_code == 200 else None
                if body is not None and body["stored"] == BATCH_SIZE and body["duplicates"] == 0:
                    with self.lock:
                        self.acked.add(number)
                else:
                    self.unexpected.append(f"batch {number}: {response.status_code} {response.text[:300]}")
                    return


def kill_mid_stream(server: ServerProcess, stream: Stream) -> int:
    """Stream from CLIENT_THREADS threads, then SIGKILL the server while a request is in flight.

    Returns how many requests were in flight at the kill.
    """
    threads = [threading.Thread(target=stream.run, daemon=True) for _ in range(CLIENT_THREADS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    deadline = started + 15
    in_flight = 0
    while time.monotonic() < deadline and not stream.unexpected:
        with stream.lock:
            acked, in_flight = len(stream.acked), stream.in_flight
        streamed_long_enough = time.monotonic() - started >= STREAM_SECONDS_BEFORE_KILL
        if acked >= MIN_ACKED_BEFORE_KILL and streamed_long_enough and in_flight > 0:
            break
        time.sleep(0.002)
    stream.killed.set()
    os.kill(server.process.pid, signal.SIGKILL)
    assert server.process.wait(timeout=10) == -signal.SIGKILL
    for thread in threads:
        thread.join(timeout=25)
        assert not thread.is_alive(), "a client is still waiting on a dead server"
    return in_flight


def test_acknowledged_batches_survive_kill_9(database_url: str, tmp_path: Path) -> None:
    write_key = create_write_key(database_url, tmp_path)

    with serve(database_url, tmp_path, "first") as server:
        stream = Stream(server.url, write_key)
        in_flight_at_kill = kill_mid_stream(server, stream)
        assert stream.unexpected == [], f"{stream.unexpected}\n{server.output()}"
    assert len(stream.acked) >= MIN_ACKED_BEFORE_KILL, "too few batches acknowledged to test anything"
    assert in_flight_at_kill > 0, "the kill must land while requests are in flight"
    unacked = sorted(stream.sent - stream.acked)
    assert unacked, "some batch must have been cut off by the kill"

    # Straight from the database, as the server left it.
    store = Store.open(database_url)
    try:
        all_ids = [mid for number in sorted(stream.sent) for mid in batch_ids(number)]
        stored = store.events.stored_message_ids(all_ids)
        lost = {n: BATCH_SIZE - len(stored & set(batch_ids(n))) for n in stream.acked}
        assert {n: k for n, k in lost.items() if k} == {}, "acknowledged messages were lost"
        partial = {
            n: len(stored & set(batch_ids(n)))
            for n in stream.sent
            if 0 < len(stored & set(batch_ids(n))) < BATCH_SIZE
        }
        assert partial == {}, "a batch was half stored"
        committed_unacked = [n for n in unacked if set(batch_ids(n)) <= stored]
        # Nothing but what was sent, and nothing twice.
        assert (
            store.events.count() == len(stored) == BATCH_SIZE * (len(stream.acked) + len(committed_unacked))
        )
        # The identity graph committed with the events: each acknowledged person has all their events.
        sample = min(stream.acked)
        summary = store.person_summary(f"user-{sample}-3")
        assert summary.event_count == BATCH_SIZE // PEOPLE_PER_BATCH
        assert store.person_summary(f"anon-{sample}-3").person_id == summary.person_id
    finally:
        store.close()

    with (
        serve(database_url, tmp_path, "second") as server,
        httpx.Client(base_url=server.url, auth=(write_key, ""), timeout=20) as client,
    ):
        # A resent acknowledged batch is recognised, not stored again.
        resent = client.post("/v1/batch", json=batch_body(sample))
        assert resent.status_code == 200, resent.text
        assert resent.json() == {
            "success": True,
            "received": BATCH_SIZE,
            "stored": 0,
            "duplicates": BATCH_SIZE,
        }
        # The client retries what it never heard back about: each is stored exactly once in the end.
        for number in unacked:
            retried = client.post("/v1/batch", json=batch_body(number))
            assert retried.status_code == 200, retried.text
            expected_new = 0 if number in committed_unacked else BATCH_SIZE
            assert retried.json()["stored"] == expected_new, number
        # And new traffic is served.
        fresh = client.post("/v1/batch", json=batch_body(next(stream.numbers)))
        assert fresh.status_code == 200, fresh.text
        assert fresh.json()["stored"] == BATCH_SIZE

    store = Store.open(database_url)
    try:
        assert store.events.count() == BATCH_SIZE * (len(stream.sent) + 1)
    finally:
        store.close()


@pytest.mark.slow
def test_several_workers_share_one_store(database_url: str, tmp_path: Path) -> None:
    """Two worker processes ingest concurrently, people shared across their calls: every message is
    stored once, and no id ever belongs to two people."""
    key = create_write_key(database_url, tmp_path)
    shared = [
        {
            "batch": [
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "userId": f"shared-user-{(number + i) % 30}",
                    "anonymousId": f"shared-anon-{(number * 7 + i) % 45}",
                    "messageId": f"workers-{number:03d}-{i:03d}",
                    "properties": {"sku": f"SKU{i:04d}"},
                }
                for i in range(BATCH_SIZE)
            ]
        }
        for number in range(24)
    ]
    with serve(database_url, tmp_path, "workers", workers=2) as server:

        def send(body: dict[str, Any]) -> int:
            with httpx.Client(timeout=30) as client:
                return client.post(f"{server.url}/v1/batch", json=body, auth=(key, "")).status_code

        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = list(pool.map(send, shared + shared[:6]))  # six resends among them
    assert statuses == [200] * len(statuses)
    store = Store.open(database_url)
    try:
        assert store.events.count() == 24 * BATCH_SIZE
        with store.engine.connect() as conn:
            owners = conn.execute(
                select(
                    identities.c.kind, identities.c.value, func.count(func.distinct(identities.c.person_id))
                ).group_by(identities.c.kind, identities.c.value)
            ).all()
        assert owners and all(count == 1 for _, _, count in owners)
        assert len([o for o in owners if o[0] == "user_id"]) == 30
    finally:
        store.close()

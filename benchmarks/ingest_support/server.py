"""`shopkeeper serve` as a subprocess, and the CPU it (and everything else) uses."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx


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

    def problems(self, limit: int = 60) -> str:
        """The server log from its first error or worker restart on (tracebacks of 5xx answers), if any."""
        lines = self.log.read_text(errors="replace").splitlines()
        marks = ("ERROR", "Traceback", "died", "Terminated child")
        first = next((i for i, line in enumerate(lines) if any(m in line for m in marks)), None)
        return "" if first is None else "\n".join(lines[first : first + limit])

    def cpu_seconds(self) -> float:
        """CPU of the server and its worker processes."""
        return sum(_process_cpu(pid) for pid in _process_tree(self.process.pid))


@contextmanager
def running_server(
    db_url: str, workdir: Path, workers: int = 1, settings: dict[str, str] | None = None
) -> Iterator[Server]:
    """`shopkeeper serve` as a subprocess on a free loopback port, stopped (and reaped) on exit; `settings`
    are extra `SHOPKEEPER_*` variables for it."""
    port = _free_port()
    log = workdir / f"server-{port}.log"
    # info: uvicorn then logs worker restarts too (the access log stays off), and errors come with tracebacks
    env = {**os.environ, "SHOPKEEPER_LOG_LEVEL": "info", **(settings or {})}
    env.pop("SHOPKEEPER_DATABASE_URL", None)
    command = [*_shopkeeper_command(), "serve", "--db", db_url, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env, start_new_session=True
        )
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
                os.killpg(process.pid, signal.SIGKILL)  # the workers too
                process.wait(timeout=10)


# Generous: on a loaded machine, starting two workers (imports, migrations) can take tens of seconds.
def _wait_ready(server: Server, timeout: float = 180.0) -> None:
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

"""Which server serves a shop: a small file beside its SQLite database while `serve` or `demo` runs.

`people link` reads it to build links on the port the server really uses, and a second `demo` reads it
to say that the shop is already being served instead of importing and training again. A file left
behind by a killed server names a process that is gone, and is ignored. PostgreSQL shops have no such
file: there the links use SHOPKEEPER_PUBLIC_URL, else SHOPKEEPER_HOST and SHOPKEEPER_PORT.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import orjson


@dataclass(frozen=True)
class RunningServer:
    """A serving process and the URL it listens on."""

    pid: int
    url: str


def server_url(host: str, port: int) -> str:
    """The URL to reach a server listening on host:port from this machine."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _record_path(database_url: str) -> Path | None:
    """`<database file>.server.json` for a SQLite file database; None for anything else."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415 (sqlalchemy: not at the CLI's start)

    try:
        url = make_url(database_url)
    except Exception:
        return None
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve().with_name(Path(url.database).name + ".server.json")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


@contextmanager
def recorded(database_url: str, url: str) -> Iterator[None]:
    """Record this process as the server of the database while the block runs."""
    path = _record_path(database_url)
    other = running(database_url)
    # Another live server's record stays (this one will fail to bind its port, or serve elsewhere).
    mine = path is not None and (other is None or other.pid == os.getpid())
    if mine and path is not None:
        with suppress(OSError):
            path.write_bytes(orjson.dumps({"pid": os.getpid(), "url": url}))
    try:
        yield
    finally:
        if mine and path is not None and running(database_url) == RunningServer(os.getpid(), url):
            with suppress(OSError):
                path.unlink()


def running(database_url: str) -> RunningServer | None:
    """The live server recorded for the database, if any."""
    path = _record_path(database_url)
    if path is None:
        return None
    try:
        found = orjson.loads(path.read_bytes())
        server = RunningServer(int(found["pid"]), str(found["url"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return server if _alive(server.pid) else None


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on host:port (binding there fails)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False

"""A client-side deadline on PostgreSQL round trips, and which database failures mean "retry later".

PostgreSQL's own `statement_timeout` stops a slow query, but not a database (or a network path to it)
that has stopped answering altogether: the client then waits on its socket forever. The watchdog here
shuts the socket of any connection whose statement, commit or rollback has not come back within the
deadline, so the driver raises a disconnect error, which the API answers with a 503.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from shopkeeper.errors import StoreUnavailable

# Words of the drivers' messages that mean the storage itself failed (SQLite, PostgreSQL), in lower case.
_STORAGE_FAILURES = (
    "database or disk is full",
    "disk full",
    "no space left on device",
    "disk i/o error",
    "database is locked",
    "could not extend file",
    "read-only",
    "readonly",
)
_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)


def unavailable_from(exc: BaseException) -> StoreUnavailable | None:
    """The StoreUnavailable that `exc` amounts to (an outage, a timeout, a full disk), or None.

    The message is fixed: a driver's text names hosts, ports and sometimes values.
    """
    if isinstance(exc, PoolTimeoutError):
        return StoreUnavailable("the database is busy: no connection came free in time; retry later")
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        return StoreUnavailable("the database's storage failed (a full disk?); retry later")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return StoreUnavailable("the connection to the database was lost; retry later")
    if isinstance(exc, OperationalError | DisconnectionError):
        return StoreUnavailable("the database is unavailable; retry later")
    if isinstance(exc, SQLAlchemyError):
        text = str(getattr(exc, "orig", None) or "").lower()
        if any(words in text for words in _STORAGE_FAILURES):
            return StoreUnavailable("the database's storage failed (a full disk?); retry later")
    return None


class RoundTripWatchdog:
    """Shuts the socket of a PostgreSQL connection whose round trip outlives `seconds`."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._armed: dict[int, tuple[float, int]] = {}  # id(dbapi connection) -> (deadline, socket)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._on_statement)
        event.listen(engine, "after_cursor_execute", self._on_statement_done)
        event.listen(engine, "handle_error", self._on_error)
        event.listen(engine, "commit", self._on_transaction_end)
        event.listen(engine, "rollback", self._on_transaction_end)
        event.listen(engine, "reset", self._on_reset)
        for name in ("checkin", "close", "invalidate", "soft_invalidate"):
            event.listen(engine, name, self._on_checkin)

    def _arm(self, dbapi_connection: Any) -> None:
        try:
            fileno = int(dbapi_connection.fileno())
        except Exception:  # closed or broken already: the driver will say so itself
            return
        with self._lock:
            self._armed[id(dbapi_connection)] = (time.monotonic() + self._seconds, fileno)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="shopkeeper-deadline", daemon=True)
                self._thread.start()

    def _disarm(self, dbapi_connection: Any) -> None:
        with self._lock:
            self._armed.pop(id(dbapi_connection), None)

    def _on_statement(self, conn: Any, cursor: Any, *_: Any) -> None:
        self._arm(cursor.connection)

    def _on_statement_done(self, conn: Any, cursor: Any, *_: Any) -> None:
        self._disarm(cursor.connection)

    def _on_error(self, context: Any) -> None:
        connection = context.connection
        if connection is not None and not connection.invalidated and not connection.closed:
            try:
                self._disarm(connection.connection.dbapi_connection)
            except SQLAlchemyError:  # already failed: its checkin disarms it
                return

    def _on_transaction_end(self, conn: Any) -> None:
        # Fired before the commit or rollback is sent; disarmed when the connection goes back to the pool.
        if conn.invalidated or conn.closed:
            return
        try:
            self._arm(conn.connection.dbapi_connection)
        except SQLAlchemyError:  # a connection that has failed already: nothing to wait on
            return

    def _on_reset(self, dbapi_connection: Any, *_: Any) -> None:
        self._arm(dbapi_connection)

    def _on_checkin(self, dbapi_connection: Any, *_: Any) -> None:
        if dbapi_connection is not None:
            self._disarm(dbapi_connection)

    def _run(self) -> None:
        while True:
            time.sleep(min(0.25, self._seconds / 4))
            now = time.monotonic()
            with self._lock:
                late = [key for key, (deadline, _) in self._armed.items() if deadline < now]
                sockets = [self._armed.pop(key)[1] for key in late]
            for fileno in sockets:
                _shut(fileno)


def _shut(fileno: int) -> None:
    """Shut the socket down under the driver's feet: its wait returns at once, with an error."""
    try:
        duplicate = os.dup(fileno)
    except OSError:
        return
    try:
        with socket.socket(fileno=duplicate) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass

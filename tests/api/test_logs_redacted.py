"""A database error under a real `shopkeeper serve`, logging at debug: the log holds no request data
(issue 12, item 3). On the old main uvicorn printed the traceback with SQLAlchemy's `[parameters: ...]`:
the whole event, its userId and its properties.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from tests.api.test_durability import (
    ServerProcess,
    _environment,
    _free_port,
    _shopkeeper,
    _wait_ready,
)

from shopkeeper.store import Store

pytestmark = pytest.mark.slow

SECRETS = ("secret-user-7f3a", "secret-value-91b2", "secret-sku-5c0d")
REFUSE_EVENTS = {
    "sqlite": [
        "CREATE TRIGGER refuse_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ "
        "LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_events BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
}


@contextmanager
def serve_at_debug(database_url: str, workdir: Path) -> Iterator[ServerProcess]:
    port = _free_port()
    log = workdir / "server.log"
    environment = {**_environment(), "SHOPKEEPER_LOG_LEVEL": "debug"}
    command = [*_shopkeeper(), "serve", "--db", database_url, "--port", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, cwd=workdir, env=environment
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


def _track(server: ServerProcess, write_key: str) -> httpx.Response:
    event = {
        "userId": SECRETS[0],
        "event": "Product Viewed",
        "properties": {"note": SECRETS[1], "product_id": SECRETS[2]},
    }
    return httpx.post(f"{server.url}/v1/track", auth=(write_key, ""), json=event, timeout=30)


def test_a_database_error_logs_no_request_data(database_url: str, tmp_path: Path) -> None:
    store = Store.open(database_url)
    write_key, _ = store.keys.create("write", name="tests")
    store.close()
    with serve_at_debug(database_url, tmp_path) as server:
        engine = create_engine(database_url)
        with engine.begin() as conn:
            for statement in REFUSE_EVENTS[engine.dialect.name]:
                conn.exec_driver_sql(statement)
        refused = _track(server, write_key)  # an error no handler expects: a 500
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "DROP TRIGGER refuse_events" + (" ON events" if conn.dialect.name != "sqlite" else "")
            )
            conn.execute(text("DROP TABLE interactions"))
        broken = _track(server, write_key)  # a store that lost a table
        engine.dispose()
        # The second request's connection is still usable: the 500 answered cleanly.
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
    logged = server.log.read_text(errors="replace")
    assert "unexpected" in logged and "Traceback" in logged, logged[-3000:]  # the error was logged
    for secret in SECRETS:
        assert secret not in logged, f"{secret!r} reached the server's log:\n{logged[-3000:]}"
    assert "[parameters:" not in logged
    assert refused.status_code == 500, refused.text
    assert refused.json()["error"]["code"] == "internal_error"
    assert refused.headers["connection"] == "close"
    assert broken.status_code in (500, 503), broken.text

"""Fixtures shared by the whole suite: a store on every backend, and a live server on localhost.

The `database_url` fixture runs each test that uses it on SQLite and on PostgreSQL. PostgreSQL tests
skip with a reason when no server answers, except in CI (`CI=true`), where they must run.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shopkeeper.api.app import create_app
from shopkeeper.api.server import uvicorn_options
from shopkeeper.settings import Settings
from shopkeeper.store import Store

# Serving processes prepare decisions in a background thread when a model is published; the suite
# turns that off so that no test races it, and the tests of the preparing turn it on for themselves.
os.environ.setdefault("SHOPKEEPER_WARM_PEOPLE", "0")
# Likewise the moment engine and outbox worker that a server runs in the background: the tests of
# moments over HTTP turn it on for their servers.
os.environ.setdefault("SHOPKEEPER_SERVE_WORKER", "0")

POSTGRES_URL = os.environ.get(
    "SHOPKEEPER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of the test PostgreSQL, or a skip (a failure in CI) when it does not answer."""
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        reason = (
            f"PostgreSQL not reachable at {POSTGRES_URL} ({type(exc).__name__}); set "
            "SHOPKEEPER_TEST_POSTGRES_URL to run these tests"
        )
        if IN_CI:
            pytest.fail(f"CI=true, so PostgreSQL tests must run: {reason}")
        pytest.skip(reason)
    finally:
        engine.dispose()
    return POSTGRES_URL


def postgres_schema_url(server: str) -> Iterator[str]:
    """A URL whose connections live in a fresh schema of their own, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}"
    else:
        yield from postgres_schema_url(request.getfixturevalue("postgres_server"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shop.db'}"


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    yield from postgres_schema_url(postgres_server)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    write_key: str
    admin_key: str
    store: Store


@contextmanager
def serving(store: Store, *, log_level: str = "warning", settings: Settings | None = None) -> Iterator[str]:
    """The app over `store`, served by a real uvicorn in a thread on a free localhost port: its URL.

    The strict limits on failed authentication are off unless `settings` says otherwise: many tests send
    failing credentials from 127.0.0.1 to one server on purpose (tests/api/test_limits.py checks them)."""
    settings = settings or Settings(
        database_url=str(store.engine.url), rate_limit_failed_auth=0, rate_limit_failed_links=0
    )
    with serving_app(create_app(settings, store=store), settings, log_level=log_level) as url:
        yield url


@contextmanager
def serving_app(app: FastAPI, settings: Settings, *, log_level: str = "warning") -> Iterator[str]:
    """`app` served as `shopkeeper serve` serves it (uvicorn_options), in a thread on a free port."""
    port = free_port()
    options = {**uvicorn_options(settings), "log_level": log_level}
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_server(store: Store) -> Iterator[LiveServer]:
    """A real uvicorn server on a free localhost port, in a thread, over `store`."""
    write_key, _ = store.keys.create("write", name="tests", origins=["https://shop.example"])
    admin_key, _ = store.keys.create("admin", name="tests")
    with serving(store) as url:
        yield LiveServer(url, write_key, admin_key, store)


@pytest.fixture(scope="session")
def demo_shop_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo shop's database, built once per test session by `shopkeeper demo --no-serve`."""
    from tests.web.support import build_demo_shop  # noqa: PLC0415

    return build_demo_shop(tmp_path_factory.mktemp("demo-shop"))


@pytest.fixture
def dashboard(demo_shop_file: Path, tmp_path: Path) -> Iterator[Any]:
    """The dashboard served over a fresh copy of the demo shop, with an owner, a marketer and a staff user."""
    from tests.web.support import dashboard_over  # noqa: PLC0415

    with dashboard_over(demo_shop_file, tmp_path) as live:
        yield live

"""Fixtures of the bad-input tests: one live server per backend for the table-driven cases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.api.tracking_support import Server, serve
from tests.conftest import LiveServer, postgres_schema_url


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One client (building one per request costs an SSL context); no keep-alive, so a 500 that closes
    its connection cannot break the next case."""
    with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        yield client


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, http: httpx.Client
) -> Iterator[Server]:
    """One real uvicorn per backend for this module's cases; each case checks the event count itself."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("errors") / "shop.db"
        yield from serve(f"sqlite:///{path}", http)
    else:
        for url in postgres_schema_url(request.getfixturevalue("postgres_server")):
            yield from serve(url, http)


@pytest.fixture
def fresh(live_server: LiveServer, http: httpx.Client) -> Server:
    """conftest's live_server (an empty store per test), for the tests that count what is stored."""
    return Server(live_server.url, live_server.write_key, live_server.admin_key, live_server.store, http)

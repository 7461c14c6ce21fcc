"""The dashboard served for real over a copy of a shop, and what one request costs it.

The app is the real one (`create_app(settings, store=store)`), served by uvicorn with `shopkeeper serve`'s
options in a thread of this process on 127.0.0.1 (tests/conftest.py's `serving_app`), without the moments
worker (its sends would land in the middle of the timings). Before any timing, the server has prepared its
people for the model, as a server does when it starts (`/readyz`). One owner logs in through the login
form (tests/web/support.py's `LiveDashboard.client`), and the JSON side calls with an admin key.

A request is timed on the client, from sending it to having read the whole answer, over a kept-alive
connection on localhost: what the server spends on it, plus well under a millisecond of loopback and
client. `profiled` runs a page's handler under cProfile and times every SQL statement it sends, to say
where a slow page's time goes.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from decide_support.http_load import wait_until_prepared
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import event
from starlette.routing import Match

from shopkeeper.api.app import create_app
from shopkeeper.privacy.accounts import Accounts
from shopkeeper.settings import Settings
from shopkeeper.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for the tests' pieces
from tests.conftest import serving_app
from tests.web.support import PASSWORD, LiveDashboard

OWNER = "owner@shop.example"
TIMEOUT = 600.0  # seconds: a page on the big shop may be slow; a slow answer is a figure, not an error


@dataclass
class Live:
    url: str
    app: FastAPI
    store: Store
    page: httpx.Client  # logged in to the dashboard as an owner (who may see every page)
    api: httpx.Client  # sends an admin key
    prepared_seconds: float


@dataclass(frozen=True)
class Answer:
    status: int
    seconds: float
    size: int
    json: bool  # answered with JSON (a dashboard path without a page answers with FastAPI's JSON 404)
    text: str


@contextmanager
def live(path: Path) -> Iterator[Live]:
    """The dashboard and the API served over the shop at `path`, with an owner and an admin key."""
    url = f"sqlite:///{path}"
    store = Store.open(url)
    clients: list[httpx.Client] = []
    try:
        Accounts(store).create(OWNER, "owner", PASSWORD)
        admin_key, _ = store.keys.create("admin", name="benchmark")
        settings = Settings(
            database_url=url,
            rate_limit_failed_auth=0,
            rate_limit_failed_links=0,
            serve_worker=False,
            # as `shopkeeper serve` prepares (importing tests.conftest turned it off for the tests)
            warm_people=Settings.model_fields["warm_people"].default,
        )
        app = create_app(settings, store=store)
        with serving_app(app, settings) as served:
            started = time.perf_counter()
            wait_until_prepared(urlsplit(served).port or 80)
            prepared = time.perf_counter() - started
            page = LiveDashboard(served, store, {"owner": OWNER}).client("owner")
            page.timeout = httpx.Timeout(TIMEOUT)
            api = httpx.Client(
                base_url=served, headers={"Authorization": f"Bearer {admin_key}"}, timeout=TIMEOUT
            )
            clients += [page, api]
            yield Live(served, app, store, page, api, prepared)
    finally:
        for client in clients:
            client.close()
        store.close()


def ask(client: httpx.Client, method: str, path: str, body: Any = None) -> Answer:
    """One request, timed from sending it to having read the whole answer."""
    started = time.perf_counter()
    response = client.request(method, path, json=body)
    size = len(response.content)
    seconds = time.perf_counter() - started
    kind = response.headers.get("content-type", "")
    return Answer(response.status_code, seconds, size, kind.startswith("application/json"), response.text)


@dataclass
class Profile:
    """Where a page's time went over a few requests: its handler's functions, and its SQL."""

    requests: int
    functions: str  # cProfile, the shop's own functions by cumulative time
    statements: list[tuple[float, int, str]] = field(default_factory=list)  # seconds, times, SQL


def profiled(live: Live, path: str, requests: int, ask_page: Callable[[], Answer]) -> Profile:
    """`requests` asks of the page at `path` with its handler under cProfile, every statement timed."""
    route = _route(live.app, path)
    profile = cProfile.Profile()
    handler = route.dependant.call
    assert handler is not None

    def measured(*args: Any, **kwargs: Any) -> Any:
        profile.enable()
        try:
            return handler(*args, **kwargs)
        finally:
            profile.disable()

    statements: dict[str, list[float]] = {}
    starts: dict[int, float] = {}

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        starts[id(cursor)] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        began = starts.pop(id(cursor), None)
        if began is not None:
            statements.setdefault(" ".join(statement.split()), []).append(time.perf_counter() - began)

    route.dependant.call = measured
    event.listen(live.store.engine, "before_cursor_execute", before)
    event.listen(live.store.engine, "after_cursor_execute", after)
    try:
        for _ in range(requests):
            ask_page()
    finally:
        route.dependant.call = handler
        event.remove(live.store.engine, "before_cursor_execute", before)
        event.remove(live.store.engine, "after_cursor_execute", after)
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(r"shopkeeper|jinja2", 25)
    ranked = sorted(((sum(t), len(t), sql) for sql, t in statements.items()), reverse=True)
    return Profile(requests, out.getvalue(), ranked)


def _route(app: FastAPI, path: str) -> APIRoute:
    scope = {"type": "http", "method": "GET", "path": urlsplit(path).path, "root_path": ""}
    for route in app.router.routes:
        if isinstance(route, APIRoute) and route.matches(scope)[0] == Match.FULL:
            return route
    raise LookupError(f"no route answers GET {path}")

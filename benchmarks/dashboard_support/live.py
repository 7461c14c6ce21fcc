"""The dashboard served for real over a copy of a shop, and what one request costs it.

The app is the real one (`create_app(settings, store=store)`), served by uvicorn with `shopkeeper serve`'s
options in a thread of this process on 127.0.0.1 (tests/conftest.py's `serving_app`), without the moments
worker (its sends would land in the middle of the timings) and without preparing the model's people in
the background when it starts (`warm_people` 0: on the big shop that takes 3 minutes of both cores, and
the one person the pages decide for is prepared by the warm-up). One owner logs in through the login
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

import fastapi.routing as fastapi_routing
import httpx
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

OWNER = "benchmark-owner@shop.example"
TIMEOUT = 600.0  # seconds: a page on the big shop may be slow; a slow answer is a figure, not an error


@dataclass
class Live:
    url: str
    app: FastAPI
    store: Store
    page: httpx.Client  # logged in to the dashboard as an owner (who may see every page)
    api: httpx.Client  # sends an admin key


@dataclass(frozen=True)
class Answer:
    status: int
    seconds: float
    size: int
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
            warm_people=0,
        )
        app = create_app(settings, store=store)
        with serving_app(app, settings) as served:
            page = LiveDashboard(served, store, {"owner": OWNER}).client("owner")
            page.timeout = httpx.Timeout(TIMEOUT)
            api = httpx.Client(
                base_url=served, headers={"Authorization": f"Bearer {admin_key}"}, timeout=TIMEOUT
            )
            clients += [page, api]
            yield Live(served, app, store, page, api)
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
    return Answer(response.status_code, seconds, size, response.text)


@dataclass
class Profile:
    """Where a page's time went over a few requests: its handler's functions, and its SQL."""

    requests: int
    functions: str  # cProfile, the shop's own functions by cumulative time
    statements: list[tuple[float, int, str]] = field(default_factory=list)  # seconds, times, SQL


def profiled(live: Live, path: str, requests: int, ask_page: Callable[[], Answer]) -> Profile:
    """`requests` asks of the page at `path` with its handler under cProfile, and every SQL statement timed
    to its first row (SQLite does most of the work of a count or a sort by then; a long fetch is not in it).

    A page's handler is a plain `def` that FastAPI runs in its thread pool through
    `fastapi.routing._run_sync_endpoint`; that one name is wrapped for the while (cProfile follows only
    the thread it is enabled in, and FastAPI keeps included routes in copies of its own)."""
    route = route_of(live.app, path)
    assert route is not None, f"no route answers GET {path}"
    page = route.endpoint
    profile = cProfile.Profile()
    run_sync = fastapi_routing._run_sync_endpoint

    def measured(*, function: Callable[..., Any], arguments: dict[str, Any]) -> Any:
        if function is not page:
            return run_sync(function=function, arguments=arguments)
        profile.enable()
        try:
            return run_sync(function=function, arguments=arguments)
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

    fastapi_routing._run_sync_endpoint = measured
    event.listen(live.store.engine, "before_cursor_execute", before)
    event.listen(live.store.engine, "after_cursor_execute", after)
    try:
        for _ in range(requests):
            ask_page()
    finally:
        fastapi_routing._run_sync_endpoint = run_sync
        event.remove(live.store.engine, "before_cursor_execute", before)
        event.remove(live.store.engine, "after_cursor_execute", after)
    out = io.StringIO()
    try:
        stats = pstats.Stats(profile, stream=out)
    except TypeError:  # nothing was recorded: the handler did not run through the wrapped name
        return Profile(requests, "(no profile: the handler did not run through _run_sync_endpoint)")
    stats.sort_stats("cumulative").print_stats(r"shopkeeper|jinja2", 25)
    ranked = sorted(((sum(t), len(t), sql) for sql, t in statements.items()), reverse=True)
    return Profile(requests, out.getvalue(), ranked)


def route_of(app: FastAPI, path: str) -> APIRoute | None:
    """The route that answers GET `path`, or None: the page is not built (yet)."""
    return _route_in(app.router.routes, urlsplit(path).path, "")


def _route_in(routes: list[Any], path: str, prefix: str) -> APIRoute | None:
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI >= 0.16x keeps included routers whole
        if inner is not None:
            context = getattr(route, "include_context", None)
            found = _route_in(inner.routes, path, prefix + (getattr(context, "prefix", "") or ""))
            if found is not None:
                return found
        elif isinstance(route, APIRoute) and path.startswith(prefix):
            scope = {"type": "http", "method": "GET", "path": path[len(prefix) :], "root_path": ""}
            if route.matches(scope)[0] == Match.FULL:
                return route
    return None

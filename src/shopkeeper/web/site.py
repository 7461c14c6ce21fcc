"""The dashboard put together: its templates, its static files (a fixed list, read once), and its pages."""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from shopkeeper.errors import NotFound
from shopkeeper.privacy.accounts import Accounts
from shopkeeper.settings import Settings
from shopkeeper.shop import Shop
from shopkeeper.web import pages
from shopkeeper.web.core import SECURITY_HEADERS, Dashboard
from shopkeeper.web.snapshots import Snapshots

# The menu: (link, label, the least role that sees it).
NAV: list[tuple[str, str, str]] = [
    ("/dashboard", "Overview", "marketer"),
    ("/dashboard/people", "People", "staff"),
    ("/dashboard/personas", "Personas", "marketer"),
    ("/dashboard/audiences", "Audiences", "marketer"),
    ("/dashboard/experiments", "Experiments", "marketer"),
    ("/dashboard/moments", "Moments", "marketer"),
    ("/dashboard/inbox", "Inbox", "staff"),
    ("/dashboard/content", "Content", "marketer"),
    ("/dashboard/recommendations", "Recommendations", "marketer"),
    ("/dashboard/users", "Users and keys", "owner"),
    ("/dashboard/audit", "Audit log", "owner"),
]
NO_VALUE = "\u2013"  # an en dash: no figure
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def mount(app: FastAPI, shop: Shop, settings: Settings) -> Dashboard:
    """Add the dashboard's pages and files to `app`; the pages find the returned `Dashboard` on its state."""
    board = Dashboard(
        shop=shop,
        accounts=Accounts(shop.store, session_hours=settings.dashboard_session_hours),
        settings=settings,
        templates=templates(),
        snapshots=Snapshots(settings.dashboard_snapshot_seconds),
    )
    app.state.dashboard = board
    app.include_router(pages.router)
    app.include_router(_static_router())
    return board


def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("shopkeeper.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=number, pct=percent, ago=ago, money=money, span=span)
    env.globals.update(ASSETS=asset_versions(), NAV=NAV)
    return env


def number(value: Any, digits: int = 0) -> str:
    if value is None:
        return NO_VALUE
    return f"{value:,.{digits}f}"


def percent(value: Any, digits: int = 1) -> str:
    if value is None:
        return NO_VALUE
    return f"{100 * value:,.{digits}f}%"


def money(value: Any) -> str:
    if value is None:
        return NO_VALUE
    return f"£{value:,.2f}"


def ago(value: Any, now: datetime | None = None) -> str:
    """'3 days ago', from a datetime or an ISO text."""
    if value is None or value == "":
        return "never"
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - when).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        return "just now"
    text = span(seconds)
    return f"in {text}" if future else f"{text} ago"


def span(seconds: float) -> str:
    """'3 days', '1 minute', '45 seconds': a length of time in its largest whole unit."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "under a second"


def _static_root() -> Traversable:
    return files("shopkeeper.web").joinpath("static")


@cache
def static_files() -> dict[str, tuple[bytes, str]]:
    """Every file under web/static, by its path there: the only paths the static route answers."""
    found: dict[str, tuple[bytes, str]] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            else:
                suffix = "." + entry.name.rsplit(".", 1)[-1]
                kind = STATIC_TYPES.get(suffix) or mimetypes.guess_type(entry.name)[0] or "text/plain"
                found[prefix + entry.name] = (entry.read_bytes(), kind)

    walk(_static_root(), "")
    return found


@cache
def asset_versions() -> dict[str, str]:
    """A short hash per file, for `?v=` in links, so a new release is never served from a stale cache."""
    import hashlib  # noqa: PLC0415

    return {name: hashlib.sha256(body).hexdigest()[:10] for name, (body, _) in static_files().items()}


def _static_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/dashboard/static/{name:path}")
    async def static(name: str) -> Response:
        found = static_files().get(name)
        if found is None:
            raise NotFound(f"no file {name!r} in the dashboard's static files", field="name")
        body, kind = found
        return Response(
            body, media_type=kind, headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400"}
        )

    return router

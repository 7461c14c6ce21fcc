"""What every dashboard page shares: who is looking (the session cookie and the role it needs), posted forms
with their CSRF token, rendering with the security headers, errors as pages, and the audit of every change.

The session cookie is `Secure`, `HttpOnly` and `SameSite=Strict`; browsers keep a Secure cookie over plain
HTTP only from localhost, so a shop that serves the dashboard to its floor over plain HTTP on its own network
turns `SHOPKEEPER_DASHBOARD_SECURE_COOKIE` off. A change is a POST whose form (or `X-CSRF-Token` header, for
htmx) carries the session's CSRF token, from a page of this origin when the browser says where it came from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment

from shopkeeper.errors import InvalidInput, PayloadTooLarge, PermissionDenied, ShopkeeperError
from shopkeeper.privacy.accounts import Accounts, Role, Session, csrf_matches
from shopkeeper.privacy.service import Actor
from shopkeeper.settings import Settings
from shopkeeper.shop import Shop
from shopkeeper.web.snapshots import Snapshots

log = logging.getLogger("shopkeeper.web")

COOKIE = "shopkeeper_session"
MAX_FORM_BYTES = 256 * 1024

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


@dataclass
class Dashboard:
    """What the pages are handed: the shop, the users, the settings and the templates."""

    shop: Shop
    accounts: Accounts
    settings: Settings
    templates: Environment
    snapshots: Snapshots
    extras: dict[str, Any] = field(default_factory=dict)


class LoginNeeded(Exception):
    """No live session: a page redirects to the login form, an htmx request is told to."""


def dashboard_of(request: Request) -> Dashboard:
    board: Dashboard = request.app.state.dashboard
    return board


def session_of(request: Request) -> Session | None:
    cached = request.scope.get("shopkeeper.session", False)
    if cached is not False:
        return cached  # type: ignore[no-any-return]
    session = dashboard_of(request).accounts.session(request.cookies.get(COOKIE))
    request.scope["shopkeeper.session"] = session
    return session


def needs(role: Role) -> Callable[[Request], Session]:
    """A dependency: the session of a user with at least `role`, else a login (or a 403 page)."""

    def dependency(request: Request) -> Session:
        session = session_of(request)
        if session is None:
            raise LoginNeeded()
        if not session.may(role):
            raise PermissionDenied(f"this page is for {role}s and above; you are {session.user.role}")
        return session

    return dependency


@dataclass(frozen=True)
class Form:
    """A posted form, its CSRF token checked."""

    values: Mapping[str, str]
    lists: Mapping[str, list[str]]

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def all(self, name: str) -> list[str]:
        return self.lists.get(name, [])


async def posted(request: Request) -> Form:
    """The form of a change, after the session (any role) and its CSRF token are checked."""
    session = session_of(request)
    if session is None:
        raise LoginNeeded()
    body = await read_body(request)
    pairs = form_pairs(request, body)
    values: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, value)
        lists.setdefault(name, []).append(value)
    sent = request.headers.get("x-csrf-token") or values.get("csrf")
    if not csrf_matches(session, sent) or not same_origin(request):
        raise PermissionDenied("this form is stale or came from another site: reload the page and try again")
    return Form(values, lists)


async def read_body(request: Request) -> bytes:
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > MAX_FORM_BYTES:
        raise PayloadTooLarge(f"a form is at most {MAX_FORM_BYTES // 1024} KB")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_FORM_BYTES:
            raise PayloadTooLarge(f"a form is at most {MAX_FORM_BYTES // 1024} KB")
        chunks.append(chunk)
    return b"".join(chunks)


def form_pairs(request: Request, body: bytes) -> list[tuple[str, str]]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and kind not in ("application/x-www-form-urlencoded", ""):
        raise InvalidInput("send the form as application/x-www-form-urlencoded", field="Content-Type")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=500)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the form is not valid UTF-8 url-encoded text", field="body") from None
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise InvalidInput(f"{name[:40]}: NUL characters are not allowed", field=name[:40])
    return pairs


def same_origin(request: Request) -> bool:
    """When the browser names the page a form came from (Origin, else Referer), it is this host."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source is None
    return urlsplit(source).netloc == request.headers.get("host", "")


def actor(session: Session) -> Actor:
    """The audit log's name for a dashboard user: their number and role, never their email."""
    return Actor("dashboard", f"user {session.user.id} ({session.user.role})")


def audit(
    request: Request, session: Session, action: str, person_id: int | None = None, **detail: Any
) -> None:
    """Every change made through the dashboard is in the audit log, under the user who made it."""
    dashboard_of(request).shop.privacy.audit_now(actor(session), action, person_id, **detail)


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    board = dashboard_of(request)
    session = session_of(request)
    page = board.templates.get_template(template).render(
        request=request,
        session=session,
        path=request.url.path,
        htmx=request.headers.get("hx-request") == "true",
        **context,
    )
    return HTMLResponse(page, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def redirect(to: str, *, htmx: bool = False) -> Response:
    """After a change: 303 to `to` (for a form), or HX-Redirect (for htmx)."""
    if htmx:
        return Response(status_code=204, headers={**SECURITY_HEADERS, "HX-Redirect": to})
    return RedirectResponse(to, status_code=303, headers=SECURITY_HEADERS)


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/dashboard/login?next={quote(target, safe='')}"


class PageRoute(APIRoute):
    """Errors become pages (or, for htmx, a fragment) with the status they carry, never JSON or a 500."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginNeeded:
                if request.headers.get("hx-request") == "true":
                    return Response(
                        status_code=401, headers={**SECURITY_HEADERS, "HX-Redirect": login_url(request)}
                    )
                if request.method in ("GET", "HEAD"):
                    return RedirectResponse(login_url(request), status_code=303, headers=SECURITY_HEADERS)
                return error_page(request, 401, "your session has ended: log in again")
            except ShopkeeperError as exc:
                if exc.status >= 500:
                    raise
                headers = {"Retry-After": str(exc.retry_after)} if hasattr(exc, "retry_after") else None
                return error_page(request, exc.status, exc.message, headers=headers)
            except RequestValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
                return error_page(
                    request, 400, f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
                )

        return guarded


def error_page(
    request: Request, status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    fragment = request.headers.get("hx-request") == "true"
    return render(
        request,
        "_error.html" if fragment else "error.html",
        status=status,
        headers=headers,
        status_code=status,
        message=message,
    )

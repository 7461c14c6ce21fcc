"""Logging in and out. The login form is CSRF-protected too (a random token in a short-lived cookie and in
the form must match), so another site cannot log a browser into an account of its choosing."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from shopkeeper.errors import AuthenticationError, PermissionDenied, TooManyLogins
from shopkeeper.web.core import (
    COOKIE,
    Form,
    PageRoute,
    dashboard_of,
    form_pairs,
    posted,
    read_body,
    redirect,
    render,
    same_origin,
    session_of,
)

router = APIRouter(route_class=PageRoute)
LOGIN_COOKIE = "shopkeeper_login"


def safe_next(target: str | None) -> str:
    """Only a dashboard path of this site: never another host (`//evil`), never a scheme."""
    if not target or not target.startswith("/dashboard") or target.startswith("//") or "\\" in target:
        return "/dashboard"
    return target


@router.get("/login")
def login_form(request: Request, next: str = "/dashboard") -> Response:
    if session_of(request) is not None:
        return redirect(safe_next(next))
    return _form(request, next=safe_next(next))


def _form(request: Request, *, next: str, error: str = "", email: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request, "login.html", status=status, login_token=token, next=next, error=error, email=email
    )
    board = dashboard_of(request)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/dashboard/login",
        secure=board.settings.dashboard_secure_cookie,
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    values = dict(form_pairs(request, await read_body(request)))
    next_page = safe_next(values.get("next"))
    email = values.get("email", "")[:254]
    expected = request.cookies.get(LOGIN_COOKIE, "")
    sent = values.get("login_token", "")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()) or not same_origin(request):
        return _form(
            request, next=next_page, email=email, status=403, error="This form had expired: try again."
        )
    board = dashboard_of(request)
    client = request.client.host if request.client else "unknown"
    try:
        session = await run_in_threadpool(board.accounts.login, email, values.get("password", ""), client)
    except TooManyLogins as exc:
        response = _form(
            request, next=next_page, email=email, status=429, error=exc.message.capitalize() + "."
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except AuthenticationError as exc:
        return _form(request, next=next_page, email=email, status=401, error=exc.message.capitalize() + ".")
    response = redirect(next_page)
    response.set_cookie(
        COOKIE,
        session.token,
        max_age=int(board.accounts.session_seconds),
        path="/",
        secure=board.settings.dashboard_secure_cookie,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/dashboard/login")
    return response


@router.post("/logout")
def logout(request: Request, form: Form = Depends(posted)) -> Response:
    session = session_of(request)
    if session is None:  # posted() has checked; this is for the type checker
        raise PermissionDenied("not logged in")
    dashboard_of(request).accounts.logout(session.token)
    response = redirect("/dashboard/login")
    response.delete_cookie(COOKIE, path="/")
    return response

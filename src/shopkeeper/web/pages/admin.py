"""For owners: the dashboard's users, the API keys, and the audit log of every change."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shopkeeper.errors import InvalidInput
from shopkeeper.privacy.accounts import ROLES, Session
from shopkeeper.store.keys import KeyKind
from shopkeeper.web.core import Form, PageRoute, audit, dashboard_of, needs, posted, redirect, render

router = APIRouter(route_class=PageRoute)
OWNER = Depends(needs("owner"))


def _page(
    request: Request, *, status: int = 200, new_key: tuple[str, str] | None = None, error: str = ""
) -> Response:
    board = dashboard_of(request)
    return render(
        request,
        "admin/users.html",
        status=status,
        users=board.accounts.list(),
        keys=board.shop.store.keys.list(),
        roles=ROLES,
        new_key=new_key,
        error=error,
    )


@router.get("/users")
def users(request: Request, session: Session = OWNER) -> Response:
    return _page(request)


@router.post("/users")
def create_user(request: Request, form: Form = Depends(posted), session: Session = OWNER) -> Response:
    user = dashboard_of(request).accounts.create(form.get("email"), form.get("role"), form.get("password"))
    audit(request, session, "create_user", user_id=user.id, role=user.role)
    return redirect("/dashboard/users")


@router.post("/users/{user_id}")
def change_user(
    request: Request, user_id: int, form: Form = Depends(posted), session: Session = OWNER
) -> Response:
    role = form.get("role") or None
    disabled = {"disable": True, "enable": False}.get(form.get("action"))
    user = dashboard_of(request).accounts.change(user_id, role=role, disabled=disabled)
    audit(request, session, "change_user", user_id=user.id, role=user.role, active=user.active)
    return redirect("/dashboard/users")


@router.post("/keys")
def create_key(request: Request, form: Form = Depends(posted), session: Session = OWNER) -> Response:
    kinds: dict[str, KeyKind] = {"write": "write", "admin": "admin"}
    kind = kinds.get(form.get("kind"))
    if kind is None:
        raise InvalidInput("kind: write or admin", field="kind")
    origins = [o.strip() for o in form.get("origins").split(",") if o.strip()]
    raw, key = dashboard_of(request).shop.store.keys.create(
        kind, name=form.get("name")[:100], origins=origins
    )
    audit(request, session, "create_key", key_id=key.id, kind=key.kind)
    return _page(request, new_key=(key.kind, raw))


@router.post("/keys/{key_id}/revoke")
def revoke_key(
    request: Request, key_id: int, form: Form = Depends(posted), session: Session = OWNER
) -> Response:
    dashboard_of(request).shop.store.keys.revoke(key_id)
    audit(request, session, "revoke_key", key_id=key_id)
    return redirect("/dashboard/users")


@router.get("/audit")
def audit_log(request: Request, session: Session = OWNER, only: str = "dashboard") -> Response:
    entries = dashboard_of(request).shop.store.users.audit_entries(
        limit=200, actor_prefix="user " if only == "dashboard" else None
    )
    return render(request, "admin/audit.html", entries=entries, only=only)

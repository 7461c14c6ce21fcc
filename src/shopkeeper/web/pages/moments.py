"""The moments page (rules, their firings and suppressions) and the staff inbox."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shopkeeper.privacy.accounts import Session
from shopkeeper.web.core import PageRoute, needs, render

router = APIRouter(route_class=PageRoute)


@router.get("/inbox")
def inbox(request: Request, session: Session = Depends(needs("staff"))) -> Response:
    return render(request, "moments/inbox.html")

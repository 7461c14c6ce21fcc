"""The recommendations page(s)."""

from __future__ import annotations

from fastapi import APIRouter

from shopkeeper.web.core import PageRoute

router = APIRouter(route_class=PageRoute)

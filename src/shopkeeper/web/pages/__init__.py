"""The dashboard's pages, one module per page (or pair of pages), each with its own templates."""

from __future__ import annotations

from fastapi import APIRouter

from shopkeeper.web.pages import (
    admin,
    audiences,
    content,
    experiments,
    login,
    moments,
    overview,
    people,
    personas,
    recommendations,
)

router = APIRouter(include_in_schema=False)
for page in (
    login,
    overview,
    people,
    personas,
    audiences,
    experiments,
    moments,
    content,
    recommendations,
    admin,
):
    router.include_router(page.router, prefix="/dashboard")

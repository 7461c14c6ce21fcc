"""The OpenAPI document's security schemes (FastAPI's own classes) and its last touches.

The schemes only describe the credentials: `shopkeeper.api.auth` and `shopkeeper.api.privacy` read and
check them, so that every refusal is our precise 401/403 JSON. Hence `auto_error=False` on each, and the
Basic scheme reads nothing at all (FastAPI's `HTTPBasic` answers its own 401 on malformed credentials even
with `auto_error=False`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Security
from fastapi.params import Depends
from fastapi.security import HTTPBasic, HTTPBearer
from starlette.requests import HTTPConnection


class WriteKeyScheme(HTTPBasic):
    """HTTP Basic with the write key as the username, as Segment's libraries send it."""

    async def __call__(self, request: HTTPConnection) -> None:
        return None  # read by shopkeeper.api.auth.key_from_header, with its precise errors


WRITE_KEY = WriteKeyScheme(
    scheme_name="writeKey",
    description="The write key as the Basic username, no password (or `writeKey` in the body).",
    auto_error=False,
)
ADMIN_KEY = HTTPBearer(
    scheme_name="adminKey",
    description="An admin key (`shopkeeper keys create --kind admin`) as `Authorization: Bearer <key>`.",
    auto_error=False,
)
PERSON_LINK = HTTPBearer(
    scheme_name="personLink",
    bearerFormat="pt1.<signed token>",
    description="A person's own link token (`POST /v1/people/{id}/link`), which may name them `me`.",
    auto_error=False,
)

WRITE_KEY_ONLY: list[Depends] = [Security(WRITE_KEY)]
ADMIN_ONLY: list[Depends] = [Security(ADMIN_KEY)]
ADMIN_OR_PERSON: list[Depends] = [Security(ADMIN_KEY), Security(PERSON_LINK)]  # either one


def finish_openapi(app: FastAPI) -> None:
    """Drop the 422 that FastAPI lists for every route with parameters: validation errors answer 400
    (see the app's error handlers), so a 422 never comes back."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                if isinstance(operation, dict):
                    operation.get("responses", {}).pop("422", None)
        schemas = schema.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

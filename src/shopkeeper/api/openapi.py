"""The OpenAPI document's security schemes (FastAPI's own classes) and its last touches.

The schemes describe the credentials; our own code checks them, so that every refusal is our precise
401/403 JSON (hence `auto_error=False`): the admin key's scheme is the admin check itself
(`shopkeeper.api.auth.admin_key_async`), so the routes that take only an admin key pay no extra
dependency; on the routes that take a person's link too, `shopkeeper.api.privacy.authorize` checks either,
and the schemes there only document. The Basic scheme reads nothing (FastAPI's `HTTPBasic` answers its own
401 on malformed credentials even with `auto_error=False`): tracking reads the write key itself, from the
header or the body.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Security
from fastapi.params import Depends
from fastapi.security import HTTPBasic, HTTPBearer
from starlette.requests import HTTPConnection

from shopkeeper.api.auth import admin_key_async
from shopkeeper.store.keys import ApiKey

ADMIN_WORDS = "An admin key (`shopkeeper keys create --kind admin`) as `Authorization: Bearer <key>`."


class WriteKeyScheme(HTTPBasic):
    """HTTP Basic with the write key as the username, as Segment's libraries send it."""

    async def __call__(self, request: HTTPConnection) -> None:
        return None  # read by shopkeeper.api.auth.key_from_header, with its precise errors


class AdminKeyScheme(HTTPBearer):
    """An admin key as a Bearer token: calling the scheme checks it, and gives the key."""

    async def __call__(self, request: HTTPConnection) -> ApiKey:  # type: ignore[override]
        return await admin_key_async(request.app.state.shopkeeper.store.keys, request)  # type: ignore[arg-type]


class DocumentedBearer(HTTPBearer):
    """A Bearer scheme that only documents: the route checks the credential itself."""

    async def __call__(self, request: HTTPConnection) -> None:
        return None


WRITE_KEY = WriteKeyScheme(
    scheme_name="writeKey",
    description="The write key as the Basic username, no password (or `writeKey` in the body).",
    auto_error=False,
)
ADMIN_KEY = AdminKeyScheme(scheme_name="adminKey", description=ADMIN_WORDS, auto_error=False)
PERSON_LINK = DocumentedBearer(
    scheme_name="personLink",
    bearerFormat="pt2.<signed token>",
    description="A person's own link token (`POST /v1/people/{id}/link`), which may name them `me`.",
    auto_error=False,
)

_ADMIN_DOCUMENTED = DocumentedBearer(scheme_name="adminKey", description=ADMIN_WORDS, auto_error=False)

WRITE_KEY_ONLY: list[Depends] = [Security(WRITE_KEY)]
# checked by shopkeeper.api.privacy.authorize, which refuses a person's link with its own precise 403
ADMIN_ONLY: list[Depends] = [Security(_ADMIN_DOCUMENTED)]
ADMIN_OR_PERSON: list[Depends] = [Security(_ADMIN_DOCUMENTED), Security(PERSON_LINK)]  # either one


# OpenAPI links: what a response lets a client call next (and schemathesis' stateful runs follow them).
# (method, path, status) -> {link name: (method, path, {parameter: runtime expression})}
_PERSON = "/v1/people/{person_ref}"
_BY_USER_ID = {"person_ref": "$request.body#/userId"}
_TO_PERSON = {
    "GetPerson": ("get", _PERSON, _BY_USER_ID),
    "ExplainPerson": ("get", f"{_PERSON}/explain", _BY_USER_ID),
    "GetConsent": ("get", f"{_PERSON}/consent", _BY_USER_ID),
    "SetConsent": ("put", f"{_PERSON}/consent", _BY_USER_ID),
    "StatePreferences": ("put", f"{_PERSON}/preferences", _BY_USER_ID),
    "ExportPerson": ("get", f"{_PERSON}/export", _BY_USER_ID),
    "ErasePerson": ("delete", _PERSON, _BY_USER_ID),
}
_ITEM = {"item_id": "$request.path.item_id"}
_EXPERIMENT = {"name": "$response.body#/name"}
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("post", "/v1/identify", "200"): _TO_PERSON,
    ("post", "/v1/track", "200"): _TO_PERSON,
    ("put", "/v1/items/{item_id}", "200"): {
        "GetItem": ("get", "/v1/items/{item_id}", _ITEM),
        "GetItemHistory": ("get", "/v1/items/{item_id}/history", _ITEM),
    },
    ("post", "/v1/items/batch", "200"): {
        "GetFirstItem": ("get", "/v1/items/{item_id}", {"item_id": "$request.body#/items/0/item_id"})
    },
    ("post", "/v1/experiments", "201"): {
        "ReportExperiment": ("get", "/v1/experiments/{name}/report", _EXPERIMENT),
        "StopExperiment": ("post", "/v1/experiments/{name}/stop", _EXPERIMENT),
    },
}


def _operation_ref(method: str, path: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def _add_links(schema: dict[str, Any]) -> None:
    for (method, path, status), links in LINKS.items():
        response = schema["paths"][path][method]["responses"][status]
        response["links"] = {
            name: {"operationRef": _operation_ref(to_method, to_path), "parameters": parameters}
            for name, (to_method, to_path, parameters) in links.items()
        }


def _name_the_choices(schema: dict[str, Any], purposes: list[str], placements: list[str]) -> None:
    """This shop's consent purposes and placements, where a request must name one of them."""
    consent = schema["paths"]["/v1/people/{person_ref}/consent"]["put"]["requestBody"]
    consent["content"]["application/json"]["schema"]["propertyNames"] = {"enum": purposes}
    components = schema["components"]["schemas"]
    for model in ("DecideRequest", "ExperimentIn"):
        components[model]["properties"]["placement"]["enum"] = placements


def finish_openapi(app: FastAPI, *, purposes: list[str], placements: list[str]) -> None:
    """Add the links and this shop's purposes and placements, and drop the 422 that FastAPI lists for
    every route with parameters: validation errors answer 400 (see the app's error handlers), so a 422
    never comes back from them. A route's own 422 (a template lint refuses) is kept."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
                if "HTTPValidationError" in str(responses.get("422", "")):
                    responses.pop("422")
        schemas = schema.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        _add_links(schema)
        _name_the_choices(schema, purposes, placements)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

"""Every route with every kind of credential, and with none: who may do what.

The table must name every route the app serves, so a new route cannot ship without a decision here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer
from tests.privacy.support import OTHER, PERSON, seed

from shopkeeper.privacy.tokens import issue_token, signing_secret
from shopkeeper.settings import Settings

PUBLIC, WRITE, ADMIN, PERSONAL = "public", "write", "admin", "admin or own link"
POLICY: dict[str, str] = {
    **{
        f"POST /v1/{name}": WRITE
        for name in ("track", "identify", "page", "screen", "group", "alias", "batch")
    },
    "GET /v1/people/{person_ref}": PERSONAL,
    "GET /v1/people/{person_ref}/explain": PERSONAL,
    "GET /v1/people/{person_ref}/consent": PERSONAL,
    "PUT /v1/people/{person_ref}/consent": PERSONAL,
    "PUT /v1/people/{person_ref}/preferences": PERSONAL,
    "POST /v1/people/{person_ref}/rejections": PERSONAL,
    "GET /v1/people/{person_ref}/export": PERSONAL,
    "DELETE /v1/people/{person_ref}": PERSONAL,
    "POST /v1/people/{person_ref}/link": ADMIN,
    "GET /v1/people/{person_ref}/events": ADMIN,
    "PUT /v1/items/{item_id}": ADMIN,
    "GET /v1/items/{item_id}": ADMIN,
    "POST /v1/items/batch": ADMIN,
    "GET /v1/items/{item_id}/history": ADMIN,
    "POST /v1/decide": ADMIN,
    "POST /v1/experiments": ADMIN,
    "GET /v1/experiments": ADMIN,
    "GET /v1/experiments/{name}/report": ADMIN,
    "POST /v1/experiments/{name}/stop": ADMIN,
    "GET /preferences": PUBLIC,
    "GET /healthz": PUBLIC,
    "GET /readyz": PUBLIC,
}
BODIES: dict[str, Any] = {
    "PUT /v1/people/{person_ref}/consent": {"analytics": True},
    "PUT /v1/people/{person_ref}/preferences": {"language": "en"},
    "POST /v1/people/{person_ref}/rejections": {"key": "favourite_categories", "value": "Mugs"},
    "PUT /v1/items/{item_id}": {"title": "Mug", "category": "Mugs", "price": 3.5},
    "POST /v1/items/batch": {"items": [{"item_id": "m1", "title": "Mug", "category": "Mugs", "price": 3.5}]},
    "POST /v1/decide": {"userId": PERSON},
    "POST /v1/experiments": {"name": "t1", "placement": "web", "variants": [{"name": "a"}, {"name": "b"}]},
    "POST /v1/batch": {"batch": [{"type": "track", "userId": "u9", "event": "x"}]},
    "POST /v1/alias": {"userId": "u9", "previousId": "u8"},
    "POST /v1/track": {"userId": "u9", "event": "x"},
    "POST /v1/identify": {"userId": "u9"},
    "POST /v1/page": {"userId": "u9"},
    "POST /v1/screen": {"userId": "u9"},
    "POST /v1/group": {"userId": "u9", "groupId": "g1"},
}
CREDENTIALS = ("none", "write", "admin", "own link", "other's link", "expired link", "tampered link")


def _allowed(policy: str, credential: str) -> bool:
    return {
        PUBLIC: True,
        WRITE: credential == "write",
        ADMIN: credential == "admin",
        PERSONAL: credential in ("admin", "own link"),
    }[policy]


def test_the_policy_names_every_route(live_server: LiveServer) -> None:
    paths = httpx.get(f"{live_server.url}/openapi.json").json()["paths"]
    served = {f"{method.upper()} {path}" for path, ops in paths.items() for method in ops}
    assert served == set(POLICY)


@pytest.mark.parametrize("route", sorted(POLICY))
def test_route_with_every_credential(live_server: LiveServer, route: str) -> None:
    seed(live_server.store)
    secret = signing_secret(live_server.store, Settings())
    own = issue_token(secret, PERSON)
    headers = {
        "none": {},
        "write": {"Authorization": f"Bearer {live_server.write_key}"},
        "admin": {"Authorization": f"Bearer {live_server.admin_key}"},
        "own link": {"Authorization": f"Bearer {own}"},
        "other's link": {"Authorization": f"Bearer {issue_token(secret, OTHER)}"},
        "expired link": {
            "Authorization": "Bearer "
            + issue_token(secret, PERSON, ttl=timedelta(seconds=1), now=datetime.now(UTC) - timedelta(days=1))
        },
        "tampered link": {"Authorization": f"Bearer {own[:-3]}xyz"},
    }
    method, path = route.split(" ", 1)
    url = live_server.url + path.replace("{person_ref}", PERSON).replace("{item_id}", "m1")
    for credential in CREDENTIALS:
        if route == "DELETE /v1/people/{person_ref}" and _allowed(POLICY[route], credential):
            continue  # erasing is checked on its own below, so that the other credentials see a person
        response = httpx.request(method, url, headers=headers[credential], json=BODIES.get(route))
        if _allowed(POLICY[route], credential):
            assert response.status_code not in (401, 403), (route, credential, response.text)
            assert response.status_code < 500, (route, credential, response.text)
        else:
            assert response.status_code in (401, 403), (route, credential, response.status_code)
            error = response.json()["error"]
            assert error["message"] and error["field"] in ("Authorization", "token", "id"), error
            if credential == "none":
                assert response.status_code == 401
    if route == "DELETE /v1/people/{person_ref}":
        assert (
            httpx.delete(url, headers=headers["own link"]).status_code == 200
        )  # a person may erase themselves
        assert httpx.get(url, headers=headers["admin"]).status_code == 404
        assert httpx.get(f"{live_server.url}/v1/people/me", headers=headers["own link"]).status_code == 404

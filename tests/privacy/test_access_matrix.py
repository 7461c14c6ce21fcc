"""Every route with every kind of credential, and with none: who may do what.

The table must name every route the app serves, so a new route cannot ship without a decision here.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer
from tests.privacy.support import OTHER, PERSON, orders, seed

from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.privacy.tokens import issue_link, signing_secret
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
    "PUT /v1/templates/{name}": ADMIN,
    "GET /v1/templates": ADMIN,
    "GET /v1/templates/{name}": ADMIN,
    "POST /v1/templates/{name}/preview": ADMIN,
    "PUT /v1/moments/rules/{name}": ADMIN,
    "GET /v1/moments/rules": ADMIN,
    "GET /v1/moments/rules/{name}": ADMIN,
    "GET /v1/people/{person_ref}/wishes": PERSONAL,
    "POST /v1/people/{person_ref}/wishes": PERSONAL,
    "DELETE /v1/people/{person_ref}/wishes/{wish_id}": PERSONAL,
    "GET /v1/outbox": ADMIN,
    "POST /v1/outbox/{outbox_id}/replay": ADMIN,
    "GET /v1/tasks": ADMIN,
    "POST /v1/tasks/{task_id}/claim": ADMIN,
    "POST /v1/tasks/{task_id}/snooze": ADMIN,
    "POST /v1/tasks/{task_id}/done": ADMIN,
    # Personas and audiences describe every customer: the admin key only, never a person's link.
    "POST /v1/personas/discover": ADMIN,
    "GET /v1/personas": ADMIN,
    "GET /v1/personas/{persona_id}": ADMIN,
    "PATCH /v1/personas/{persona_id}": ADMIN,
    "GET /v1/audiences": ADMIN,
    "PUT /v1/audiences/{name}": ADMIN,
    "GET /v1/audiences/{name}": ADMIN,
    "DELETE /v1/audiences/{name}": ADMIN,
    "GET /v1/audiences/{name}/reach": ADMIN,
    "POST /v1/audiences/{name}/compare": ADMIN,
    # The token of an email's unsubscribe link is in the URL, not a header: the page is public, and
    # tests/api/test_moments_http.py checks what a good, a bad and no token do.
    "GET /unsubscribe": PUBLIC,
    "POST /unsubscribe": PUBLIC,
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
    "PUT /v1/templates/{name}": {
        "channel": "web",
        "subject": "Hello",
        "html": "<p>Hi {{ first_name }}</p>",
        "fields": {"first_name": {"slot": "first_name", "from": "firstName", "fallback": "there"}},
    },
    "POST /v1/templates/{name}/preview": {"people": [PERSON], "hostile": True},
    "PUT /v1/moments/rules/{name}": {"trigger": "back_in_stock", "channels": ["staff"]},
    "POST /v1/people/{person_ref}/wishes": {"item_id": "m1", "source": "stated"},
    "POST /v1/tasks/{task_id}/claim": {"assignee": "mia"},
    "POST /v1/tasks/{task_id}/snooze": {"until": "2099-01-01T00:00:00Z"},
    "POST /v1/tasks/{task_id}/done": {"outcome": "contacted"},
    "PATCH /v1/personas/{persona_id}": {"name": "Regulars"},
    "PUT /v1/audiences/{name}": {"where": {"purchased": "Mugs"}},
    "POST /v1/batch": {"batch": [{"type": "track", "userId": "u9", "event": "x"}]},
    "POST /v1/alias": {"userId": "u9", "previousId": "u8"},
    "POST /v1/track": {"userId": "u9", "event": "x"},
    "POST /v1/identify": {"userId": "u9"},
    "POST /v1/page": {"userId": "u9"},
    "POST /v1/screen": {"userId": "u9"},
    "POST /v1/group": {"userId": "u9", "groupId": "g1"},
}
CREDENTIALS = (
    "none",
    "write",
    "admin",
    "admin as Basic",
    "own link",
    "other's link",
    "expired link",
    "tampered link",
)


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


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
    own = issue_link(live_server.store, secret, PERSON)
    expired = issue_link(
        live_server.store, secret, PERSON, ttl=timedelta(seconds=1), now=datetime.now(UTC) - timedelta(days=1)
    )
    headers = {
        "none": {},
        "write": {"Authorization": f"Bearer {live_server.write_key}"},
        "admin": {"Authorization": f"Bearer {live_server.admin_key}"},
        "admin as Basic": basic(live_server.admin_key),  # admin keys are Bearer only
        "own link": {"Authorization": f"Bearer {own}"},
        "other's link": {"Authorization": f"Bearer {issue_link(live_server.store, secret, OTHER)}"},
        "expired link": {"Authorization": f"Bearer {expired}"},
        "tampered link": {"Authorization": f"Bearer {own[:-3]}xyz"},
    }
    method, path = route.split(" ", 1)
    url = live_server.url + path.replace("{person_ref}", PERSON).replace("{item_id}", "m1")
    for name, value in (
        ("{name}", "r1"),
        ("{wish_id}", "1"),
        ("{outbox_id}", "1"),
        ("{task_id}", "1"),
        ("{persona_id}", "p1"),
    ):
        url = url.replace(name, value)
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
        after = httpx.get(f"{live_server.url}/v1/people/me", headers=headers["own link"])
        assert after.status_code == 401 and "not valid" in after.json()["error"]["message"]


# ---- the attacker: the public write key, and a link of their own -----------------------------------------

VICTIM = "victim-c0ffee"


def _attacker(server: LiveServer) -> tuple[str, dict[str, str]]:
    """The victim and the attacker each have a userId and orders; the attacker has their own link."""
    ingest = httpx.post(
        f"{server.url}/v1/batch",
        auth=(server.write_key, ""),
        json={"batch": [*orders(VICTIM, 3), *orders("mallory", 1, category="Bags")]},
    )
    assert ingest.status_code == 200, ingest.text
    link = httpx.post(
        f"{server.url}/v1/people/mallory/link", headers={"Authorization": f"Bearer {server.admin_key}"}
    )
    assert link.status_code == 200, link.text
    return link.json()["token"], {"Authorization": f"Bearer {server.admin_key}"}


@pytest.mark.parametrize(
    "merge",
    [
        {"type": "alias", "previousId": "mallory", "userId": VICTIM},  # the issue's attack
        {"type": "alias", "previousId": VICTIM, "userId": "mallory"},
        {"type": "alias", "previousId": VICTIM, "userId": "mallory-2"},  # a second userId on the victim
        {"type": "identify", "userId": "mallory", "anonymousId": "anon-of-victim"},
    ],
    ids=["mine-into-victim", "victim-into-mine", "new-user-id-on-victim", "victims-anonymous-id"],
)
def test_a_write_key_and_my_own_link_never_reach_another_customer(
    live_server: LiveServer, merge: dict[str, Any]
) -> None:
    """Fails on the old main: the alias merged the two known people, and the link, naming "mallory",
    then exported or erased the victim."""
    token, admin = _attacker(live_server)
    url = live_server.url
    if merge["type"] == "identify":  # the victim's browser id is known to them already
        seen = {"type": "identify", "userId": VICTIM, "anonymousId": "anon-of-victim", "messageId": "v-id"}
        assert (
            httpx.post(f"{url}/v1/identify", auth=(live_server.write_key, ""), json=seen).status_code == 200
        )
    sent = httpx.post(f"{url}/v1/{merge['type']}", auth=(live_server.write_key, ""), json=merge)
    assert sent.status_code == 200, sent.text  # accepted and stored, as Segment would; the merge is refused
    mine = {"Authorization": f"Bearer {token}"}
    exported = httpx.get(f"{url}/v1/people/me/export", headers=mine)
    assert exported.status_code == 200, exported.text
    assert f"{VICTIM}-order-" not in exported.text and '"v-id"' not in exported.text  # the victim's events
    if merge["userId"] == "mallory-2":  # a link the shop issues for the new userId must not be the victim's
        other = httpx.post(f"{url}/v1/people/mallory-2/link", headers=admin).json()["token"]
        export2 = httpx.get(f"{url}/v1/people/me/export", headers={"Authorization": f"Bearer {other}"})
        assert export2.status_code == 200 and f"{VICTIM}-order-" not in export2.text
    refused = live_server.store.identities.merges()
    assert [m.outcome for m in refused] == ["refused"], "the refusal is recorded in the identity graph"
    assert httpx.delete(f"{url}/v1/people/me", headers=mine).status_code == 200
    victim = httpx.get(f"{url}/v1/people/{VICTIM}", headers=admin)
    assert victim.status_code == 200, "the victim was erased through the attacker's link"
    assert len(httpx.get(f"{url}/v1/people/{VICTIM}/events", headers=admin).json()["events"]) >= 3


def test_a_link_dies_with_its_person_even_when_the_same_user_id_comes_back(live_server: LiveServer) -> None:
    """Fails on the old main: the link named the userId, so it opened whoever held that id next."""
    token, admin = _attacker(live_server)
    mine = {"Authorization": f"Bearer {token}"}
    assert httpx.delete(f"{live_server.url}/v1/people/mallory", headers=admin).status_code == 200
    again = httpx.post(
        f"{live_server.url}/v1/track",
        auth=(live_server.write_key, ""),
        json={"userId": "mallory", "event": "x"},
    )
    assert again.status_code == 200
    for method, path in (
        ("GET", "/v1/people/me"),
        ("GET", "/v1/people/me/export"),
        ("DELETE", "/v1/people/me"),
    ):
        response = httpx.request(method, live_server.url + path, headers=mine)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"]["message"].startswith("this link is not valid")
    assert httpx.get(f"{live_server.url}/v1/people/mallory", headers=admin).status_code == 200


def test_a_link_for_someone_merged_away_is_refused(live_server: LiveServer) -> None:
    """The shop's own code may merge two known people (an explicit alias); both links die with it."""
    token, _ = _attacker(live_server)
    Ingestor(live_server.store, record_consent=consent_recorder()).ingest(
        [{"type": "alias", "previousId": "mallory", "userId": VICTIM}]
    )
    response = httpx.get(
        f"{live_server.url}/v1/people/me/export", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401 and "not valid" in response.json()["error"]["message"]

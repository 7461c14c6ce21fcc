"""Every dashboard route with every kind of credential: none, the API's keys and a person's link (none of
which opens the dashboard), and a session of each role, with and without the CSRF token.

The table must name every route under /dashboard, so a new page cannot ship without a decision here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.routes import routes_of
from tests.web.support import LiveDashboard, dashboard_over

from shopkeeper.privacy.tokens import issue_link, signing_secret
from shopkeeper.settings import Settings

pytestmark = pytest.mark.slow

NONE, STAFF, MARKETER, OWNER = "none", "staff", "marketer", "owner"
RANK = {STAFF: 0, MARKETER: 1, OWNER: 2}
POLICY: dict[str, str] = {
    "GET /dashboard/login": NONE,
    "POST /dashboard/login": NONE,
    "GET /dashboard/static/{name}": NONE,
    "POST /dashboard/logout": STAFF,
    "GET /dashboard": STAFF,  # staff are sent on to their inbox
    "GET /dashboard/inbox": STAFF,
    "POST /dashboard/inbox/{task_id}/claim": STAFF,
    "POST /dashboard/inbox/{task_id}/snooze": STAFF,
    "POST /dashboard/inbox/{task_id}/done": STAFF,
    # Staff open only the people their tasks name (17850 has the demo task 1; see test_people_pages.py)
    "GET /dashboard/people": STAFF,
    "GET /dashboard/people/{ref}": STAFF,
    "GET /dashboard/people/{ref}/export": MARKETER,
    "POST /dashboard/people/{ref}/export": MARKETER,
    "GET /dashboard/people/{ref}/erase": MARKETER,
    "POST /dashboard/people/{ref}/erase": MARKETER,  # without the typed id: a 400, nobody erased
    "GET /dashboard/personas": MARKETER,
    "POST /dashboard/personas/discover": MARKETER,
    "POST /dashboard/personas/{persona_id}/rename": MARKETER,
    "GET /dashboard/audiences": MARKETER,
    "GET /dashboard/audiences/new": MARKETER,
    "POST /dashboard/audiences": MARKETER,
    "POST /dashboard/audiences/preview": MARKETER,
    "GET /dashboard/audiences/{name}": MARKETER,
    "POST /dashboard/audiences/{name}/compare": MARKETER,
    "GET /dashboard/audiences/{name}/delete": MARKETER,
    "POST /dashboard/audiences/{name}/delete": MARKETER,
    "GET /dashboard/experiments": MARKETER,
    "POST /dashboard/experiments": MARKETER,
    "GET /dashboard/experiments/{name}": MARKETER,
    "GET /dashboard/experiments/{name}/stop": MARKETER,
    "POST /dashboard/experiments/{name}/stop": MARKETER,
    "GET /dashboard/moments": MARKETER,
    "GET /dashboard/moments/{rule}": MARKETER,
    "GET /dashboard/content": MARKETER,
    "GET /dashboard/content/new": MARKETER,
    "GET /dashboard/content/{name}": MARKETER,
    "POST /dashboard/content/{name}": MARKETER,
    "POST /dashboard/content/{name}/lint": MARKETER,
    "POST /dashboard/content/{name}/preview": MARKETER,
    "GET /dashboard/recommendations": MARKETER,
    "GET /dashboard/users": OWNER,
    "POST /dashboard/users": OWNER,
    "POST /dashboard/users/{user_id}": OWNER,
    "POST /dashboard/keys": OWNER,
    "POST /dashboard/keys/{key_id}/revoke": OWNER,
    "GET /dashboard/audit": OWNER,
}
# What fills a path's parameters: things the demo shop has, or harmless unknowns.
PATH_VALUES = {
    "{user_id}": "999",
    "{key_id}": "999",
    "{ref}": "17850",
    "{name}": "picked_for_you",
    "{persona_id}": "p1",
    "{task_id}": "999",
    "{rule}": "back_in_stock",
}


@pytest.fixture(scope="module")
def live(demo_shop_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDashboard]:
    with dashboard_over(demo_shop_file, tmp_path_factory.mktemp("access")) as served:
        yield served


def _url(live: LiveDashboard, path: str) -> str:
    if path == "/dashboard/static/{name}":
        return f"{live.url}/dashboard/static/app.css"
    for name, value in PATH_VALUES.items():
        path = path.replace(name, value)
    return live.url + path


def test_the_policy_names_every_dashboard_route(live: LiveDashboard) -> None:
    from shopkeeper.api.app import create_app  # noqa: PLC0415

    app = create_app(Settings(database_url=str(live.store.engine.url)), store=live.store)
    served = {
        route for route in routes_of(list(app.routes)) if route.split(" ", 1)[1].startswith("/dashboard")
    }
    assert served == set(POLICY)


@pytest.mark.parametrize("route", sorted(POLICY))
def test_dashboard_route_with_every_credential(live: LiveDashboard, route: str) -> None:
    method, path = route.split(" ", 1)
    url = _url(live, path)
    least = POLICY[route]
    write, _ = live.store.keys.create("write", name="attacker")
    admin, _ = live.store.keys.create("admin", name="attacker")
    link = issue_link(live.store, signing_secret(live.store, Settings()), "17850")
    # A key or a person's link is not a session: each is refused like nobody at all.
    for header in (
        {},
        {"Authorization": f"Bearer {write}"},
        {"Authorization": f"Bearer {admin}"},
        {"Authorization": f"Bearer {link}"},
    ):
        answer = httpx.request(method, url, headers={**header, "Origin": live.url}, data={"csrf": "x"})
        if least == NONE:
            assert answer.status_code < 500, (route, answer.text)
        elif method == "GET":
            assert answer.status_code == 303 and answer.headers["location"].startswith("/dashboard/login"), (
                route
            )
        else:
            assert answer.status_code in (401, 403), (route, header, answer.status_code)
    if least == NONE:
        return
    for role in (STAFF, MARKETER, OWNER):
        client = live.client(role)
        form = {"csrf": client.csrf}  # type: ignore[attr-defined]
        answer = client.request(method, url, data=form if method == "POST" else None)
        if RANK[role] < RANK[least]:
            assert answer.status_code == 403, (route, role, answer.status_code)
            continue
        assert answer.status_code not in (401, 403) and answer.status_code < 500, (
            route,
            role,
            answer.text[:500],
        )
        if method == "POST":  # the same change without its token, or from another site, is refused
            fresh = live.client(role)
            assert fresh.request(method, url, data={}).status_code == 403, (route, role)
            other = fresh.request(
                method, url, data={"csrf": fresh.csrf}, headers={"Origin": "https://evil.example"}
            )  # type: ignore[attr-defined]
            assert other.status_code == 403, (route, role)

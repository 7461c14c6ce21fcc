"""Traffic for the experiments pages' tests, made the way a shop makes it: decisions through `POST /v1/decide`
(an admin key) and orders through `POST /v1/batch` (a write key), for the demo shop's own customers.

The orders are SIMULATED (the demo's real orders all lie before today): every `buy_every`-th person decided
for buys one item right after, for 10.0."""

from __future__ import annotations

import httpx
from tests.web.support import LiveDashboard


def customers(dashboard: LiveDashboard, n: int) -> list[str]:
    """The first `n` customer ids (userIds) of the demo shop."""
    ids = dashboard.store.identities.external_ids(dashboard.store.identities.person_ids())
    return [value for kind, value in ids if kind == "user_id"][:n]


def admin_client(dashboard: LiveDashboard) -> httpx.Client:
    raw, _ = dashboard.store.keys.create("admin", name="tests")
    client = httpx.Client(base_url=dashboard.url, headers={"Authorization": f"Bearer {raw}"}, timeout=60)
    dashboard.clients.append(client)  # closed with the fixture
    return client


def make_traffic(
    dashboard: LiveDashboard,
    api: httpx.Client,
    users: list[str],
    *,
    placement: str = "web",
    buy_every: int = 0,
) -> None:
    """A decision for each of `users` on `placement`; with `buy_every`, some of them then buy."""
    for user in users:
        answer = api.post("/v1/decide", json={"userId": user, "placement": placement})
        assert answer.status_code == 200, answer.text
    if not buy_every:
        return
    write, _ = dashboard.store.keys.create("write", name="tests")
    batch = [
        {
            "type": "track",
            "userId": user,
            "event": "Order Completed",
            "properties": {"order_id": f"sim-{user}", "revenue": 10.0, "products": [{"product_id": "22632"}]},
        }
        for user in users[::buy_every]
    ]
    answer = api.post("/v1/batch", auth=(write, ""), json={"batch": batch})
    assert answer.status_code == 200, answer.text

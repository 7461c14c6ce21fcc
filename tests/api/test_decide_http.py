"""POST /v1/decide over real HTTP: the contract, the admin key, and precise errors."""

from __future__ import annotations

import httpx
from tests.conftest import LiveServer

from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.recommend import train_default
from shopkeeper.training import train


def test_decide_over_http(live_server: LiveServer) -> None:
    store = live_server.store
    Ingestor(store, record_consent=consent_recorder()).ingest(
        [
            {
                "type": "track",
                "userId": u,
                "event": "Order Completed",
                "messageId": f"o-{u}-{n}",
                "timestamp": f"2011-05-0{n}T10:00:00Z",
                "properties": {"order_id": f"{u}{n}", "products": [{"product_id": p} for p in items]},
            }
            for n, (u, items) in enumerate([("ann", ["a", "b"]), ("bob", ["a", "c"]), ("cy", ["b", "c"])], 1)
        ]
    )
    train(store, train_default)
    admin = {"Authorization": f"Bearer {live_server.admin_key}"}
    response = httpx.post(
        f"{live_server.url}/v1/decide",
        headers=admin,
        json={"userId": "ann", "placement": "web", "n": 2, "context": {"page": "home"}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"decision_id", "placement", "items", "reasons", "model_version", "personalized"}
    assert body["model_version"] == 1 and body["personalized"] is True
    assert len(body["items"]) == 2
    first = body["items"][0]
    assert set(first) == {"item_id", "score", "title", "reasons"}
    assert all({"text", "provenance"} == set(r) for r in first["reasons"])

    basic_write = httpx.post(
        f"{live_server.url}/v1/decide", auth=(live_server.write_key, ""), json={"userId": "a"}
    )
    assert basic_write.status_code == 403  # write keys only ingest
    assert httpx.post(f"{live_server.url}/v1/decide", json={"userId": "ann"}).status_code == 401
    bearer_write = {"Authorization": f"Bearer {live_server.write_key}"}
    assert (
        httpx.post(f"{live_server.url}/v1/decide", headers=bearer_write, json={"userId": "ann"}).status_code
        == 403
    )
    for payload, field in [
        ({"userId": "ann", "placement": "billboard"}, "placement"),
        ({"userId": "ann", "n": 0}, "n"),
        ({"userId": "ann", "n": "3"}, "n"),
        ({"placement": "web"}, "userId"),
        ({"userId": "ann", "colour": "red"}, "colour"),
    ]:
        bad = httpx.post(f"{live_server.url}/v1/decide", headers=admin, json=payload)
        assert bad.status_code == 400, (payload, bad.text)
        assert bad.json()["error"]["field"] == field, (payload, bad.text)
    not_json = httpx.post(f"{live_server.url}/v1/decide", headers=admin, content=b"{nope")
    assert not_json.status_code == 400

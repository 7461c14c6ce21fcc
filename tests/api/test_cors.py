"""CORS on the tracking endpoints, over real HTTP: preflights, browser posts, and per-key origins."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from shopkeeper.api.tracking import TRACKING_PATHS

if TYPE_CHECKING:
    from conftest import LiveServer

ALLOWED = "https://shop.example"  # the origin live_server's write key allows
UNKNOWN = "https://elsewhere.example"


def _preflight(server: LiveServer, path: str, origin: str | None) -> httpx.Response:
    headers = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization",
    }
    if origin is not None:
        headers["Origin"] = origin
    return httpx.options(f"{server.url}{path}", headers=headers)


def _browser_post(server: LiveServer, path: str, origin: str, body: dict[str, Any]) -> httpx.Response:
    """What analytics.js sends: text/plain (a "simple" request, no preflight), writeKey in the body."""
    return httpx.post(
        f"{server.url}{path}",
        content=orjson.dumps(body),
        headers={"Origin": origin, "Content-Type": "text/plain"},
    )


def _track(write_key: str, message_id: str) -> dict[str, Any]:
    return {
        "writeKey": write_key,
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": "browser-anon-1",
        "messageId": message_id,
        "properties": {"sku": "85123A"},
    }


def test_preflight_from_an_allowed_origin_is_allowed_on_every_tracking_path(live_server: LiveServer) -> None:
    for path in TRACKING_PATHS:
        response = _preflight(live_server, path, ALLOWED)
        assert response.status_code == 204, (path, response.text)
        assert response.headers.get("access-control-allow-origin") == ALLOWED, path
        methods = {m.strip().upper() for m in response.headers["access-control-allow-methods"].split(",")}
        assert "POST" in methods, path
        allowed_headers = {
            h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
        }
        assert {"content-type", "authorization", "content-encoding"} <= allowed_headers, path
        assert "origin" in response.headers.get("vary", "").lower(), path
        assert response.content == b"", path


def test_preflight_from_an_unknown_origin_is_refused(live_server: LiveServer) -> None:
    # A look-alike that merely starts with an allowed origin must not pass either.
    for origin in (UNKNOWN, "https://shop.example.evil.test", "http://shop.example"):
        response = _preflight(live_server, "/v1/track", origin)
        assert response.status_code == 403, (origin, response.text)
        assert "access-control-allow-origin" not in response.headers, origin
        assert response.json()["error"]["code"] == "origin_not_allowed", origin


def test_preflight_without_an_origin_gets_no_cors_headers(live_server: LiveServer) -> None:
    response = _preflight(live_server, "/v1/t", None)
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


def test_browser_post_from_an_allowed_origin_is_stored(live_server: LiveServer) -> None:
    message_id = f"cors-{uuid.uuid4()}"
    response = _browser_post(live_server, "/v1/t", ALLOWED, _track(live_server.write_key, message_id))
    assert response.status_code == 200, response.text
    assert response.headers.get("access-control-allow-origin") == ALLOWED
    assert response.json() == {"success": True, "received": 1, "stored": 1, "duplicates": 0}
    assert live_server.store.events.has_message(message_id)


def test_browser_batch_to_the_short_path_is_stored(live_server: LiveServer) -> None:
    ids = [f"cors-batch-{uuid.uuid4()}" for _ in range(3)]
    body = {
        "writeKey": live_server.write_key,
        "batch": [{k: v for k, v in _track("", i).items() if k != "writeKey"} for i in ids],
    }
    response = _browser_post(live_server, "/v1/b", ALLOWED, body)
    assert response.status_code == 200, response.text
    assert response.headers.get("access-control-allow-origin") == ALLOWED
    assert response.json()["stored"] == 3
    assert live_server.store.events.stored_message_ids(ids) == set(ids)


def test_server_side_post_without_origin_gets_no_cors_headers(live_server: LiveServer) -> None:
    response = httpx.post(
        f"{live_server.url}/v1/track",
        auth=(live_server.write_key, ""),
        json={"event": "Order Completed", "userId": "u-cors", "messageId": f"cors-{uuid.uuid4()}"},
    )
    assert response.status_code == 200, response.text
    assert "access-control-allow-origin" not in response.headers


def test_browser_post_from_an_origin_no_key_allows_is_refused(live_server: LiveServer) -> None:
    message_id = f"cors-{uuid.uuid4()}"
    response = _browser_post(live_server, "/v1/t", UNKNOWN, _track(live_server.write_key, message_id))
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert response.json()["error"]["field"] == "Origin"
    assert "access-control-allow-origin" not in response.headers
    assert not live_server.store.events.has_message(message_id)


def test_browser_post_from_an_origin_another_key_allows_is_refused(live_server: LiveServer) -> None:
    """Origins are per key: a second shop's origin may not use the first shop's write key."""
    other_origin = "https://other-shop.example"
    other_key, _ = live_server.store.keys.create("write", name="other shop", origins=[other_origin])
    # The other origin passes preflight (some key allows it) ...
    assert _preflight(live_server, "/v1/t", other_origin).status_code == 204
    # ... and its own key works from it ...
    own_id = f"cors-{uuid.uuid4()}"
    own = _browser_post(live_server, "/v1/t", other_origin, _track(other_key, own_id))
    assert own.status_code == 200, own.text
    # ... but the first shop's key, sent from there, is refused and nothing is stored.
    message_id = f"cors-{uuid.uuid4()}"
    response = _browser_post(live_server, "/v1/t", other_origin, _track(live_server.write_key, message_id))
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert not live_server.store.events.has_message(message_id)
    assert live_server.store.events.has_message(own_id)


def test_browser_post_with_basic_auth_from_a_disallowed_origin_is_refused(live_server: LiveServer) -> None:
    """The origin check applies however the key is sent, not only to writeKey in the body."""
    message_id = f"cors-{uuid.uuid4()}"
    body = {k: v for k, v in _track("", message_id).items() if k != "writeKey"}
    response = httpx.post(
        f"{live_server.url}/v1/track",
        auth=(live_server.write_key, ""),
        json=body,
        headers={"Origin": UNKNOWN},
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert not live_server.store.events.has_message(message_id)


def test_a_key_with_origin_star_allows_any_origin(live_server: LiveServer) -> None:
    anywhere = "https://any-shop-at-all.example"
    assert _preflight(live_server, "/v1/t", anywhere).status_code == 403
    star_key, record = live_server.store.keys.create("write", name="any origin", origins=["*"])
    assert record.allowed_origins == ("*",)

    preflight = _preflight(live_server, "/v1/t", anywhere)
    assert preflight.status_code == 204, preflight.text
    assert preflight.headers.get("access-control-allow-origin") == anywhere

    for origin in (anywhere, "http://localhost:3000", ALLOWED):
        message_id = f"cors-{uuid.uuid4()}"
        response = _browser_post(live_server, "/v1/t", origin, _track(star_key, message_id))
        assert response.status_code == 200, (origin, response.text)
        # The origin is echoed, never a literal "*" (browsers refuse "*" with credentials).
        assert response.headers.get("access-control-allow-origin") == origin
        assert live_server.store.events.has_message(message_id), origin

    # The restricted key stays restricted even though the star key now passes every preflight.
    message_id = f"cors-{uuid.uuid4()}"
    refused = _browser_post(live_server, "/v1/t", anywhere, _track(live_server.write_key, message_id))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "origin_not_allowed"
    assert not live_server.store.events.has_message(message_id)

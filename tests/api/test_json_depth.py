"""Deeply nested JSON on every JSON route: up to 64 levels is read, deeper is a 400 naming the limit, and
nothing answers 5xx (issue 12, item 11: 254 to 1022 levels answered 500, from orjson's limits)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.conftest import serving

from shopkeeper.api.body import MAX_DEPTH
from shopkeeper.store import Store

DEPTHS = (63, 64, 65, 254, 600, 1022, 5000)
HOLE = "@@nested@@"
TRACKING = ("/v1/track", "/v1/identify", "/v1/page", "/v1/screen", "/v1/group", "/v1/alias", "/v1/batch")

# Each route's body, with HOLE where a free-form value may go; the nesting is measured on the whole body.
ROUTES: dict[str, tuple[str, str, Any]] = {
    "track": ("POST", "/v1/track", {"userId": "u", "event": "E", "properties": {"x": HOLE}}),
    "identify": ("POST", "/v1/identify", {"userId": "u", "traits": {"x": HOLE}}),
    "page": ("POST", "/v1/page", {"userId": "u", "properties": {"x": HOLE}}),
    "screen": ("POST", "/v1/screen", {"userId": "u", "properties": {"x": HOLE}}),
    "group": ("POST", "/v1/group", {"userId": "u", "groupId": "g", "traits": {"x": HOLE}}),
    "alias": ("POST", "/v1/alias", {"userId": "u", "previousId": "a", "context": {"x": HOLE}}),
    "batch": (
        "POST",
        "/v1/batch",
        {"batch": [{"type": "track", "userId": "u", "event": "E", "properties": HOLE}]},
    ),
    "decide": ("POST", "/v1/decide", {"userId": "u", "context": {"x": HOLE}}),
    "item": ("PUT", "/v1/items/sku-1", {"title": "Mug", "price": 3.0, "attributes": {"x": HOLE}}),
    "items": (
        "POST",
        "/v1/items/batch",
        {"items": [{"item_id": "sku-2", "title": "Mug", "attributes": HOLE}]},
    ),
    "consent": ("PUT", "/v1/people/u/consent", {"analytics": HOLE}),
    "preferences": ("PUT", "/v1/people/u/preferences", {"sizes": {"x": HOLE}}),
    "rejection": ("POST", "/v1/people/u/rejections", {"key": "country", "value": HOLE}),
    "experiment": (
        "POST",
        "/v1/experiments",
        {"name": "deep", "placement": "web", "variants": [{"name": "a", "options": HOLE}, {"name": "b"}]},
    ),
}


def depth_of(value: Any) -> int:
    """How deep arrays and objects nest in `value` (a scalar is 0, `[]` is 1); without recursion."""
    deepest = 0
    waiting = [(value, 1)]
    while waiting:
        node, level = waiting.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, level)
            waiting.extend((child, level + 1) for child in children)
    return deepest


def nested_body(template: Any, depth: int) -> bytes:
    """`template` with HOLE filled by nested arrays, so that the whole body nests exactly `depth` deep."""
    around = orjson.dumps(template)
    outer = depth_of(orjson.loads(around.replace(f'"{HOLE}"'.encode(), b"[]"))) - 1  # levels above HOLE
    inner = depth - outer
    assert inner >= 1
    return around.replace(f'"{HOLE}"'.encode(), b"[" * inner + b"]" * inner)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str, str, bytes], httpx.Response]]:
    path: Path = tmp_path_factory.mktemp("depth") / "shop.db"
    store = Store.open(f"sqlite:///{path}")
    write_key, _ = store.keys.create("write", name="tests")
    admin_key, _ = store.keys.create("admin", name="tests")
    with serving(store, log_level="critical") as url, httpx.Client(base_url=url, timeout=30) as client:
        client.post("/v1/identify", auth=(write_key, ""), json={"userId": "u"}).raise_for_status()

        def call(method: str, path: str, body: bytes) -> httpx.Response:
            headers = {"Content-Type": "application/json"}
            if path.startswith(TRACKING):
                return client.request(method, path, content=body, headers=headers, auth=(write_key, ""))
            headers["Authorization"] = f"Bearer {admin_key}"
            return client.request(method, path, content=body, headers=headers)

        yield call
    store.close()


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("route", ROUTES)
def test_nesting_is_capped_with_a_400_that_names_the_limit(
    shop: Callable[[str, str, bytes], httpx.Response], route: str, depth: int
) -> None:
    method, path, template = ROUTES[route]
    body = nested_body(template, depth)
    if depth <= 1000:  # orjson reads up to 1024 levels
        assert depth_of(orjson.loads(body)) == depth
    response = shop(method, path, body)
    assert response.status_code < 500, response.text
    error = response.json().get("error") if response.status_code >= 400 else None
    if depth > MAX_DEPTH:
        assert response.status_code == 400, response.text
        assert error["code"] == "invalid_json"
        assert str(MAX_DEPTH) in error["message"]
    elif error is not None:  # a nested value a route does not take is refused, but not for its depth
        assert str(MAX_DEPTH) not in error["message"], error

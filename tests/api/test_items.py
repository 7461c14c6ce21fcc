"""The catalog over real HTTP: upserts and their counts, variants and stock, the price/stock history, errors.

Every test runs on SQLite and on PostgreSQL (conftest's `live_server`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest

if TYPE_CHECKING:
    from conftest import LiveServer

KB = 1024
MB = 1024 * KB


def _admin(server: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_key}"}


def put(server: LiveServer, item_id: str, body: Any, *, raw: bytes | None = None) -> httpx.Response:
    content = raw if raw is not None else orjson.dumps(body)
    headers = {**_admin(server), "Content-Type": "application/json"}
    return httpx.put(f"{server.url}/v1/items/{item_id}", content=content, headers=headers, timeout=30)


def batch(server: LiveServer, body: Any) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/items/batch", content=orjson.dumps(body), headers=_admin(server), timeout=60
    )


def get(server: LiveServer, path: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers=_admin(server), timeout=30)


def history(server: LiveServer, item_id: str) -> list[tuple[str, str, float | None, float | None]]:
    response = get(server, f"/v1/items/{item_id}/history")
    assert response.status_code == 200, response.text
    return [(c["variant_id"], c["field"], c["old_value"], c["new_value"]) for c in response.json()["changes"]]


def counts(response: httpx.Response) -> tuple[int, int, int, int]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"created", "updated", "unchanged", "changes"}
    return body["created"], body["updated"], body["unchanged"], body["changes"]


def assert_error(response: httpx.Response, status: int, code: str, field: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field), error
    assert error["message"]


TEE: dict[str, Any] = {
    "title": "Organic cotton T-shirt",
    "category": ["Clothes", "T-shirts"],
    "price": 20.0,
    "currency": "GBP",
    "attributes": {"brand": "Acme", "material": "cotton", "tags": ["organic", "summer"]},
    "created_at": "2011-03-01T09:30:00Z",
    "variants": [
        {"variant_id": "tee-S", "attributes": {"size": "S", "colour": "grey"}, "stock": 3},
        {"variant_id": "tee-M", "attributes": {"size": "M", "colour": "grey"}, "stock": 0, "price": 22.5},
    ],
}


# ---- upserts --------------------------------------------------------------------------------------


def test_put_creates_then_is_unchanged_then_updates(live_server: LiveServer) -> None:
    created, updated, unchanged, changes = counts(put(live_server, "tee", TEE))
    # The item's price, S's stock, M's price and M's stock: four history rows for a new item.
    assert (created, updated, unchanged, changes) == (1, 0, 0, 4)
    assert counts(put(live_server, "tee", TEE)) == (0, 0, 1, 0)
    assert counts(put(live_server, "tee", {**TEE, "item_id": "tee"})) == (0, 0, 1, 0)
    assert counts(put(live_server, "tee", {**TEE, "title": "Cotton T-shirt"})) == (0, 1, 0, 0)
    assert counts(put(live_server, "tee", {**TEE, "title": "Cotton T-shirt", "price": 18.0})) == (0, 1, 0, 1)


def test_get_returns_the_item_with_its_variants_and_stock(live_server: LiveServer) -> None:
    put(live_server, "tee", TEE)
    response = get(live_server, "/v1/items/tee")
    assert response.status_code == 200, response.text
    item = response.json()
    assert item["item_id"] == "tee"
    assert item["title"] == "Organic cotton T-shirt"
    assert item["category"] == "Clothes > T-shirts"
    assert (item["price"], item["currency"]) == (20.0, "GBP")
    assert item["attributes"] == {"brand": "Acme", "material": "cotton", "tags": ["organic", "summer"]}
    assert item["created_at"].startswith("2011-03-01T09:30:00")
    assert item["variants"] == [
        {"variant_id": "tee-M", "attributes": {"size": "M", "colour": "grey"}, "price": 22.5, "stock": 0},
        {"variant_id": "tee-S", "attributes": {"size": "S", "colour": "grey"}, "price": None, "stock": 3},
    ]


def test_unicode_ids_and_titles_round_trip(live_server: LiveServer) -> None:
    body = {"title": "Crème brûlée dish ☕ 陶器", "category": "Küche > Förmchen", "price": 4.5}
    assert counts(put(live_server, "café-7", body))[0] == 1
    item = get(live_server, "/v1/items/café-7").json()
    assert (item["item_id"], item["title"], item["category"]) == (
        "café-7",
        "Crème brûlée dish ☕ 陶器",
        "Küche > Förmchen",
    )


def test_put_replaces_the_variants_whole(live_server: LiveServer) -> None:
    put(live_server, "tee", TEE)
    new_variants = [
        {"variant_id": "tee-M", "attributes": {"size": "M", "colour": "grey"}, "stock": 0, "price": 22.5},
        {"variant_id": "tee-L", "attributes": {"size": "L", "colour": "grey"}, "stock": 2},
    ]
    assert counts(put(live_server, "tee", {**TEE, "variants": new_variants})) == (0, 1, 0, 2)
    variants = get(live_server, "/v1/items/tee").json()["variants"]
    assert [v["variant_id"] for v in variants] == ["tee-L", "tee-M"]
    # S is gone, so its 3 in stock went with it; L arrived with 2.
    assert history(live_server, "tee")[-2:] == [("tee-L", "stock", None, 2.0), ("tee-S", "stock", 3.0, None)]
    assert counts(put(live_server, "tee", {**TEE, "variants": []})) == (0, 1, 0, 1)
    assert get(live_server, "/v1/items/tee").json()["variants"] == []


def test_history_keeps_price_and_stock_changes_oldest_first(live_server: LiveServer) -> None:
    put(live_server, "tee", TEE)
    assert history(live_server, "tee") == [
        ("", "price", None, 20.0),
        ("tee-S", "stock", None, 3.0),
        ("tee-M", "price", None, 22.5),
        ("tee-M", "stock", None, 0.0),
    ]
    # A price drop on the item, and M comes back in stock: 0 -> 5.
    restocked = [TEE["variants"][0], {**TEE["variants"][1], "stock": 5}]
    assert counts(put(live_server, "tee", {**TEE, "price": 15.0, "variants": restocked})) == (0, 1, 0, 2)
    # An update that moves neither price nor stock adds nothing.
    put(live_server, "tee", {**TEE, "title": "Tee", "price": 15.0, "variants": restocked})
    # S sells out.
    sold_out = [{**TEE["variants"][0], "stock": 0}, restocked[1]]
    put(live_server, "tee", {**TEE, "title": "Tee", "price": 15.0, "variants": sold_out})
    assert history(live_server, "tee")[4:] == [
        ("", "price", 20.0, 15.0),
        ("tee-M", "stock", 0.0, 5.0),
        ("tee-S", "stock", 3.0, 0.0),
    ]
    response = get(live_server, "/v1/items/tee/history")
    body = response.json()
    assert body["item_id"] == "tee"
    times = [c["at"] for c in body["changes"]]
    assert times == sorted(times)


def test_batch_counts_created_updated_and_unchanged(live_server: LiveServer) -> None:
    first = [
        {"item_id": "a", "title": "Lunch bag", "price": 1.65, "currency": "GBP"},
        {"item_id": "b", "title": "Jam jar", "price": 2.1, "currency": "GBP"},
    ]
    assert counts(batch(live_server, {"items": first})) == (2, 0, 0, 2)
    second = [first[0], {**first[1], "price": 1.95}, {"item_id": "c", "title": "Candle"}]
    assert counts(batch(live_server, {"items": second})) == (1, 1, 1, 1)
    assert history(live_server, "b") == [("", "price", None, 2.1), ("", "price", 2.1, 1.95)]
    assert get(live_server, "/v1/items/c").json()["price"] is None
    assert counts(batch(live_server, {"items": []})) == (0, 0, 0, 0)


def test_a_batch_with_one_bad_item_stores_nothing(live_server: LiveServer) -> None:
    put(live_server, "a", {"title": "Lunch bag", "price": 1.65})
    items = [
        {"item_id": "a", "title": "Lunch bag", "price": 0.99},
        {"item_id": "new", "title": "Jam jar"},
        {"item_id": "bad", "title": "Candle", "variants": [{"variant_id": "v", "stock": -1}]},
    ]
    assert_error(batch(live_server, {"items": items}), 400, "invalid_input", "items[2].variants[0].stock")
    assert get(live_server, "/v1/items/a").json()["price"] == 1.65
    assert get(live_server, "/v1/items/new").status_code == 404
    assert history(live_server, "a") == [("", "price", None, 1.65)]


def test_batch_shape_errors(live_server: LiveServer) -> None:
    one = {"item_id": "a", "title": "A"}
    cases: list[tuple[Any, str]] = [
        ([one], "body"),
        ({}, "items"),
        ({"items": one}, "items"),
        ({"items": [one], "extra": 1}, "extra"),
        ({"items": [one, {"item_id": "a", "title": "again"}]}, "items[1].item_id"),
        ({"items": [one, "not an item"]}, "items[1]"),
        ({"items": [{"item_id": f"i{n}", "title": "x"} for n in range(1001)]}, "items"),
    ]
    for body, field in cases:
        assert_error(batch(live_server, body), 400, "invalid_input", field)
    assert get(live_server, "/v1/items/a").status_code == 404
    most = [{"item_id": f"i{n}", "title": "x"} for n in range(1000)]
    assert counts(batch(live_server, {"items": most})) == (1000, 0, 0, 0)


# ---- errors ---------------------------------------------------------------------------------------


def test_bad_items_get_400_naming_the_field_and_change_nothing(live_server: LiveServer) -> None:
    put(live_server, "tee", TEE)
    variant = {"variant_id": "v", "stock": 1}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"price": -1}, "price"),
        ({"price": "abc"}, "price"),
        ({"price": "NaN"}, "price"),
        ({"price": "Infinity"}, "price"),
        ({"currency": "gbp"}, "currency"),
        ({"currency": "POUNDS"}, "currency"),
        ({"category": ["Clothes", ""]}, "category"),
        ({"category": ["Clothes", "  "]}, "category"),
        ({"category": 7}, "category"),
        ({"title": ""}, "title"),
        ({"title": None}, "title"),
        ({"title": "nul \x00 byte"}, "title"),
        ({"variants": [variant, variant]}, "variants"),
        ({"variants": [{"variant_id": "v", "stock": -2}]}, "variants[0].stock"),
        ({"variants": [variant, {"variant_id": "w", "stock": 1.5}]}, "variants[1].stock"),
        ({"variants": [{"variant_id": "v", "price": -3}]}, "variants[0].price"),
        ({"variants": [{"stock": 1}]}, "variants[0].variant_id"),
        ({"variants": [{"variant_id": "v", "colour": "red"}]}, "variants[0].colour"),
        ({"created_at": "last tuesday"}, "created_at"),
        ({"stock": 5}, "stock"),
        ({"item_id": "another"}, "item_id"),
    ]
    for change, field in cases:
        response = put(live_server, "tee", {**TEE, **change})
        assert response.status_code == 400, (change, response.text)
        assert response.json()["error"]["field"] == field, (change, response.text)
    untitled = {k: v for k, v in TEE.items() if k != "title"}
    assert_error(put(live_server, "tee", untitled), 400, "invalid_input", "title")
    assert_error(put(live_server, "tee", [TEE]), 400, "invalid_input", "body")
    # Nothing moved: the item is as first stored, and its history has only its creation.
    assert counts(put(live_server, "tee", TEE)) == (0, 0, 1, 0)
    assert len(history(live_server, "tee")) == 4
    assert get(live_server, "/v1/items/other").status_code == 404


def test_a_boolean_price_is_refused(live_server: LiveServer) -> None:
    response = put(live_server, "tee", {**TEE, "price": True})
    assert_error(response, 400, "invalid_input", "price")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param(
            {"category": "Bags\x00"},
            "category",
            id="nul-in-category",
        ),
        pytest.param(
            {"variants": [{"variant_id": "v", "stock": 2**31}]},
            "variants[0].stock",
            id="stock-over-32-bits",
        ),
    ],
)
def test_values_postgresql_cannot_store_are_refused_on_every_backend(
    live_server: LiveServer, change: dict[str, Any], field: str
) -> None:
    response = put(live_server, "odd", {"title": "Odd", **change})
    assert_error(response, 400, "invalid_input", field)
    assert get(live_server, "/v1/items/odd").status_code == 404


def test_json_that_is_not_json_is_refused(live_server: LiveServer) -> None:
    for raw in (b'{"title": "x", "price": NaN}', b'{"title": "x"', b"", b"\xff\xfe"):
        response = put(live_server, "x", None, raw=raw)
        assert response.status_code == 400, (raw, response.text)
        assert response.json()["error"]["field"] == "body"
    assert get(live_server, "/v1/items/x").status_code == 404


def test_unknown_items_are_404(live_server: LiveServer) -> None:
    for path in ("/v1/items/nope", "/v1/items/nope/history"):
        assert_error(get(live_server, path), 404, "not_found", "item_id")


def test_missing_wrong_and_write_keys(live_server: LiveServer) -> None:
    calls = [
        ("PUT", "/v1/items/a", orjson.dumps({"title": "A"})),
        ("POST", "/v1/items/batch", orjson.dumps({"items": [{"item_id": "a", "title": "A"}]})),
        ("GET", "/v1/items/a", None),
        ("GET", "/v1/items/a/history", None),
    ]
    for method, path, content in calls:
        url = f"{live_server.url}{path}"
        response = httpx.request(method, url, content=content)
        assert_error(response, 401, "unauthenticated", "Authorization")
        assert response.headers["www-authenticate"].startswith("Bearer")
        wrong = {"Authorization": "Bearer sk_admin_not-a-real-key"}
        assert_error(
            httpx.request(method, url, content=content, headers=wrong),
            401,
            "unauthenticated",
            "Authorization",
        )
        write = {"Authorization": f"Bearer {live_server.write_key}"}
        assert_error(
            httpx.request(method, url, content=content, headers=write), 403, "forbidden", "Authorization"
        )
    assert get(live_server, "/v1/items/a").status_code == 404


def test_oversized_bodies_are_413(live_server: LiveServer) -> None:
    big = {"title": "Big", "attributes": {"notes": "x" * (256 * KB)}}
    assert_error(put(live_server, "big", big), 413, "payload_too_large", "body")
    # Larger than a tracking message (32 KB) is fine for an item.
    roomy = {"title": "Roomy", "attributes": {"notes": "x" * (200 * KB)}}
    assert counts(put(live_server, "roomy", roomy))[0] == 1
    items = [{"item_id": f"i{n}", "title": "x", "attributes": {"notes": "y" * (6 * KB)}} for n in range(900)]
    assert len(orjson.dumps({"items": items})) > 5 * MB
    assert_error(batch(live_server, {"items": items}), 413, "payload_too_large", "body")
    assert get(live_server, "/v1/items/big").status_code == 404
    assert get(live_server, "/v1/items/i0").status_code == 404


def test_a_streamed_body_without_length_is_cut_at_the_limit(live_server: LiveServer) -> None:
    def chunks() -> Any:
        yield b'{"title": "Streamed", "attributes": {"notes": "'
        for _ in range(300):
            yield b"x" * KB
        yield b'"}}'

    response = httpx.put(
        f"{live_server.url}/v1/items/streamed", content=chunks(), headers=_admin(live_server), timeout=30
    )
    assert_error(response, 413, "payload_too_large", "body")


def test_openapi_documents_the_item_bodies(live_server: LiveServer) -> None:
    paths = httpx.get(f"{live_server.url}/openapi.json").json()["paths"]
    put_body = paths["/v1/items/{item_id}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"title", "category", "price", "currency", "attributes", "variants"} <= set(put_body["properties"])
    assert "item_id" not in put_body.get("required", [])
    assert "title" in put_body["required"]
    variant = put_body["properties"]["variants"]["items"]
    assert {"variant_id", "stock", "price", "attributes"} <= set(variant["properties"])
    batch_body = paths["/v1/items/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert batch_body["properties"]["items"]["maxItems"] == 1000
    assert "item_id" in batch_body["properties"]["items"]["items"]["required"]
    # pydantic's "#/$defs/..." refs would dangle in an OpenAPI document: they are inlined.
    assert "$defs" not in orjson.dumps(paths).decode()
    for path in ("/v1/items/{item_id}", "/v1/items/batch", "/v1/items/{item_id}/history"):
        for operation in paths[path].values():
            assert operation["security"] == [{"adminKey": []}]


def test_item_ids_with_slashes_round_trip(live_server: LiveServer) -> None:
    body = {"title": "Sock, grey", "price": 4.0, "variants": [{"variant_id": "34", "stock": 2}]}
    assert counts(put(live_server, "SOCK/GREY", body)) == (1, 0, 0, 2)
    found = get(live_server, "/v1/items/SOCK/GREY")
    assert found.status_code == 200, found.text
    assert found.json()["item_id"] == "SOCK/GREY"
    assert [c[1] for c in history(live_server, "SOCK/GREY")] == ["price", "stock"]

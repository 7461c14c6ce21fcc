"""Templates over real HTTP, on SQLite and PostgreSQL: save and version, 422 with every lint finding, list,
read, preview (real and hostile people), and every refusal as the issue's contract says."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
from tests.content.support import BACK_IN_STOCK as TEMPLATE

if TYPE_CHECKING:
    from conftest import LiveServer

GREETING: dict[str, Any] = {
    "channel": "web",
    "subject": "Hello",
    "html": "<p>Hi {{ first_name }}, welcome back.</p>",
    "fields": {"first_name": {"slot": "first_name", "from": "firstName", "fallback": "there"}},
}


def call(
    server: LiveServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = None,
    raw: bytes | None = None,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or server.admin_key}", "Content-Type": "application/json"}
    content = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
    return httpx.request(method, f"{server.url}{path}", content=content, headers=headers, timeout=30)


def assert_error(response: httpx.Response, status: int, code: str, field: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field), error
    assert error["message"]


def test_save_list_read_and_version(live_server: LiveServer) -> None:
    saved = call(live_server, "PUT", "/v1/templates/back", TEMPLATE)
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert (body["name"], body["version"], body["channel"]) == ("back", 1, "email")
    assert body["saved_by"].startswith("admin key sk_admin")
    assert call(live_server, "PUT", "/v1/templates/back", TEMPLATE).json()["version"] == 1  # unchanged
    changed = {**TEMPLATE, "subject": "Back in your size, {{ first_name }}"}
    assert call(live_server, "PUT", "/v1/templates/back", changed).json()["version"] == 2
    listed = call(live_server, "GET", "/v1/templates").json()["templates"]
    assert [(t["name"], t["version"]) for t in listed] == [("back", 2)]
    first = call(live_server, "GET", "/v1/templates/back?version=1").json()
    assert first["template"] == TEMPLATE and first["version"] == 1 and first["aborts"] == []
    assert call(live_server, "GET", "/v1/templates/back").json()["template"]["subject"].startswith("Back in")


def test_a_template_lint_rejects_answers_422_with_each_finding_and_is_not_saved(
    live_server: LiveServer,
) -> None:
    bad = {
        **TEMPLATE,
        "subject": "",
        "html": '<p>Hi {{ first_name }}</p>\n<p>{{ coupon }} at <a href="http://x.example">the shop</a></p>',
        "fields": {
            **TEMPLATE["fields"],
            "first_name": {"slot": "first_name", "from": "name", "fallback": "there"},
        },
    }
    response = call(live_server, "PUT", "/v1/templates/bad", bad)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"]["code"] == "lint_failed"
    for finding in body["findings"]:
        assert set(finding) == {"part", "line", "column", "code", "message"}
    found = {(f["code"], f["part"], f["line"], f["column"]) for f in body["findings"]}
    assert ("unknown_field", "html", 2, 7) in found
    assert ("http_link", "html", 2, 23) in found
    assert ("empty_subject", "subject", 1, 1) in found
    assert any(code == "full_name_in_first_name" for code, *_ in found)
    assert_error(call(live_server, "GET", "/v1/templates/bad"), 404, "not_found", "name")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({**TEMPLATE, "channel": "sms"}, "channel"),
        ({**TEMPLATE, "html": 5}, "html"),
        ({**TEMPLATE, "colour": "red"}, "colour"),
        ({**TEMPLATE, "fields": {"size": {"slot": "shoe"}}}, "fields.size.slot"),
    ],
)
def test_a_malformed_template_is_400_naming_the_field(live_server: LiveServer, body: Any, field: str) -> None:
    assert_error(call(live_server, "PUT", "/v1/templates/x", body), 400, "invalid_input", field)


def test_bad_names_bodies_and_unknowns(live_server: LiveServer) -> None:
    assert_error(call(live_server, "PUT", "/v1/templates/Not%20OK", TEMPLATE), 400, "invalid_input", "name")
    assert call(live_server, "PUT", "/v1/templates/x", raw=b'{"channel": ').status_code == 400
    deep = b"[" * 200 + b"]" * 200
    assert call(live_server, "PUT", "/v1/templates/x", raw=deep).status_code == 400
    huge = {**TEMPLATE, "html": "x" * (600 * 1024)}
    assert_error(call(live_server, "PUT", "/v1/templates/x", huge), 413, "payload_too_large", "body")
    assert_error(call(live_server, "GET", "/v1/templates/nope"), 404, "not_found", "name")
    assert_error(call(live_server, "GET", "/v1/templates/x?version=0"), 400, "invalid_input", "version")
    preview = "/v1/templates/nope/preview"
    assert_error(call(live_server, "POST", preview, {"hostile": True}), 404, "not_found", "name")


def test_preview_real_and_hostile_people(live_server: LiveServer) -> None:
    assert call(live_server, "PUT", "/v1/templates/hello", GREETING).status_code == 200
    track = httpx.post(
        f"{live_server.url}/v1/identify",
        auth=(live_server.write_key, ""),
        json={"userId": "17850", "traits": {"firstName": "JOHN"}},
        timeout=30,
    )
    assert track.status_code == 200, track.text
    response = call(
        live_server, "POST", "/v1/templates/hello/preview", {"people": ["17850"], "hostile": True}
    )
    assert response.status_code == 200, response.text
    previews = response.json()["previews"]
    assert all(set(p) == {"person", "subject", "html", "text", "fields", "aborted"} for p in previews)
    assert all(set(f) == {"name", "value", "source", "fallback_used"} for p in previews for f in p["fields"])
    real = previews[0]
    assert real["person"] == "17850" and real["aborted"] is None
    assert real["html"] == "<p>Hi John, welcome back.</p>"
    assert real["fields"] == [
        {"name": "first_name", "value": "John", "source": "observed", "fallback_used": False}
    ]
    hostile = previews[1:]
    assert len(hostile) >= 20 and all(p["person"].startswith("hostile: ") for p in hostile)
    for p in hostile:
        assert p["aborted"] is None and "<script" not in p["html"] and "{{" not in p["html"]
    assert_error(
        call(live_server, "POST", "/v1/templates/hello/preview", {"people": ["nobody"]}),
        404,
        "not_found",
        "person",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "people"),
        ({"people": "17850"}, "people"),
        ({"people": [17850]}, "people"),
        ({"people": ["a"] * 51}, "people"),
        ({"hostile": "yes"}, "hostile"),
        ({"hostile": True, "limit": 3}, "limit"),
    ],
)
def test_a_bad_preview_body_is_400(live_server: LiveServer, body: Any, field: str) -> None:
    assert call(live_server, "PUT", "/v1/templates/hello", GREETING).status_code == 200
    assert_error(call(live_server, "POST", "/v1/templates/hello/preview", body), 400, "invalid_input", field)


def test_only_an_admin_key_reaches_templates(live_server: LiveServer) -> None:
    routes = [
        ("PUT", "/v1/templates/hello", GREETING),
        ("GET", "/v1/templates", None),
        ("GET", "/v1/templates/hello", None),
        ("POST", "/v1/templates/hello/preview", {"hostile": True}),
    ]
    for method, path, body in routes:
        assert_error(
            call(live_server, method, path, body, key=live_server.write_key),
            403,
            "forbidden",
            "Authorization",
        )
        response = httpx.request(method, f"{live_server.url}{path}", json=body, timeout=30)
        assert_error(response, 401, "unauthenticated", "Authorization")
    assert call(live_server, "GET", "/v1/templates").json() == {"templates": []}  # nothing was saved

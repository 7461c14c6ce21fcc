"""Bad input over real HTTP, part two: lying Content-Lengths, keys, people routes, times, nothing lost."""

from __future__ import annotations

import base64
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
import pytest

if TYPE_CHECKING:
    pass

from tests.api.tracking_support import (
    KB,
    SINGLE,
    TRACKING,
    VALID,
    Server,
    admin_get,
    assert_error,
    batch_of,
    message,
    padded,
    post,
    raw_post,
    read_events,
    single_body,
    valid_body,
)

# ---- Content-Length that lies, over a raw socket --------------------------------------------------------

SMALL = b'{"userId": "u-1", "event": "e"}'


@pytest.mark.parametrize("kind", ["track", "batch"])
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    server: Server, kind: str
) -> None:
    status, headers, body = raw_post(server, kind, b"", [b"Content-Length: 900000000"])
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    error = orjson.loads(body)["error"]
    assert (error["code"], error["field"]) == ("payload_too_large", "body")


def test_a_chunked_body_over_the_limit_is_refused(server: Server) -> None:
    chunk = orjson.dumps(padded("track", 40 * KB) | {"type": "track"})
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)
    before = server.store.events.count()
    status, _, body = raw_post(server, "track", chunked, [b"Transfer-Encoding: chunked"])
    assert status == 413
    assert orjson.loads(body)["error"]["code"] == "payload_too_large"
    assert server.store.events.count() == before


def test_a_content_length_shorter_than_the_body_gives_a_json_error(server: Server) -> None:
    before = server.store.events.count()
    status, _, body = raw_post(server, "track", SMALL, [b"Content-Length: 10"])
    assert status == 400
    assert orjson.loads(body)["error"]["code"] == "invalid_json"
    assert orjson.loads(body)["error"]["field"] == "body"
    assert server.store.events.count() == before


BAD_LENGTHS = [b"abc", b"-1", b"1e3", b"0x1f", b"+31", b"31, 31", b"99999999999999999999999999"]


@pytest.mark.parametrize("value", BAD_LENGTHS, ids=[v.decode() for v in BAD_LENGTHS])
def test_an_invalid_content_length_is_refused(server: Server, value: bytes) -> None:
    before = server.store.events.count()
    status, _, _ = raw_post(server, "track", SMALL, [b"Content-Length: " + value])
    assert status == 400
    assert server.store.events.count() == before


@pytest.mark.parametrize("value", [b"abc", b"-1"])
def test_an_unparsable_content_length_is_refused_by_the_http_layer(server: Server, value: bytes) -> None:
    # uvicorn's HTTP parser answers these itself (text/plain) before the app runs; the error docs say so.
    before = server.store.events.count()
    status, _headers, _body = raw_post(server, "track", SMALL, [b"Content-Length: " + value])
    assert status == 400
    assert server.store.events.count() == before


def test_a_content_length_with_trailing_whitespace_is_accepted(server: Server) -> None:
    status, _, body = raw_post(server, "track", SMALL, [b"Content-Length: %d " % len(SMALL)])
    assert status == 200, body


# ---- keys ----------------------------------------------------------------------------------------------

UNAUTHENTICATED = [
    pytest.param({}, None, id="no-key"),
    pytest.param({}, "sk_write_not-a-real-key", id="unknown-key"),
    pytest.param({"Authorization": "Basic !!not base64!!"}, None, id="basic-not-base64"),
    pytest.param(
        {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:").decode()}, None, id="basic-not-utf8"
    ),
    pytest.param(
        {"Authorization": "Basic " + base64.b64encode(b":password").decode()}, None, id="basic-no-user"
    ),
    pytest.param({"Authorization": "Digest username=x"}, None, id="digest"),
    pytest.param({"Authorization": "Bearer"}, None, id="bearer-no-token"),
    pytest.param({"Authorization": "Bearer sk_write_nope"}, None, id="bearer-unknown"),
    pytest.param(
        {"Authorization": b"Basic \xe9\xe9"},
        None,
        id="basic-non-ascii",
    ),
]


@pytest.mark.parametrize("kind", TRACKING)
@pytest.mark.parametrize(("headers", "key"), UNAUTHENTICATED)
def test_tracking_without_a_valid_write_key_is_401(
    server: Server, kind: str, headers: dict[str, Any], key: str | None
) -> None:
    before = server.store.events.count()
    response = post(server, kind, valid_body(kind), headers=headers, key=key)
    assert_error(response, 401, "unauthenticated", "Authorization")
    assert response.headers["www-authenticate"].startswith("Basic")
    assert server.store.events.count() == before


@pytest.mark.parametrize("kind", TRACKING)
@pytest.mark.parametrize("body_key", ["sk_write_not-a-real-key", 5, "", None, ["k"]])
def test_a_bad_write_key_in_the_body_is_401(server: Server, kind: str, body_key: Any) -> None:
    body = {**valid_body(kind), "writeKey": body_key}
    before = server.store.events.count()
    response = post(server, kind, body, key=None)
    assert_error(response, 401, "unauthenticated", "Authorization")
    assert "www-authenticate" in response.headers
    assert server.store.events.count() == before


@pytest.mark.parametrize("kind", TRACKING)
@pytest.mark.parametrize("how", ["basic", "bearer", "body"])
def test_an_admin_key_cannot_track(server: Server, kind: str, how: str) -> None:
    body = valid_body(kind)
    headers: dict[str, str] = {}
    key: str | None = None
    if how == "basic":
        key = server.admin_key
    elif how == "bearer":
        headers["Authorization"] = f"Bearer {server.admin_key}"
    else:
        body["writeKey"] = server.admin_key
    before = server.store.events.count()
    assert_error(post(server, kind, body, headers=headers, key=key), 403, "forbidden", "Authorization")
    assert server.store.events.count() == before


@pytest.mark.parametrize("kind", TRACKING)
def test_a_revoked_write_key_is_401(server: Server, kind: str) -> None:
    raw, record = server.store.keys.create("write", name="to revoke")
    assert post(server, kind, valid_body(kind), key=raw).status_code == 200
    server.store.keys.revoke(record.id)
    before = server.store.events.count()
    response = post(server, kind, valid_body(kind), key=raw)
    assert_error(response, 401, "unauthenticated", "Authorization")
    assert "www-authenticate" in response.headers
    assert server.store.events.count() == before


ADMIN_PATHS = ["/v1/people/u-1", "/v1/people/u-1/events"]


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_a_write_key_cannot_read_people(server: Server, path: str) -> None:
    assert post(server, "track", VALID["track"]).status_code == 200
    assert_error(admin_get(server, path, key=server.write_key), 403, "forbidden", "Authorization")
    response = server.http.get(f"{server.url}{path}", auth=(server.write_key, ""))
    assert_error(response, 403, "forbidden", "Authorization")


@pytest.mark.parametrize("path", ADMIN_PATHS)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer sk_admin_not-a-real-key",
        "Basic !!",
        "Token abc",
        b"Basic \xe9",
    ],
)
def test_people_without_a_valid_admin_key_is_401(server: Server, path: str, authorization: Any) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = server.http.get(f"{server.url}{path}", headers=headers)
    assert_error(response, 401, "unauthenticated", "Authorization")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_a_revoked_admin_key_is_401(server: Server, path: str) -> None:
    assert post(server, "track", VALID["track"]).status_code == 200
    raw, record = server.store.keys.create("admin", name="to revoke")
    assert admin_get(server, path, key=raw).status_code == 200
    server.store.keys.revoke(record.id)
    assert_error(admin_get(server, path, key=raw), 401, "unauthenticated", "Authorization")


# ---- people, routes and methods ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/events"])
@pytest.mark.parametrize("person", ["nobody-at-all", "\U0001f47b", " ", "x" * 300, "%25", "\u202egnp"])
def test_an_unknown_person_is_404(server: Server, suffix: str, person: str) -> None:
    response = admin_get(server, f"/v1/people/{quote(person, safe='')}{suffix}")
    assert_error(response, 404, "not_found", "id")


@pytest.mark.parametrize("suffix", ["", "/events"])
def test_a_nul_in_a_person_id_is_404_not_500(
    request: pytest.FixtureRequest, server: Server, suffix: str
) -> None:
    response = admin_get(server, f"/v1/people/a%00b{suffix}")
    assert response.status_code in (400, 404), response.text
    assert response.json()["error"]["field"] == "id"


@pytest.mark.parametrize("suffix", ["", "/events"])
@pytest.mark.parametrize("shape", ["shop/{}", "{}/"])
def test_a_person_whose_id_has_a_slash_can_be_read(server: Server, shape: str, suffix: str) -> None:
    tag = uuid.uuid4().hex[:8]
    user_id = shape.format(tag)
    assert post(server, "track", {"userId": tag, "event": "someone else"}).status_code == 200
    assert post(server, "track", {"userId": user_id, "event": "e"}).status_code == 200
    response = admin_get(server, f"/v1/people/{quote(user_id, safe='')}{suffix}")
    assert response.status_code == 200, (response.status_code, response.headers.get("location"))
    if suffix:
        assert [e["userId"] for e in response.json()["events"]] == [user_id]
    else:
        assert user_id in [i["value"] for i in response.json()["ids"]]


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "abc", "1.5", ""])
def test_a_bad_events_limit_names_the_parameter(server: Server, limit: str) -> None:
    assert post(server, "track", VALID["track"]).status_code == 200
    assert_error(admin_get(server, f"/v1/people/u-1/events?limit={limit}"), 400, "invalid_input", "limit")


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize("path", ["/v1/nope", "/v2/track", "/v1/track/extra", "/", "/v1/people", "/%00"])
def test_an_unknown_route_is_a_json_404(server: Server, method: str, path: str) -> None:
    response = server.http.request(method, f"{server.url}{path}", auth=(server.write_key, ""))
    assert_error(response, 404, "not_found", None)


# The tracking routes answer CORS preflights (OPTIONS) too.
WRONG_METHODS = [("GET", f"/v1/{kind}", "OPTIONS|POST") for kind in TRACKING]
WRONG_METHODS += [
    ("PUT", "/v1/batch", "OPTIONS|POST"),
    ("DELETE", "/v1/track", "OPTIONS|POST"),
    ("PATCH", "/v1/identify", "OPTIONS|POST"),
]
# Person routes take any id (`{person_ref:path}`): reading a person (GET) and erasing them (DELETE) match
# every path under /v1/people/, and the Allow header names every method that matches, not just one.
WRONG_METHODS += [
    ("PATCH", "/v1/people/u-1", "DELETE|GET"),
    ("PUT", "/v1/people/u-1/events", "DELETE|GET"),
    ("POST", "/v1/people/u-1/preferences", "DELETE|GET|PUT"),
]
WRONG_METHODS += [
    ("POST", "/healthz", "GET"),
    ("POST", "/readyz", "GET"),
    ("DELETE", "/openapi.json", "GET|HEAD"),
]


@pytest.mark.parametrize(("method", "path", "allowed"), WRONG_METHODS)
def test_a_wrong_method_is_a_json_405(server: Server, method: str, path: str, allowed: str) -> None:
    before = server.store.events.count()
    response = server.http.request(method, f"{server.url}{path}", auth=(server.write_key, ""), content=SMALL)
    assert_error(response, 405, "method_not_allowed", None)
    offered = [method.strip() for method in response.headers["allow"].split(",")]
    assert offered == allowed.split("|")
    assert response.json()["error"]["message"] == f"{method} is not allowed here: use {' or '.join(offered)}"
    assert server.store.events.count() == before


# ---- timestamps the server cannot represent: must be a 400, are a 500 --------------------------------

_FAR = {"timestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T23:59:59Z"}
_SKEW_BUG = (
    "BUG: a timestamp/sentAt pair whose skew correction leaves datetime's range gives 500 "
    "(OverflowError in ingest.py correct_skew)"
)
_BIND_BUG = (
    "BUG: a timestamp at datetime's edge with an offset gives 500 "
    "(OverflowError in schema.py UtcDateTime.process_bind_param, astimezone(UTC))"
)
EXTREME_TIMES = [
    pytest.param(_FAR, id="old-timestamp-new-sentAt"),
    pytest.param(
        {"timestamp": _FAR["sentAt"], "sentAt": _FAR["timestamp"]},
        id="new-timestamp-old-sentAt",
    ),
    pytest.param(
        {"timestamp": "0001-01-01T00:00:00+01:00"},
        id="year-1-east-of-utc",
    ),
    pytest.param(
        {"timestamp": "9999-12-31T23:59:59-01:00"},
        id="year-9999-west-of-utc",
    ),
]


@pytest.mark.parametrize("times", EXTREME_TIMES)
def test_an_unrepresentable_timestamp_is_a_400(server: Server, times: dict[str, str]) -> None:
    before = server.store.events.count()
    response = post(server, "track", single_body("track", **times))
    assert server.store.events.count() == before
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] in ("timestamp", "sentAt")
    batch = batch_of(message("identify"), message("track", **times))
    response = post(server, "batch", batch)
    assert server.store.events.count() == before
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] in ("batch[1].timestamp", "batch[1].sentAt")


def test_an_unrepresentable_batch_sent_at_is_a_400(server: Server) -> None:
    body = {**batch_of(message("track", timestamp=_FAR["timestamp"])), "sentAt": _FAR["sentAt"]}
    before = server.store.events.count()
    response = post(server, "batch", body)
    assert server.store.events.count() == before
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] in ("sentAt", "batch[0].timestamp")


# ---- nothing is lost: all-or-nothing batches, idempotent resends ----------------------------------------


def _stored(fresh: Server, user_id: str) -> dict[str, dict[str, Any]]:
    return {e["messageId"]: e for e in read_events(fresh, user_id)}


def test_a_rejected_batch_stores_nothing_and_keeps_what_was_accepted(fresh: Server) -> None:
    first = [message("track", userId="alice", messageId=f"m{i}", properties={"n": i}) for i in range(3)]
    response = post(fresh, "batch", batch_of(*first))
    assert response.json() == {"success": True, "received": 3, "stored": 3, "duplicates": 0}
    accepted = _stored(fresh, "alice")

    # A resend of m0 with other content, two new messages, and a bad last one: nothing of it may land.
    second = [
        message("track", userId="alice", messageId="m0", properties={"n": "changed"}),
        message("track", userId="alice", messageId="m3"),
        message("identify", userId="alice", messageId="m4", traits={"email": "alice@example.com"}),
        message("track", userId=True, messageId="m5"),
    ]
    assert_error(post(fresh, "batch", batch_of(*second)), 400, "invalid_input", "batch[3].userId")
    second[3] = {**padded("track", 33 * KB), "messageId": "m5"}
    assert_error(post(fresh, "batch", batch_of(*second)), 413, "payload_too_large", "batch[3]")
    assert fresh.store.events.count() == 3
    assert not fresh.store.events.stored_message_ids(["m3", "m4", "m5"])
    assert _stored(fresh, "alice") == accepted
    assert_error(admin_get(fresh, "/v1/people/alice@example.com"), 404, "not_found", "id")

    # Fixed and resent: the new ones land, m0 is a duplicate and keeps its first content.
    second[3] = message("track", userId="alice", messageId="m5")
    response = post(fresh, "batch", batch_of(*second))
    assert response.json() == {"success": True, "received": 4, "stored": 3, "duplicates": 1}
    stored = _stored(fresh, "alice")
    assert stored["m0"] == accepted["m0"]
    assert stored["m0"]["properties"] == {"n": 0}
    assert set(stored) == {"m0", "m1", "m2", "m3", "m4", "m5"}


def test_rejected_calls_leave_every_accepted_event_unchanged(fresh: Server) -> None:
    for kind in SINGLE:
        body = single_body(kind, userId="bob", messageId=f"ok-{kind}")
        assert post(fresh, kind, body).status_code == 200
    accepted = _stored(fresh, "bob")
    assert len(accepted) == len(SINGLE)
    rejections = [
        (kind, single_body(kind, **{"userId": "bob", "messageId": f"ok-{kind}", field: value}))
        for kind in SINGLE
        for field, value in (("properties", "x"), ("timestamp", "never"), ("userId", ["bob"]), ("event", 5))
    ]
    for kind, body in rejections:
        assert post(fresh, kind, body).status_code == 400
        assert post(fresh, kind, content=orjson.dumps(body)[:-1]).status_code == 400
        assert post(fresh, kind, body, key=fresh.admin_key).status_code == 403
    for kind, body in rejections[::4]:  # an unknown key waits out the once-a-second key read: once a kind
        assert post(fresh, kind, body, key="sk_write_unknown").status_code == 401
    assert post(fresh, "track", padded("track", 40 * KB)).status_code == 413
    assert fresh.store.events.count() == len(SINGLE)
    assert _stored(fresh, "bob") == accepted


def test_a_resent_batch_is_stored_once(fresh: Server) -> None:
    body = batch_of(*(message(kind, messageId=f"once-{kind}") for kind in SINGLE))
    assert post(fresh, "batch", body).json()["stored"] == len(SINGLE)
    for _ in range(3):
        response = post(fresh, "batch", body)
        assert response.json() == {
            "success": True,
            "received": len(SINGLE),
            "stored": 0,
            "duplicates": len(SINGLE),
        }
    assert fresh.store.events.count() == len(SINGLE)


def test_a_batch_repeating_a_message_id_stores_it_once(fresh: Server) -> None:
    first = message("track", messageId="twice", properties={"copy": 1})
    body = batch_of(first, {**first, "properties": {"copy": 2}})
    assert post(fresh, "batch", body).json() == {
        "success": True,
        "received": 2,
        "stored": 1,
        "duplicates": 1,
    }
    assert [e["properties"] for e in read_events(fresh, "u-1")] == [{"copy": 1}]

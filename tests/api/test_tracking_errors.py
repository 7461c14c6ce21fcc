"""Bad input over real HTTP: each malformed, oversized, hostile or unauthorised request gets a precise 4xx.

The contract (DESIGN.md, "Outside contract"): errors are `{"error": {"code", "message", "field"}}` with a 4xx,
`field` names the offending field exactly (`batch[2].userId`), bad input never causes a 5xx, and a rejected
call never stores anything nor loses what was accepted before. Cases marked `xfail(reason="BUG: ...")` are
known bugs in src/; they flip to failures (strict) once fixed, so the mark can be removed.

The table-driven cases share one live server per backend (`server`, module-scoped): a fresh uvicorn per
case would cost hundreds of server starts. The tests about stored data use conftest's `live_server`.
"""

from __future__ import annotations

import base64
import gzip
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx
import orjson
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shopkeeper.api.app import create_app
from shopkeeper.settings import Settings
from shopkeeper.store import Store

if TYPE_CHECKING:
    from conftest import LiveServer

KB = 1024
SINGLE = ("track", "identify", "page", "screen", "group", "alias")
TRACKING = (*SINGLE, "batch")
VALID: dict[str, dict[str, Any]] = {
    "track": {"userId": "u-1", "event": "Product Viewed"},
    "identify": {"userId": "u-1", "traits": {"plan": "pro"}},
    "page": {"userId": "u-1", "name": "Home"},
    "screen": {"userId": "u-1", "name": "Home"},
    "group": {"userId": "u-1", "groupId": "g-1"},
    "alias": {"userId": "u-1", "previousId": "anon-1"},
}


# ---- a live server shared by the table-driven cases ---------------------------------------------------


@dataclass
class Server:
    url: str
    write_key: str
    admin_key: str
    store: Store
    http: httpx.Client

    @property
    def backend(self) -> str:
        return self.store.backend


def _schema_url(server_url: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _serve(url: str, http: httpx.Client) -> Iterator[Server]:
    store = Store.open(url)
    write_key, _ = store.keys.create("write", name="errors")
    admin_key, _ = store.keys.create("admin", name="errors")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    app = create_app(Settings(database_url=url), store=store)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", access_log=False)
    uvi = uvicorn.Server(config)
    thread = threading.Thread(target=uvi.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uvi.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", write_key, admin_key, store, http)
    finally:
        uvi.should_exit = True
        thread.join(timeout=10)
        store.close()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One client (building one per request costs an SSL context); no keep-alive, so a 500 that closes
    its connection cannot break the next case."""
    with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        yield client


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, http: httpx.Client
) -> Iterator[Server]:
    """One real uvicorn per backend for this module's cases; each case checks the event count itself."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("errors") / "shop.db"
        yield from _serve(f"sqlite:///{path}", http)
    else:
        for url in _schema_url(request.getfixturevalue("postgres_server")):
            yield from _serve(url, http)


@pytest.fixture
def fresh(live_server: LiveServer, http: httpx.Client) -> Server:
    """conftest's live_server (an empty store per test), for the tests that count what is stored."""
    return Server(live_server.url, live_server.write_key, live_server.admin_key, live_server.store, http)


# ---- helpers -------------------------------------------------------------------------------------------


def post(
    server: Server,
    kind: str,
    body: Any = None,
    *,
    content: bytes | None = None,
    headers: dict[str, Any] | None = None,
    key: str | None = "write",
) -> httpx.Response:
    """POST to /v1/{kind}: `body` is sent as UTF-8 JSON, `content` as raw bytes."""
    data = content if content is not None else orjson.dumps(body)
    auth = None
    if key == "write":
        auth = (server.write_key, "")
    elif key is not None:
        auth = (key, "")
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return server.http.post(f"{server.url}/v1/{kind}", content=data, headers=all_headers, auth=auth)


def admin_get(server: Server, path: str, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or server.admin_key}"}
    return server.http.get(f"{server.url}{path}", headers=headers)


def assert_error(
    response: httpx.Response, status: int, code: str, field: str | None, *, named: bool = True
) -> dict[str, Any]:
    """The contract's error shape, exactly, with `field`; `named`: the message names the field too."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert list(body) == ["error"], body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "field"}, error
    assert error["code"] == code, error
    assert error["field"] == field, error
    assert isinstance(error["message"], str), error
    assert error["message"].strip(), error
    if named and field and "[" not in field.rsplit(".", 1)[-1] and field not in ("body", "Authorization"):
        assert field.rsplit(".", 1)[-1] in error["message"], f"the message does not name the field: {error}"
    return error


def message(kind: str, **changes: Any) -> dict[str, Any]:
    """A valid message of `kind` (with its `type`), with fields changed; None removes a field."""
    out = {"type": kind, **VALID[kind], **changes}
    return {k: v for k, v in out.items() if v is not None}


def single_body(kind: str, **changes: Any) -> dict[str, Any]:
    out = {**VALID[kind], **changes}
    return {k: v for k, v in out.items() if v is not None}


def batch_of(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"batch": list(messages)}


def valid_body(kind: str) -> dict[str, Any]:
    return batch_of(*(message(k) for k in SINGLE)) if kind == "batch" else dict(VALID[kind])


def raw_http(server: Server, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (httpx would fix a bad Content-Length) and read the whole answer."""
    parts = urlsplit(server.url)
    answer = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def raw_post(
    server: Server, kind: str, body: bytes, header_lines: list[bytes]
) -> tuple[int, dict[str, str], bytes]:
    credentials = base64.b64encode(f"{server.write_key}:".encode()).decode()
    head = [
        f"POST /v1/{kind} HTTP/1.1".encode(),
        b"Host: 127.0.0.1",
        f"Authorization: Basic {credentials}".encode(),
        b"Content-Type: application/json",
        b"Connection: close",
        *header_lines,
    ]
    return raw_http(server, b"\r\n".join(head) + b"\r\n\r\n" + body)


def padded(kind: str, size: int) -> dict[str, Any]:
    """A valid message of `kind` whose JSON is about `size` bytes (the padding is in properties/traits)."""
    room = "traits" if kind in ("identify", "group") else "properties"
    return message(kind, **{room: {"pad": "x" * max(0, size - 120)}})


# ---- positive controls: the valid bodies the error cases start from -------------------------------------


@pytest.mark.parametrize("kind", TRACKING)
def test_the_valid_bodies_are_accepted(server: Server, kind: str) -> None:
    response = post(server, kind, valid_body(kind))
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True


# ---- bodies that are not a JSON object ------------------------------------------------------------------

MALFORMED = [
    pytest.param(b'{"userId": "u-1", "event": ', "invalid_json", id="truncated"),
    pytest.param(b"{'userId': 'u-1'}", "invalid_json", id="single-quotes"),
    pytest.param(b'{"userId": "u-1",}', "invalid_json", id="trailing-comma"),
    pytest.param(b'{"userId": "u-1"} {"userId": "u-2"}', "invalid_json", id="two-documents"),
    pytest.param(b'{"userId": "u-1"} // comment', "invalid_json", id="comment"),
    pytest.param(b'{"userId": "u-1", "n": NaN}', "invalid_json", id="NaN"),
    pytest.param(b'{"userId": "u-1", "n": -Infinity}', "invalid_json", id="Infinity"),
    pytest.param(b'{"userId": "u-1", "n": 1e400}', "invalid_json", id="float-overflow"),
    pytest.param(b"[" * 5000 + b"]" * 5000, "invalid_json", id="deep-nesting"),
    pytest.param(
        b'{"properties": {"a": ' + b"[" * 2000 + b"]" * 2000 + b"}}", "invalid_json", id="deep-inside"
    ),
    pytest.param(b'\xef\xbb\xbf{"userId": "u-1"}', "invalid_json", id="utf8-bom"),
    pytest.param(b'{"userId": "a\x01b"}', "invalid_json", id="raw-control-char"),
    # Lone surrogates, sent as JSON escapes: not text, so not storable as UTF-8.
    pytest.param(b'{"userId": "\\ud800", "event": "e"}', "invalid_json", id="lone-high-surrogate"),
    pytest.param(b'{"userId": "\\udfff", "event": "e"}', "invalid_json", id="lone-low-surrogate"),
    pytest.param(b'{"userId": "u", "event": "\\ud83d\\u0041"}', "invalid_json", id="high-then-not-low"),
    pytest.param(b'{"userId": "u", "properties": {"\\udc00": 1}}', "invalid_json", id="surrogate-key"),
    # Bytes that are not UTF-8.
    pytest.param(b'{"userId": "\xff\xfe"}', "invalid_json", id="invalid-utf8"),
    pytest.param(b'{"userId": "\xc0\xaf"}', "invalid_json", id="overlong-utf8"),
    pytest.param(b'{"userId": "\xed\xa0\x80"}', "invalid_json", id="utf8-encoded-surrogate"),
    pytest.param(b'{"userId": "\xe2\x82"}', "invalid_json", id="truncated-utf8"),
    pytest.param(b'{"userId": "\xf4\x90\x80\x80"}', "invalid_json", id="beyond-u10ffff"),
    pytest.param(b'{"userId": "latin-1 \xe9"}', "invalid_json", id="latin-1"),
    # Empty, or JSON that is not an object.
    pytest.param(b"", "invalid_input", id="empty"),
    pytest.param(b" \r\n\t ", "invalid_input", id="whitespace"),
    pytest.param(b"[]", "invalid_input", id="empty-array"),
    pytest.param(b'[{"userId": "u-1", "event": "e"}]', "invalid_input", id="array"),
    pytest.param(b'"track"', "invalid_input", id="string"),
    pytest.param(b"42", "invalid_input", id="number"),
    pytest.param(b"null", "invalid_input", id="null"),
    pytest.param(b"true", "invalid_input", id="bool"),
]


@pytest.mark.parametrize("kind", TRACKING)
@pytest.mark.parametrize(("content", "code"), MALFORMED)
def test_a_body_that_is_not_a_json_object_is_refused(
    server: Server, kind: str, content: bytes, code: str
) -> None:
    before = server.store.events.count()
    assert_error(post(server, kind, content=content), 400, code, "body")
    assert server.store.events.count() == before


# ---- wrong types, per field, on every endpoint and inside a batch ---------------------------------------

WRONG_TYPES: list[tuple[str, Any]] = [
    *(
        (f, v)
        for f in ("userId", "anonymousId", "groupId", "previousId")
        for v in (True, 1.5, {"id": 1}, ["u"])
    ),
    *((f, v) for f in ("event", "name") for v in (42, True, ["Viewed"], {"n": 1})),
    *(("messageId", v) for v in (42, True, ["m"], "")),
    *((f, v) for f in ("properties", "traits", "context", "integrations") for v in ("x", [1], 3, True)),
    *(
        (f, v)
        for f in ("timestamp", "sentAt")
        for v in ("garbage", "", "2024-13-45T00:00:00Z", "2024-01-01T00:00:00+25:00", True, [2024], 1e20)
    ),
]
WRONG_TYPE_IDS = [f"{f}={json.dumps(v)[:24]}" for f, v in WRONG_TYPES]


@pytest.mark.parametrize("kind", SINGLE)
@pytest.mark.parametrize(("field", "value"), WRONG_TYPES, ids=WRONG_TYPE_IDS)
def test_a_wrong_type_names_the_field(server: Server, kind: str, field: str, value: Any) -> None:
    before = server.store.events.count()
    assert_error(post(server, kind, single_body(kind, **{field: value})), 400, "invalid_input", field)
    assert server.store.events.count() == before


@pytest.mark.parametrize(("field", "value"), WRONG_TYPES, ids=WRONG_TYPE_IDS)
def test_a_wrong_type_in_a_batch_names_the_element_and_field(server: Server, field: str, value: Any) -> None:
    body = batch_of(
        message("identify"), message("track"), message("page", **{field: value}), message("alias")
    )
    before = server.store.events.count()
    assert_error(post(server, "batch", body), 400, "invalid_input", f"batch[2].{field}")
    assert server.store.events.count() == before


@pytest.mark.parametrize("kind", SINGLE)
@pytest.mark.parametrize("stated", ["identify", "purchase", 5, None, ["track"], {"t": "track"}])
def test_a_type_that_contradicts_the_endpoint_is_refused(server: Server, kind: str, stated: Any) -> None:
    if stated == kind:
        stated = "track"
    body = {**VALID[kind], "type": stated}
    # "this endpoint takes track messages, not 'identify'" is precise without the word "type".
    assert_error(post(server, kind, body), 400, "invalid_input", "type", named=False)


# ---- required fields, per type -------------------------------------------------------------------------

MISSING = [
    pytest.param("track", {"userId": "u-1"}, "event", id="track-no-event"),
    pytest.param("track", {"userId": "u-1", "event": ""}, "event", id="track-empty-event"),
    pytest.param("track", {"userId": "u-1", "event": None}, "event", id="track-null-event"),
    pytest.param("track", {"event": "e"}, "userId", id="track-no-ids"),
    pytest.param("track", {"userId": "", "anonymousId": "", "event": "e"}, "userId", id="track-empty-ids"),
    pytest.param(
        "track", {"userId": "", "anonymousId": "  ", "event": "e"}, "anonymousId", id="track-blank-id"
    ),
    pytest.param("track", {"userId": "u-1", "event": "   "}, "event", id="track-blank-event"),
    pytest.param("track", {"userId": None, "anonymousId": None, "event": "e"}, "userId", id="track-null-ids"),
    pytest.param("identify", {"traits": {"plan": "pro"}}, "userId", id="identify-no-ids"),
    pytest.param("page", {"name": "Home"}, "userId", id="page-no-ids"),
    pytest.param("screen", {"name": "Home"}, "userId", id="screen-no-ids"),
    pytest.param("group", {"userId": "u-1"}, "groupId", id="group-no-groupId"),
    pytest.param("group", {"userId": "u-1", "groupId": " "}, "groupId", id="group-blank-groupId"),
    pytest.param("group", {"groupId": "g-1"}, "userId", id="group-no-ids"),
    pytest.param("alias", {"userId": "u-1"}, "previousId", id="alias-no-previousId"),
    pytest.param("alias", {"userId": "u-1", "previousId": ""}, "previousId", id="alias-empty-previousId"),
    pytest.param("alias", {"previousId": "anon-1"}, "userId", id="alias-no-userId"),
    pytest.param(
        "alias", {"previousId": "anon-1", "anonymousId": "a-1"}, "userId", id="alias-anonymous-only"
    ),
]


@pytest.mark.parametrize(("kind", "body", "field"), MISSING)
def test_a_missing_required_field_is_named(
    server: Server, kind: str, body: dict[str, Any], field: str
) -> None:
    before = server.store.events.count()
    assert_error(post(server, kind, body), 400, "invalid_input", field)
    assert server.store.events.count() == before


@pytest.mark.parametrize(("kind", "body", "field"), MISSING)
def test_a_missing_required_field_in_a_batch_is_named(
    server: Server, kind: str, body: dict[str, Any], field: str
) -> None:
    batch = batch_of(message("track"), {"type": kind, **body}, message("identify"))
    before = server.store.events.count()
    assert_error(post(server, "batch", batch), 400, "invalid_input", f"batch[1].{field}")
    assert server.store.events.count() == before


BATCH_SHAPES = [
    pytest.param({}, "batch", id="no-batch"),
    pytest.param({"batch": None}, "batch", id="batch-null"),
    pytest.param({"batch": {"type": "track"}}, "batch", id="batch-object"),
    pytest.param({"batch": "[]"}, "batch", id="batch-string"),
    pytest.param({"batch": 3}, "batch", id="batch-number"),
    pytest.param(batch_of(message("track"), "track"), "batch[1]", id="element-string"),
    pytest.param(batch_of(message("track"), 7), "batch[1]", id="element-number"),
    pytest.param(batch_of(message("track"), None), "batch[1]", id="element-null"),
    pytest.param(batch_of(message("track"), [message("track")]), "batch[1]", id="element-array"),
    pytest.param(batch_of(message("track"), single_body("track")), "batch[1].type", id="element-no-type"),
    pytest.param(
        batch_of(message("track"), message("track", type="purchase")), "batch[1].type", id="type-unknown"
    ),
    pytest.param(batch_of(message("track"), message("track", type="")), "batch[1].type", id="type-empty"),
    pytest.param(batch_of(message("track"), message("track", type=5)), "batch[1].type", id="type-number"),
    pytest.param(batch_of(message("track"), message("track", type="Track")), "batch[1].type", id="type-case"),
    pytest.param({**batch_of(message("track")), "sentAt": "yesterday"}, "sentAt", id="sentAt-garbage"),
    pytest.param({**batch_of(message("track")), "sentAt": 1e20}, "sentAt", id="sentAt-number"),
    pytest.param({**batch_of(message("track")), "context": [1]}, "context", id="context-list"),
    pytest.param(
        {**batch_of(message("track")), "integrations": "all"}, "integrations", id="integrations-str"
    ),
]


@pytest.mark.parametrize(("body", "field"), BATCH_SHAPES)
def test_a_badly_shaped_batch_names_the_field(server: Server, body: dict[str, Any], field: str) -> None:
    before = server.store.events.count()
    assert_error(post(server, "batch", body), 400, "invalid_input", field)
    assert server.store.events.count() == before


# ---- lengths and NUL characters ------------------------------------------------------------------------

BOUNDED = [("track", "userId"), ("track", "anonymousId"), ("group", "groupId"), ("alias", "previousId")]
BOUNDED += [("track", "event"), ("page", "name"), ("screen", "name"), ("track", "messageId")]


@pytest.mark.parametrize(("kind", "field"), BOUNDED)
@pytest.mark.parametrize("char", ["x", "\U0001f600"], ids=["ascii", "emoji"])
def test_ids_and_names_over_255_characters_are_refused(
    server: Server, kind: str, field: str, char: str
) -> None:
    before = server.store.events.count()
    error = assert_error(
        post(server, kind, single_body(kind, **{field: char * 256})), 400, "invalid_input", field
    )
    assert "255" in error["message"], error
    batch = batch_of(
        message("track"), message("identify"), message("page"), message(kind, **{field: char * 256})
    )
    assert_error(post(server, "batch", batch), 400, "invalid_input", f"batch[3].{field}")
    assert server.store.events.count() == before
    ok = single_body(kind, **{field: char * 255})
    if field != "messageId":
        ok["messageId"] = uuid.uuid4().hex
    assert post(server, kind, ok).status_code == 200


NUL_FIELDS = [("track", f) for f in ("userId", "anonymousId", "event", "messageId")]
NUL_FIELDS += [("group", "groupId"), ("alias", "previousId"), ("page", "name"), ("screen", "name")]


@pytest.mark.parametrize(("kind", "field"), NUL_FIELDS)
@pytest.mark.parametrize("value", ["\x00", "a\x00b", "abc\x00"], ids=["alone", "inside", "at-end"])
def test_a_nul_character_in_an_id_or_name_is_refused(
    server: Server, kind: str, field: str, value: str
) -> None:
    before = server.store.events.count()
    error = assert_error(post(server, kind, single_body(kind, **{field: value})), 400, "invalid_input", field)
    assert "NUL" in error["message"], error
    batch = batch_of(message("track"), message(kind, **{field: value}))
    assert_error(post(server, "batch", batch), 400, "invalid_input", f"batch[1].{field}")
    assert server.store.events.count() == before


# ---- unicode of every kind is accepted and read back byte-identical -------------------------------------

UNICODE = {
    "emoji": "\U0001f600\U0001f6d2"
    "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
    "\U0001f1eb\U0001f1f7",
    "rtl": "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627\u202e\u200f\u202c",
    "combining": "e\u0301\u0301\u0301Z\u0324\u0354\u0367\u0311a\u0308\u0356",
    "zero-width": "\u200b\u200c\u200d\u2060\ufeff",
    "astral": "\U0001d11e\U00020000\U0010ffff",
    "noncharacters": "\ufffe\uffff\ufdd0",
    "cjk": "\u6771\u4eac\u90fd\u3000\u30c6\u30b9\u30c8",
    "separators-inside": "a\u2028b\u2029c\x85d\x1fe",
    "controls-inside": "a\x01\x07\x1b[31mb",
    "hostile": "x'); DROP TABLE events;-- <img src=x onerror=alert(1)> \\\" %00 %2e ${{7*7}}",
}


def _read_events(server: Server, external_id: str) -> list[dict[str, Any]]:
    response = admin_get(server, f"/v1/people/{quote(external_id, safe='')}/events")
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


@pytest.mark.parametrize("sample", list(UNICODE.values()), ids=list(UNICODE))
@pytest.mark.parametrize("encoding", ["utf-8", "ascii-escaped", "gzip"])
def test_unicode_is_accepted_and_read_back_identical(server: Server, sample: str, encoding: str) -> None:
    tag = uuid.uuid4().hex[:8]
    user_id = f"{sample}{tag}{sample}"
    props = {sample: sample, "nested": [sample, {sample: [sample]}], "plain": "ok"}
    body = batch_of(
        message("identify", userId=user_id, traits={"name": sample, sample: sample}),
        message("track", userId=user_id, event=sample, properties=props, context={"page": {"title": sample}}),
        message("page", userId=user_id, name=sample, properties=props),
    )
    headers: dict[str, str] = {}
    if encoding == "utf-8":
        content = orjson.dumps(body)
    elif encoding == "ascii-escaped":  # \uXXXX escapes, astral characters as surrogate pairs
        content = json.dumps(body, ensure_ascii=True).encode("ascii")
    else:
        content = gzip.compress(orjson.dumps(body))
        headers["Content-Encoding"] = "gzip"
    response = post(server, "batch", content=content, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 3
    events = {e["type"]: e for e in _read_events(server, user_id)}
    # Equal code points mean equal UTF-8 bytes: nothing normalised, stripped or replaced.
    for event in events.values():
        assert event["userId"].encode() == user_id.encode()
    assert events["track"]["event"].encode() == sample.encode()
    assert events["track"]["properties"] == props
    assert events["track"]["context"] == {"page": {"title": sample}}
    assert events["page"]["name"] == sample
    assert events["identify"]["traits"] == {"name": sample, sample: sample}
    person = admin_get(server, f"/v1/people/{quote(user_id, safe='')}").json()
    assert {"kind": "user_id", "value": user_id} in [
        {"kind": i["kind"], "value": i["value"]} for i in person["ids"]
    ]


def test_unicode_normal_forms_stay_distinct_people(server: Server) -> None:
    tag = uuid.uuid4().hex[:8]
    composed, decomposed = f"caf\u00e9-{tag}", f"cafe\u0301-{tag}"
    for user_id in (composed, decomposed):
        assert post(server, "track", {"userId": user_id, "event": user_id}).status_code == 200
    first, second = _read_events(server, composed), _read_events(server, decomposed)
    assert [e["userId"] for e in first] == [composed]
    assert [e["userId"] for e in second] == [decomposed]


@pytest.mark.parametrize("field", ["userId", "anonymousId"])
def test_a_255_emoji_id_is_stored_whole(server: Server, field: str) -> None:
    external_id = uuid.uuid4().hex[:8] + "\U0001f600" * 247
    assert len(external_id) == 255
    assert post(server, "track", {field: external_id, "event": "e"}).status_code == 200
    assert [e[field] for e in _read_events(server, external_id)] == [external_id]


def test_nul_characters_inside_properties_are_kept(server: Server) -> None:
    user_id = f"nul-{uuid.uuid4().hex[:8]}"
    props = {"a\x00b": "c\x00d", "list": ["\x00"], "\x00": {"\x00": "\x00"}}
    traits = {"email": "x@example.com\x00", "note": "\x00"}
    body = batch_of(
        message("track", userId=user_id, properties=props), message("identify", userId=user_id, traits=traits)
    )
    assert post(server, "batch", body).status_code == 200
    events = {e["type"]: e for e in _read_events(server, user_id)}
    assert events["track"]["properties"] == props
    assert events["identify"]["traits"] == traits


def test_a_big_integer_property_is_kept_exactly_or_refused(server: Server) -> None:
    user_id = f"big-{uuid.uuid4().hex[:8]}"
    content = b'{"userId": "%s", "event": "e", "properties": {"n": 123456789012345678901234567890}}' % (
        user_id.encode()
    )
    response = post(server, "track", content=content)
    if response.status_code != 200:  # a precise 400 would honour the contract too
        assert_error(response, 400, "invalid_input", "properties.n")
        return
    assert _read_events(server, user_id)[0]["properties"]["n"] == 123456789012345678901234567890


@pytest.mark.parametrize(
    "edge", ["\u00a0", "\u3000", "\x1f", "\u2003"], ids=["nbsp", "ideographic", "us", "em"]
)
def test_an_id_with_unicode_spaces_at_its_edges_is_not_altered(server: Server, edge: str) -> None:
    user_id = f"{edge}vip-{uuid.uuid4().hex[:8]}{edge}"
    response = post(server, "track", {"userId": user_id, "event": "e"})
    if response.status_code != 200:  # refusing it with a precise error would honour the contract too
        assert_error(response, 400, "invalid_input", "userId")
        return
    assert [e["userId"] for e in _read_events(server, user_id)] == [user_id]


# ---- sizes: 32 KB per message, 500 KB per batch, gzip bombs ----------------------------------------------


@pytest.mark.parametrize("kind", SINGLE)
def test_a_message_over_32_kb_is_refused(server: Server, kind: str) -> None:
    before = server.store.events.count()
    body = padded(kind, 33 * KB)
    body.pop("type")
    assert_error(post(server, kind, body), 413, "payload_too_large", "body")
    assert server.store.events.count() == before


@pytest.mark.parametrize("kind", ["track", "batch"])
def test_a_message_just_under_32_kb_is_accepted(server: Server, kind: str) -> None:
    one = padded("track", KB)
    encoded = orjson.dumps(one)
    one["properties"]["pad"] += "x" * (32 * KB - 64 - len(encoded))
    assert 32 * KB - 100 < len(orjson.dumps(one)) <= 32 * KB - 64
    if kind == "track":
        one.pop("type")
    response = post(server, kind, batch_of(one) if kind == "batch" else one)
    assert response.status_code == 200, response.text


def test_a_batch_over_500_kb_is_refused(server: Server) -> None:
    body = batch_of(*(padded("track", 20 * KB) for _ in range(26)))
    assert len(orjson.dumps(body)) > 500 * KB
    before = server.store.events.count()
    assert_error(post(server, "batch", body), 413, "payload_too_large", "body")
    assert server.store.events.count() == before


@pytest.mark.parametrize("index", [0, 3, 5])
def test_one_oversized_message_fails_its_whole_batch(server: Server, index: int) -> None:
    messages = [message("track", messageId=f"big-{index}-{i}-{uuid.uuid4().hex}") for i in range(6)]
    messages[index] = {**padded("track", 33 * KB), "messageId": messages[index]["messageId"]}
    before = server.store.events.count()
    assert_error(post(server, "batch", batch_of(*messages)), 413, "payload_too_large", f"batch[{index}]")
    assert server.store.events.count() == before
    assert not server.store.events.stored_message_ids(m["messageId"] for m in messages)


@pytest.mark.parametrize(
    ("kind", "inflated"), [("track", 40 * KB), ("identify", 10 * 1024 * KB), ("batch", 10 * 1024 * KB)]
)
def test_a_gzip_bomb_is_refused(server: Server, kind: str, inflated: int) -> None:
    if kind == "batch":
        plain = b'{"batch": [' + b" " * inflated + b"]}"
    else:
        plain = b'{"userId": "u-1", "event": "e", "traits": {"pad": "' + b"a" * inflated + b'"}}'
    bomb = gzip.compress(plain, compresslevel=9)
    assert len(bomb) < 25 * KB
    before = server.store.events.count()
    response = post(server, kind, content=bomb, headers={"Content-Encoding": "gzip"})
    assert_error(response, 413, "payload_too_large", "body")
    assert server.store.events.count() == before


GZIP_ERRORS = [
    pytest.param(b"this is not gzip", "invalid_gzip", id="not-gzip"),
    pytest.param(b"\x1f\x8b\x08\x00garbage", "invalid_gzip", id="bad-deflate-data"),
    pytest.param(gzip.compress(b'{"userId": "u-1", "event": "e"}')[:-10], "invalid_gzip", id="truncated"),
    pytest.param(gzip.compress(b'{"userId": '), "invalid_json", id="gzipped-bad-json"),
    pytest.param(gzip.compress(b'"just a string"'), "invalid_input", id="gzipped-string"),
    pytest.param(gzip.compress(b""), "invalid_input", id="gzipped-empty"),
    pytest.param(
        gzip.compress(b'{"userId": "u-1", "event": "e"}') + b"trailing junk",
        "invalid_gzip",
        id="trailing-junk",
    ),
]


@pytest.mark.parametrize("kind", ["track", "batch"])
@pytest.mark.parametrize(("content", "code"), GZIP_ERRORS)
def test_a_bad_gzip_body_is_refused(server: Server, kind: str, content: bytes, code: str) -> None:
    before = server.store.events.count()
    assert_error(post(server, kind, content=content, headers={"Content-Encoding": "gzip"}), 400, code, "body")
    assert server.store.events.count() == before


@pytest.mark.parametrize("kind", ["track", "batch"])
@pytest.mark.parametrize("encoding", ["deflate", "br", "zstd", "compress", "gzip, gzip", "x-unknown"])
def test_an_unsupported_content_encoding_is_refused(server: Server, kind: str, encoding: str) -> None:
    before = server.store.events.count()
    response = post(server, kind, valid_body(kind), headers={"Content-Encoding": encoding})
    error = assert_error(response, 400, "invalid_input", "Content-Encoding")
    assert encoding in error["message"]
    assert server.store.events.count() == before


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
    # uvicorn's HTTP parser answers these itself (text/plain) before the app runs; the README says so.
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


WRONG_METHODS = [("GET", f"/v1/{kind}", "POST") for kind in TRACKING]
WRONG_METHODS += [
    ("PUT", "/v1/batch", "POST"),
    ("DELETE", "/v1/track", "POST"),
    ("PATCH", "/v1/identify", "POST"),
]
WRONG_METHODS += [("POST", "/v1/people/u-1", "GET"), ("DELETE", "/v1/people/u-1/events", "GET")]
WRONG_METHODS += [("POST", "/healthz", "GET"), ("POST", "/readyz", "GET"), ("DELETE", "/openapi.json", "GET")]


@pytest.mark.parametrize(("method", "path", "allowed"), WRONG_METHODS)
def test_a_wrong_method_is_a_json_405(server: Server, method: str, path: str, allowed: str) -> None:
    before = server.store.events.count()
    response = server.http.request(method, f"{server.url}{path}", auth=(server.write_key, ""), content=SMALL)
    assert_error(response, 405, "method_not_allowed", None)
    assert allowed in response.headers["allow"]
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
    return {e["messageId"]: e for e in _read_events(fresh, user_id)}


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
    assert [e["properties"] for e in _read_events(fresh, "u-1")] == [{"copy": 1}]

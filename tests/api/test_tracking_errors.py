"""Bad input over real HTTP: each malformed, oversized, hostile or unauthorised request gets a precise 4xx.

The contract (DESIGN.md, "Outside contract"): errors are `{"error": {"code", "message", "field"}}` with a 4xx,
`field` names the offending field exactly (`batch[2].userId`), bad input never causes a 5xx, and a rejected
call never stores anything nor loses what was accepted before. Cases marked `xfail(reason="BUG: ...")` are
known bugs in src/; they flip to failures (strict) once fixed, so the mark can be removed.

The table-driven cases share one live server per backend (`server`, module-scoped): a fresh uvicorn per
case would cost hundreds of server starts. The tests about stored data use conftest's `live_server`.
"""

from __future__ import annotations

import gzip
import json
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
    read_events,
    single_body,
    valid_body,
)

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
    events = {e["type"]: e for e in read_events(server, user_id)}
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
    first, second = read_events(server, composed), read_events(server, decomposed)
    assert [e["userId"] for e in first] == [composed]
    assert [e["userId"] for e in second] == [decomposed]


@pytest.mark.parametrize("field", ["userId", "anonymousId"])
def test_a_255_emoji_id_is_stored_whole(server: Server, field: str) -> None:
    external_id = uuid.uuid4().hex[:8] + "\U0001f600" * 247
    assert len(external_id) == 255
    assert post(server, "track", {field: external_id, "event": "e"}).status_code == 200
    assert [e[field] for e in read_events(server, external_id)] == [external_id]


def test_nul_characters_inside_properties_are_kept(server: Server) -> None:
    user_id = f"nul-{uuid.uuid4().hex[:8]}"
    props = {"a\x00b": "c\x00d", "list": ["\x00"], "\x00": {"\x00": "\x00"}}
    traits = {"email": "x@example.com\x00", "note": "\x00"}
    body = batch_of(
        message("track", userId=user_id, properties=props), message("identify", userId=user_id, traits=traits)
    )
    assert post(server, "batch", body).status_code == 200
    events = {e["type"]: e for e in read_events(server, user_id)}
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
    assert read_events(server, user_id)[0]["properties"]["n"] == 123456789012345678901234567890


@pytest.mark.parametrize(
    "edge", ["\u00a0", "\u3000", "\x1f", "\u2003"], ids=["nbsp", "ideographic", "us", "em"]
)
def test_an_id_with_unicode_spaces_at_its_edges_is_not_altered(server: Server, edge: str) -> None:
    user_id = f"{edge}vip-{uuid.uuid4().hex[:8]}{edge}"
    response = post(server, "track", {"userId": user_id, "event": "e"})
    if response.status_code != 200:  # refusing it with a precise error would honour the contract too
        assert_error(response, 400, "invalid_input", "userId")
        return
    assert [e["userId"] for e in read_events(server, user_id)] == [user_id]


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

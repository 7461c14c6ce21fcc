"""Fuzzing the tracking and people endpoints over real HTTP: any input gets a 200 or a JSON 4xx, never a 5xx.

Each example also checks that nothing is lost or half-stored: after a 4xx the event count is unchanged, and
after a 200 it grew by exactly `stored`. SQLite only (the HTTP layer is the target), and derandomized, so a
failure reproduces. Timestamps stay within 1900-2100 because wider ones hit a known bug, pinned by
`test_an_unrepresentable_timestamp_is_a_400` in test_tracking_errors.py; widen them once it is fixed.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

if TYPE_CHECKING:
    from conftest import LiveServer

KINDS = ("track", "identify", "page", "screen", "group", "alias", "batch")
TYPES = ("track", "identify", "page", "screen", "group", "alias")

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only, for this module: the fuzzing targets the HTTP layer, not the backend."""
    return sqlite_url


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        yield client


# ---- strategies -----------------------------------------------------------------------------------------

# Hostile: any code point, lone surrogates included (they reach the server as \ud800 escapes or as raw
# bytes), any JSON type, ids just around the 255-character limit.
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
long_text = st.text(st.characters(exclude_categories=()), min_size=250, max_size=260)
keys = st.text(st.characters(exclude_categories=()), max_size=8)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
offsets = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12, minutes=-30))]
)
times = st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1), timezones=offsets).map(datetime.isoformat)

# Valid, but of every kind of unicode: these should be stored.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
id_text = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=30
)
good_ids = st.sampled_from(["u-1", "u-2", "anon-1"]) | id_text | st.integers(-(10**6), 10**15)
good_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
good_objects = st.dictionaries(text, good_json, max_size=4)


def mostly(good: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` about four times in five, so that many messages get past validation and are stored."""
    return st.integers(0, 4).flatmap(lambda n: hostile if n == 0 else good)


IDS = mostly(good_ids, st.sampled_from(["", " ", None]) | st.integers() | any_text | long_text | json_values)
NAMES = mostly(id_text | st.sampled_from(["Order Completed", "Home"]), any_text | long_text | json_values)
OBJECTS = mostly(good_objects, json_values)
TIMES = mostly(times, any_text | json_values)
REQUIRED = {
    "track": {"userId": IDS, "event": NAMES},
    "identify": {"userId": IDS},
    "page": {"anonymousId": IDS},
    "screen": {"userId": IDS},
    "group": {"userId": IDS, "groupId": IDS},
    "alias": {"userId": IDS, "previousId": IDS},
}
OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "userId": IDS,
    "anonymousId": IDS,
    "messageId": mostly(st.uuids().map(str) | st.sampled_from(["m-1", "m-2"]), any_text | json_values),
    "name": NAMES,
    "timestamp": TIMES,
    "sentAt": TIMES,
    "properties": OBJECTS,
    "traits": OBJECTS
    | st.fixed_dictionaries({"email": st.sampled_from(["a@example.com", " A@Example.com "])}),
    "context": OBJECTS,
    "integrations": OBJECTS,
    "writeKey": json_values,
    "extra": json_values,
}


def messages(kind: str, *, typed: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Messages of `kind`: required fields mostly present and valid, some optional ones."""
    required = dict(REQUIRED[kind])
    if typed:
        required["type"] = mostly(st.just(kind), json_values)
    optional = {k: v for k, v in OPTIONAL.items() if k not in required}
    return st.fixed_dictionaries(required, optional=optional)


any_message = st.sampled_from(TYPES).flatmap(lambda kind: messages(kind, typed=True))
batches = st.fixed_dictionaries(
    {"batch": mostly(st.lists(any_message, max_size=4), json_values)},
    optional={"sentAt": TIMES, "context": OBJECTS, "integrations": OBJECTS},
)


def encode(value: Any, how: str) -> bytes:
    """JSON, \\u-escaped or raw UTF-8 (surrogates as the invalid bytes they make), optionally gzipped."""
    if how.startswith("ascii"):
        raw = json.dumps(value, ensure_ascii=True).encode()
    else:
        raw = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return gzip.compress(raw) if how.endswith("gzip") else raw


@st.composite
def requests(draw: st.DrawFn, kind: str) -> tuple[bytes, dict[str, str]]:
    """A body for /v1/{kind} and its headers: usually message-shaped, sometimes anything at all."""
    shaped = batches if kind == "batch" else messages(kind, typed=False) | messages(kind, typed=True)
    choice = draw(st.sampled_from(["shaped", "shaped", "shaped", "json", "bytes"]))
    how = draw(st.sampled_from(["ascii", "utf-8", "ascii+gzip", "utf-8+gzip"]))
    if choice == "bytes":
        content = draw(st.binary(max_size=300))
        headers = {"Content-Encoding": "gzip"} if draw(st.booleans()) else {}
        return content, headers
    value = draw(shaped if choice == "shaped" else json_values)
    headers = {"Content-Encoding": "gzip"} if how.endswith("gzip") else {}
    return encode(value, how), headers


# ---- assertions ------------------------------------------------------------------------------------------


def check_answer(response: httpx.Response, before: int, after: int) -> None:
    """A 200 that stored exactly what it says, or a JSON 4xx that stored nothing."""
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code == 200:
        assert body["success"] is True
        assert body["stored"] + body["duplicates"] == body["received"]
        assert after == before + body["stored"]
        return
    assert 400 <= response.status_code < 500, response.text
    assert list(body) == ["error"]
    error = body["error"]
    assert set(error) == {"code", "message", "field"}
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert error["field"] is None or isinstance(error["field"], str)
    assert after == before, "a rejected call stored something"


# ---- the fuzz tests --------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_any_body_gets_a_200_or_a_json_4xx(live_server: LiveServer, http: httpx.Client, kind: str) -> None:
    @settings(FUZZ, derandomize=False)
    @seed(KINDS.index(kind))  # one fixed seed per endpoint: reproducible, yet not the same examples
    @given(request=requests(kind))
    def fuzz(request: tuple[bytes, dict[str, str]]) -> None:
        content, headers = request
        before = live_server.store.events.count()
        response = http.post(
            f"{live_server.url}/v1/{kind}",
            content=content,
            headers={"Content-Type": "application/json", **headers},
            auth=(live_server.write_key, ""),
        )
        check_answer(response, before, live_server.store.events.count())

    fuzz()


# Printable ASCII only: non-ASCII header bytes hit a known bug, pinned in test_tracking_errors.py.
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
authorizations = header_text | st.tuples(
    st.sampled_from(["Basic ", "Bearer ", "basic ", ""]), header_text
).map("".join)


@pytest.mark.slow
@given(authorization=authorizations, encoding=header_text | st.sampled_from(["gzip", "identity", ""]))
@FUZZ
def test_any_header_gets_a_json_4xx(
    live_server: LiveServer, http: httpx.Client, authorization: str, encoding: str
) -> None:
    headers = {"Authorization": authorization.strip(), "Content-Encoding": encoding.strip()}
    before = live_server.store.events.count()
    response = http.post(
        f"{live_server.url}/v1/track", content=b'{"userId": "u-1", "event": "e"}', headers=headers
    )
    check_answer(response, before, live_server.store.events.count())
    assert response.status_code != 200 or encoding.strip().lower() in ("gzip", "identity", "")


@pytest.mark.slow
# No "/": an id with a slash can't be addressed (a known bug, pinned in test_tracking_errors.py).
@given(
    person=st.text(st.characters(exclude_characters="/"), max_size=40),
    suffix=st.sampled_from(["", "/events", "/events?limit=5"]),
)
@FUZZ
def test_any_person_id_gets_a_200_or_a_json_404(
    live_server: LiveServer, http: httpx.Client, person: str, suffix: str
) -> None:
    response = http.get(
        f"{live_server.url}/v1/people/{quote(person, safe='')}{suffix}",
        headers={"Authorization": f"Bearer {live_server.admin_key}"},
    )
    assert response.status_code in (200, 404), response.text
    if response.status_code == 404:
        assert response.json()["error"]["code"] == "not_found"

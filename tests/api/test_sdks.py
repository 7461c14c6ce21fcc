"""The official Segment and RudderStack Python SDKs against a live server, read back over the admin API."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics import Client as SegmentClient

if TYPE_CHECKING:
    from conftest import LiveServer

pytestmark = pytest.mark.slow


class AnalyticsClient(Protocol):
    """What both SDKs' clients offer (RudderStack's is a fork of Segment's)."""

    def track(self, *args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]: ...
    def identify(self, *args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]: ...
    def page(self, *args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]: ...
    def group(self, *args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]: ...
    def alias(self, *args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]: ...
    def flush(self) -> None: ...
    def join(self) -> None: ...


@dataclass
class Errors:
    """An SDK `on_error` callback that remembers what it was told."""

    seen: list[str] = field(default_factory=list)

    def __call__(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        self.seen.append(f"{type(error).__name__}: {error} ({len(batch)} messages)")


# Builds a client: (write key, host, errors, sync_mode, extra settings) -> client.
ClientFactory = Callable[..., AnalyticsClient]


def _segment(gzip: bool) -> ClientFactory:
    def make(write_key: str, host: str, on_error: Errors, sync_mode: bool, **extra: Any) -> AnalyticsClient:
        return SegmentClient(  # type: ignore[no-any-return]
            write_key,
            host=host,
            on_error=on_error,
            sync_mode=sync_mode,
            gzip=gzip,
            max_retries=1,
            timeout=10,
            **extra,
        )

    return make


def _rudderstack(
    write_key: str, host: str, on_error: Errors, sync_mode: bool, **extra: Any
) -> AnalyticsClient:
    # Its default is gzip on, like the SDK's own documentation shows.
    return RudderClient(  # type: ignore[no-any-return]
        write_key, host=host, on_error=on_error, sync_mode=sync_mode, max_retries=1, timeout=10, **extra
    )


SDKS = [
    pytest.param(_segment(gzip=False), "segment", id="segment"),
    pytest.param(_segment(gzip=True), "segment", id="segment-gzip"),
    pytest.param(_rudderstack, "rudderstack", id="rudderstack-gzip"),
]


class Admin:
    """The admin API over real HTTP."""

    def __init__(self, server: LiveServer) -> None:
        self._client = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=10
        )

    def person(self, ref: str) -> dict[str, Any]:
        response = self._client.get(f"/v1/people/{ref}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def person_status(self, ref: str) -> int:
        return self._client.get(f"/v1/people/{ref}").status_code

    def events(self, ref: str) -> list[dict[str, Any]]:
        response = self._client.get(f"/v1/people/{ref}/events", params={"limit": 1000})
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def admin(live_server: LiveServer) -> Iterator[Admin]:
    client = Admin(live_server)
    yield client
    client.close()


@contextmanager
def batching_client(
    make: ClientFactory, url: str, write_key: str, errors: Errors, n: int
) -> Iterator[AnalyticsClient]:
    """A queueing client whose consumer sends exactly `n` messages as one /v1/batch call.

    `upload_size=n` makes the consumer post as soon as the n-th message is queued; the interval only
    bounds how long `join()` waits for the consumer thread to notice it should stop.
    """
    client = make(write_key, url, errors, False, upload_size=n, upload_interval=0.5)
    try:
        yield client
    finally:
        client.join()


def _ids(person: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i["kind"], i["value"]) for i in person["ids"]}


def _email_trait(event: dict[str, Any]) -> Any:
    """Where the SDK put the email: Segment at the top (`traits`), RudderStack in `context.traits`."""
    return (event.get("traits") or event.get("context", {}).get("traits") or {}).get("email")


@pytest.mark.parametrize(("make", "library"), SDKS)
def test_sdk_calls_land_and_stitch(
    make: ClientFactory, library: str, live_server: LiveServer, admin: Admin
) -> None:
    """track, page, identify and alias, one blocking call each, read back through the admin API."""
    errors = Errors()
    client = make(live_server.write_key, live_server.url, errors, True)
    run = uuid.uuid4().hex[:8]
    browser, phone, user = f"anon-web-{run}", f"anon-app-{run}", f"user-{run}"
    email = f"ada.{run}@example.com"

    sent: dict[str, dict[str, Any]] = {}
    for ok, message in (
        client.track(
            anonymous_id=browser,
            event="Product Viewed",
            properties={"sku": "85123A", "price": 2.55, "name": "WHITE HANGING HEART T-LIGHT HOLDER"},
        ),
        client.page(anonymous_id=browser, category="Catalog", name="Candles", properties={"path": "/c"}),
        # identify ties the browser's anonymous id to the user, and remembers the email.
        client.identify(
            user_id=user, anonymous_id=browser, traits={"email": email.upper(), "name": "Ada", "size": 34}
        ),
        # A second device, anonymous at first ...
        client.track(anonymous_id=phone, event="Product Added", properties={"sku": "71053"}),
        # ... which the shop then says is the same person.
        client.alias(previous_id=phone, user_id=user),
    ):
        assert ok
        sent[message["messageId"]] = message
    assert errors.seen == []

    person = admin.person(user)
    assert person["event_count"] == 5
    assert person["event_counts"] == {"track": 2, "page": 1, "identify": 1, "alias": 1}
    assert {("user_id", user), ("anonymous_id", browser), ("anonymous_id", phone)} <= _ids(person)
    assert [(m["outcome"], m["reason"]) for m in person["merges"]] == [("merged", "alias")]
    assert person["first_seen"] is not None and person["last_seen"] >= person["first_seen"]
    # Every id leads to the same person.
    for ref in (browser, phone):
        assert admin.person(ref)["person_id"] == person["person_id"], ref

    events = {e["messageId"]: e for e in admin.events(user)}
    assert events.keys() == sent.keys()
    by_type = {e["type"]: e for e in events.values() if e["type"] != "track"}
    tracks = {e["event"]: e for e in events.values() if e["type"] == "track"}
    assert tracks["Product Viewed"]["properties"] == {
        "sku": "85123A",
        "price": 2.55,
        "name": "WHITE HANGING HEART T-LIGHT HOLDER",
    }
    assert tracks["Product Added"]["anonymousId"] == phone
    assert by_type["page"]["name"] == "Candles"
    assert by_type["page"]["category"] == "Catalog"
    assert by_type["alias"]["previousId"] == phone
    assert by_type["alias"]["userId"] == user
    assert _email_trait(by_type["identify"]) == email.upper()
    for event in events.values():
        assert event["context"]["library"]["name"] == "analytics-python"
        assert event["receivedAt"] is not None

    # The email is a lookup id too, whichever way the SDK sent it (RudderStack: in context.traits).
    assert ("email", email) in _ids(person)
    assert admin.person(email)["person_id"] == person["person_id"]


@pytest.mark.parametrize(("make", "library"), SDKS)
def test_sdk_batch_is_flushed_together(
    make: ClientFactory, library: str, live_server: LiveServer, admin: Admin
) -> None:
    """Queued messages go out as one /v1/batch call on flush(), and are stitched within it."""
    run = uuid.uuid4().hex[:8]
    anon, user, household = f"anon-{run}", f"buyer-{run}", f"household-{run}"
    calls: list[tuple[str, dict[str, Any]]] = [
        ("page", {"anonymous_id": anon, "name": "Home"}),
        ("track", {"anonymous_id": anon, "event": "Product Viewed", "properties": {"sku": "22423"}}),
        ("track", {"anonymous_id": anon, "event": "Product Added", "properties": {"sku": "22423"}}),
        ("identify", {"user_id": user, "anonymous_id": anon, "traits": {"first_name": "Grace"}}),
        ("track", {"user_id": user, "event": "Order Completed", "properties": {"revenue": 12.75}}),
        ("group", {"user_id": user, "group_id": household, "traits": {"name": "The Hoppers"}}),
    ]
    message_ids = [f"{library}-{run}-{n}" for n in range(len(calls))]

    def send_all(errors: Errors) -> None:
        with batching_client(make, live_server.url, live_server.write_key, errors, len(calls)) as client:
            for (method, kwargs), message_id in zip(calls, message_ids, strict=True):
                ok, message = getattr(client, method)(message_id=message_id, **kwargs)
                assert ok
                assert message["messageId"] == message_id
            client.flush()

    errors = Errors()
    send_all(errors)
    assert errors.seen == []

    person = admin.person(user)
    assert person["event_count"] == len(calls)
    assert person["event_counts"] == {"page": 1, "track": 3, "identify": 1, "group": 1}
    assert {("user_id", user), ("anonymous_id", anon)} <= _ids(person)
    assert person["merges"] == []  # the anonymous visitor became the user; nobody was merged
    assert admin.person(anon)["person_id"] == person["person_id"]
    events = admin.events(user)
    assert sorted(e["messageId"] for e in events) == sorted(message_ids)
    # One HTTP call: the server stamps every message of a call with the same receivedAt.
    assert len({e["receivedAt"] for e in events}) == 1, [e["receivedAt"] for e in events]
    assert {e["groupId"] for e in events if e["type"] == "group"} == {household}
    revenue = [e["properties"]["revenue"] for e in events if e.get("event") == "Order Completed"]
    assert revenue == [12.75]

    # The SDK resending the same batch (its retry after a lost response) stores nothing new.
    stored_before = live_server.store.events.count()
    resend_errors = Errors()
    send_all(resend_errors)
    assert resend_errors.seen == []
    assert live_server.store.events.count() == stored_before
    assert admin.person(user)["event_count"] == len(calls)


def test_sdk_reports_a_refused_batch_through_on_error(live_server: LiveServer) -> None:
    """The failure path is real too: a wrong write key reaches on_error, and nothing is stored."""
    errors = Errors()
    before = live_server.store.events.count()
    with batching_client(
        _segment(gzip=True), live_server.url, "sk_write_not-a-real-key", errors, 1
    ) as client:
        client.track(user_id="u-refused", event="Product Viewed")
        client.flush()
    assert len(errors.seen) == 1, errors.seen
    assert "401" in errors.seen[0]
    assert live_server.store.events.count() == before

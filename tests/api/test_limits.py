"""Rate limits over real HTTP: each limit answers 429 with Retry-After; tracking at normal rates passes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from tests.conftest import serving

from shopkeeper.privacy.tokens import issue_link, signing_secret
from shopkeeper.settings import Settings
from shopkeeper.store import Store


@contextmanager
def _server(store: Store, **limits: float) -> Iterator[tuple[str, dict[str, str], tuple[str, str]]]:
    """A live server with these limits: its URL, admin headers, and write-key Basic auth."""
    settings = Settings(database_url=str(store.engine.url), **limits)  # type: ignore[arg-type]
    write_key, _ = store.keys.create("write", name="tests")
    admin_key, _ = store.keys.create("admin", name="tests")
    with serving(store, settings=settings) as url:
        yield url, {"Authorization": f"Bearer {admin_key}"}, (write_key, "")


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["retry-after"]) >= 1


def _statuses(calls: int, send: Any) -> list[int]:
    return [send().status_code for _ in range(calls)]


# Rates so low that no token comes back while a test runs, however slow the machine: a bucket holds one.
SLOW = 0.01


def test_admin_routes_are_limited_per_key_and_address(store: Store) -> None:
    with _server(store, rate_limit_admin=SLOW) as (url, admin, _):
        assert httpx.get(f"{url}/v1/experiments", headers=admin).status_code == 200
        _refused(httpx.get(f"{url}/v1/experiments", headers=admin))
        assert httpx.get(f"{url}/healthz").status_code == 200  # health checks are never limited


def test_tracking_is_limited_per_write_key(store: Store) -> None:
    with _server(store, rate_limit_tracking=SLOW) as (url, _, write):
        event = {"userId": "u1", "event": "Viewed"}
        assert httpx.post(f"{url}/v1/track", auth=write, json=event).status_code == 200
        _refused(httpx.post(f"{url}/v1/track", auth=write, json=event))


def test_a_link_is_limited_and_so_are_failed_links(store: Store) -> None:
    with _server(store, rate_limit_link=SLOW) as (url, admin, write):
        assert httpx.post(f"{url}/v1/identify", auth=write, json={"userId": "ann"}).status_code == 200
        token = issue_link(store, signing_secret(store, Settings()), "ann")
        mine = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{url}/v1/people/me", headers=mine).status_code == 200
        _refused(httpx.get(f"{url}/v1/people/me", headers=mine))
        assert httpx.get(f"{url}/v1/experiments", headers=admin).status_code == 200  # admin goes on
    with _server(store, rate_limit_failed_links=2) as (url, admin, write):
        bad = {"Authorization": f"Bearer {token[:-4]}AAAA"}
        assert _statuses(2, lambda: httpx.get(f"{url}/v1/people/me", headers=bad)) == [401, 401]
        _refused(httpx.get(f"{url}/v1/people/me", headers=bad))  # guessing links stops here
        assert httpx.get(f"{url}/v1/experiments", headers=admin).status_code == 200  # admin goes on


def test_failed_authentication_is_limited_strictly(store: Store) -> None:
    with _server(store, rate_limit_failed_auth=3) as (url, admin, write):
        wrong = {"Authorization": "Bearer sk_admin_guessed"}
        assert _statuses(3, lambda: httpx.get(f"{url}/v1/experiments", headers=wrong)) == [401] * 3
        _refused(httpx.get(f"{url}/v1/experiments", headers=wrong))
        # The address must wait, whatever it sends next: a guess that is right learns nothing more.
        _refused(httpx.get(f"{url}/v1/experiments", headers=admin))
        _refused(httpx.post(f"{url}/v1/track", auth=write, json={"userId": "u1", "event": "x"}))


def test_tracking_at_a_normal_rate_is_not_limited(store: Store) -> None:
    """The default limits let a busy server-side client through: 150 batch calls back to back."""
    with _server(store) as (url, _, write), httpx.Client(auth=write) as client:
        for call in range(150):
            batch = [{"type": "track", "userId": f"u{call}", "event": "Viewed"} for _ in range(20)]
            assert client.post(f"{url}/v1/batch", json={"batch": batch}).status_code == 200

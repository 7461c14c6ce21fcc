"""A database that dies, freezes or fills up answers 503 store_unavailable with Retry-After, never 500,
and never 200 for what was not stored (issue 12, items 4 and 9).

PostgreSQL goes through a TCP proxy that the test kills or freezes; SQLite fills up through
`PRAGMA max_page_count`, which makes it answer "database or disk is full" as a full disk would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select
from tests.conftest import serving_app
from tests.tcp_proxy import TcpProxy, proxy_to

from shopkeeper.api.app import create_app
from shopkeeper.settings import Settings
from shopkeeper.store import Store
from shopkeeper.store.schema import events

FAST = {"database_statement_timeout": 1.0, "database_connect_timeout": 1.0, "database_pool_timeout": 1.0}
ANSWER_WITHIN = 30.0  # seconds: a guard against a hang, far above the timeouts' bound (about 3 s)


@dataclass
class Shop:
    client: httpx.Client
    write_key: str
    proxy: TcpProxy
    direct: Store

    def track(self, number: int) -> Any:
        return self.client.post(
            "/v1/track",
            auth=(self.write_key, ""),
            json={"userId": f"u-{number}", "event": "Product Viewed", "messageId": f"m-{number}"},
        )

    def stored(self) -> int:
        with self.direct.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(events)) or 0)


@pytest.fixture
def shop(postgres_url: str) -> Iterator[Shop]:
    direct = Store.open(postgres_url)
    write_key, _ = direct.keys.create("write", name="tests")
    with proxy_to(postgres_url) as proxy:
        settings = Settings(database_url=proxy.url_for(postgres_url), **FAST)
        with (
            serving_app(create_app(settings), settings) as url,
            httpx.Client(base_url=url, timeout=60) as client,
        ):
            yield Shop(client, write_key, proxy, direct)
    direct.close()


def answered(call: Any) -> Any:
    """`call()`'s result, failing the test if it has not come back within ANSWER_WITHIN seconds."""
    found: list[Any] = []
    worker = threading.Thread(target=lambda: found.append(call()), daemon=True)
    worker.start()
    worker.join(ANSWER_WITHIN)
    assert found, f"no answer within {ANSWER_WITHIN} s: the request hangs on the database"
    return found[0]


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "store_unavailable"
    assert int(response.headers["Retry-After"]) > 0


def assert_recovers(shop: Shop, number: int) -> None:
    """After the fault ends, requests are stored again (the first may still meet a dead pooled
    connection, which answers 503 as well)."""
    statuses = [answered(lambda: shop.track(number).status_code) for _ in range(5)]
    assert 200 in statuses, statuses
    assert set(statuses) <= {200, 503}, statuses


@pytest.mark.slow
@pytest.mark.postgres
def test_a_killed_database_answers_503_and_readyz_tells_nothing_of_it(shop: Shop) -> None:
    assert shop.track(1).status_code == 200
    shop.proxy.kill()

    assert_unavailable(answered(lambda: shop.track(2)))
    ready = answered(lambda: shop.client.get("/readyz"))
    assert_unavailable(ready)
    # The driver's words (host, port, "server closed the connection") stay out of the answer.
    text = ready.text.lower()
    assert str(shop.proxy.port) not in text and "127.0.0.1" not in text and "connection" not in text

    shop.proxy.revive()
    assert_recovers(shop, 3)
    assert shop.stored() == 2  # message 1 and message 3; message 2 was refused, and not stored


@pytest.mark.slow
@pytest.mark.postgres
def test_a_frozen_database_answers_503_within_the_timeouts(shop: Shop) -> None:
    assert shop.track(1).status_code == 200
    shop.proxy.freeze()

    assert_unavailable(answered(lambda: shop.track(2)))  # on a pooled connection: the statement deadline
    assert_unavailable(answered(lambda: shop.track(3)))

    shop.proxy.thaw()
    assert_recovers(shop, 4)
    stored = shop.stored()
    assert stored in (2, 3), stored  # 1 and 4; 2 or 3 only if its commit reached the server before the 503


def test_a_full_sqlite_disk_answers_503(tmp_path: Any) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'shop.db'}")
    write_key, _ = store.keys.create("write", name="tests")
    store.engine.dispose()
    with store.engine.connect() as conn:
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())

    @event.listens_for(store.engine, "connect")
    def _no_room(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count={pages}")  # the disk is full: no page to grow by

    store.engine.dispose()
    settings = Settings(database_url=str(store.engine.url))
    with (
        serving_app(create_app(settings, store=store), settings) as url,
        httpx.Client(base_url=url) as client,
    ):
        properties = {"blob": "x" * 30_000}
        response = client.post(
            "/v1/batch",
            auth=(write_key, ""),
            json={"batch": [{"type": "track", "userId": "u", "event": "E", "properties": properties}] * 10},
        )
    assert_unavailable(response)
    store.close()

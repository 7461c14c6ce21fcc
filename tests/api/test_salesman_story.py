"""Issue 15's acceptance story, end to end over real HTTP and real SMTP, on SQLite and PostgreSQL.

The salesman who called when the grey pair came in: the shop has grey and blue trousers in sizes 32 to
36, the grey 34 out of stock. Ann states her size, 34, views the grey 34 and buys the blue; staff record
"call me when the grey comes in". The grey 34 comes back: one staff task, naming the grey trousers in 34,
with provenance. Bob, who does not want staff to call, gets one email instead. The stock flaps: nothing
more is sent, each flap a `duplicate` in the suppression ledger. Ann pauses contact: the next moment (a
price drop on the trousers she viewed) is suppressed as `paused`.

A live uvicorn server runs the moment engine and the outbox worker in the background, as `shopkeeper
serve` does; its SMTP server is a real aiosmtpd sink that files each message in a folder.
"""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.conftest import serving

from shopkeeper.channels.email import MailFolderSink
from shopkeeper.content import EXAMPLES
from shopkeeper.settings import Settings
from shopkeeper.store import Store

pytestmark = pytest.mark.slow

WAIT_SECONDS = 15.0  # a bound for a shared machine; the "within a second" is a benchmark's goal
SIZES = range(32, 37)


def trousers(colour: str, stock34: int, price: float = 120.0) -> dict[str, Any]:
    return {
        "title": f"{colour.title()} wool trousers",
        "category": "Clothing > Trousers",
        "price": price,
        "currency": "GBP",
        "attributes": {"colour": colour, "url": f"https://shop.example/trousers-{colour}"},
        "variants": [
            {
                "variant_id": f"{colour}-{size}",
                "attributes": {"size": str(size), "colour": colour},
                "stock": stock34 if size == 34 else 4,
            }
            for size in SIZES
        ],
    }


def wait_for(what: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"still {found!r} after {timeout} s")
        time.sleep(0.05)


@dataclass
class Shopfront:
    """The shop's side of the story: its admin and write keys on a live server, and its mail folder."""

    url: str
    admin_key: str
    write_key: str
    mail: Path

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(
            method,
            f"{self.url}{path}",
            content=None if body is None else orjson.dumps(body),
            headers={"Authorization": f"Bearer {self.admin_key}", "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 200, (method, path, response.text)
        return response.json()

    def track(self, user: str, event: str, properties: dict[str, Any]) -> None:
        body = {"userId": user, "event": event, "properties": properties}
        response = httpx.post(f"{self.url}/v1/track", auth=(self.write_key, ""), json=body, timeout=30)
        assert response.status_code == 200, response.text

    def stock_grey_34(self, units: int, price: float = 120.0) -> None:
        self.admin("PUT", "/v1/items/trousers-grey", trousers("grey", units, price))

    def tasks(self, user: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.admin("GET", f"/v1/tasks?person={user}&status=all")["items"]
        return found

    def outbox(self, user: str, status: str | None = None) -> list[dict[str, Any]]:
        query = f"/v1/outbox?person={user}" + (f"&status={status}" if status else "")
        found: list[dict[str, Any]] = self.admin("GET", query)["items"]
        return found

    def emails(self) -> list[EmailMessage]:
        found = []
        for path in sorted(self.mail.glob("*.eml")):
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
        return found

    def customer(self, user: str) -> None:
        """They sign up, state size 34 in the preference centre, view the grey 34, and buy the blue 34."""
        response = httpx.post(
            f"{self.url}/v1/identify",
            auth=(self.write_key, ""),
            json={"userId": user, "traits": {"email": f"{user}@example.com"}},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        self.admin("PUT", f"/v1/people/{user}/preferences", {"size": "34", "first_name": user.title()})
        self.track(user, "Product Viewed", {"product_id": "trousers-grey", "variant_id": "grey-34"})
        order = {"product_id": "trousers-blue", "variant_id": "blue-34", "price": 120.0, "quantity": 1}
        self.track(
            user,
            "Order Completed",
            {"order_id": f"{user}-1", "revenue": 120.0, "currency": "GBP", "products": [order]},
        )

    def staff_record_the_wish(self, user: str) -> dict[str, Any]:
        """Once the view made an (observed) wish, staff record theirs: it is the same wish."""
        wait_for(lambda: self.admin("GET", f"/v1/people/{user}/wishes")["items"])
        wish: dict[str, Any] = self.admin(
            "POST",
            f"/v1/people/{user}/wishes",
            {
                "item_id": "trousers-grey",
                "attributes": {"colour": "grey"},
                "source": "staff",
                "note": "call me when the grey comes in",
            },
        )
        return wish


@pytest.fixture
def shop(store: Store, tmp_path: Path) -> Iterator[Shopfront]:
    sink = MailFolderSink(tmp_path / "mail")
    sink.start()
    write_key, _ = store.keys.create("write", name="shop front")
    admin_key, _ = store.keys.create("admin", name="back office")
    settings = Settings(
        database_url=str(store.engine.url),
        serve_worker=True,
        quiet_hours="",
        holdout_share=0,
        smtp_host="127.0.0.1",
        smtp_port=sink.port,
        mail_from="shop@example.com",
        shop_name="Grey & Co",
        rate_limit_failed_auth=0,
        rate_limit_failed_links=0,
    )
    try:
        with serving(store, settings=settings) as url:
            yield Shopfront(url, admin_key, write_key, tmp_path / "mail")
    finally:
        sink.stop()


def test_the_salesman_calls_once_when_the_grey_pair_comes_in(shop: Shopfront) -> None:
    for template in ("back_in_stock", "price_drop"):  # the rules' templates, the shipped examples
        shop.admin(
            "PUT", f"/v1/templates/{template}", orjson.loads((EXAMPLES / f"{template}.json").read_bytes())
        )
    shop.stock_grey_34(0)
    shop.admin("PUT", "/v1/items/trousers-blue", trousers("blue", 4))

    # Ann: staff may call her.
    shop.customer("ann")
    wish = shop.staff_record_the_wish("ann")
    assert (wish["variant_id"], wish["source"], wish["note"]) == (
        "grey-34",
        "staff",
        "call me when the grey comes in",
    )
    assert {e["source"] for e in wish["evidence"]} == {"observed", "staff"}
    [only] = shop.admin("GET", "/v1/people/ann/wishes")["items"]
    assert only["id"] == wish["id"]

    shop.stock_grey_34(3)
    [task] = wait_for(lambda: shop.tasks("ann"))
    assert (task["channel"], task["rule"], task["status"]) == ("staff", "back_in_stock", "open")
    assert (task["item_id"], task["variant_id"]) == ("trousers-grey", "grey-34")
    assert "Grey wool trousers" in task["text"] and "34" in task["text"]
    context = task["context"]
    assert "Grey wool trousers" in context["say"] and "34" in context["say"]
    [size] = [fact for fact in context["facts"] if fact["key"] == "size"]
    assert (size["value"], size["source"]) == ("34", "stated")
    assert size["label"].startswith("size 34, you told us, "), size
    assert [v["item_id"] for v in context["history"]["viewed"]] == ["trousers-grey"]
    assert [b["item_id"] for b in context["history"]["bought"]] == ["trousers-blue"]
    assert context["moment"]["wish"]["source"] == "staff"
    assert shop.emails() == []

    # Bob does not want staff to call: the same moment is one email.
    shop.stock_grey_34(0)
    shop.customer("bob")
    shop.admin("PUT", "/v1/people/bob/consent", {"staff_outreach": False})
    shop.staff_record_the_wish("bob")
    shop.stock_grey_34(3)
    [sent] = wait_for(lambda: shop.outbox("bob", "sent"))
    [mail] = wait_for(shop.emails)
    assert (sent["channel"], sent["item_id"], sent["variant_id"]) == ("email", "trousers-grey", "grey-34")
    assert mail["To"] == "bob@example.com" and mail["Message-ID"] == sent["message_id"]
    assert mail["Subject"] == "Grey wool trousers is back in size 34"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = mail.get_body(("plain",))
    assert text is not None and "you asked us to tell you" in text.get_content()
    assert shop.tasks("bob") == []
    # Ann's wish was answered in this episode already: the second restock is a duplicate for her.
    [ann_duplicate] = wait_for(lambda: shop.outbox("ann", "suppressed"))
    assert ann_duplicate["reason"] == "duplicate"
    assert len(shop.tasks("ann")) == 1

    # The stock flaps: nothing more is sent, and each restock is a duplicate in the ledger.
    for units in (0, 2, 0, 3):
        shop.stock_grey_34(units)
    for user, expected in (("ann", 3), ("bob", 2)):

        def all_suppressed(user: str = user, n: int = expected) -> bool:
            return len(shop.outbox(user, "suppressed")) == n

        wait_for(all_suppressed)
        assert {r["reason"] for r in shop.outbox(user, "suppressed")} == {"duplicate"}
    time.sleep(0.5)  # anything else the worker would do, it does now
    assert len(shop.tasks("ann")) == 1 and len(shop.emails()) == 1
    assert [len(shop.outbox(user, "sent")) for user in ("ann", "bob")] == [1, 1]
    assert shop.outbox("ann", "pending") == [] and shop.outbox("bob", "pending") == []

    # Ann pauses contact; the grey trousers she viewed drop in price: that moment is suppressed, paused.
    shop.admin("PUT", "/v1/people/ann/preferences", {"pause_until": "2099-01-01"})
    shop.stock_grey_34(3, price=90.0)
    [paused] = wait_for(lambda: [r for r in shop.outbox("ann", "suppressed") if r["rule"] == "price_drop"])
    assert (paused["reason"], paused["item_id"]) == ("paused", "trousers-grey")
    assert paused["reason_text"] == "they asked us to pause contact"
    # Bob viewed them too, and did not pause; he had his one message of the day already.
    [bobs] = wait_for(lambda: [r for r in shop.outbox("bob") if r["rule"] == "price_drop"])
    assert (bobs["status"], bobs["reason"]) == ("suppressed", "budget")
    time.sleep(0.5)
    assert len(shop.emails()) == 1 and len(shop.tasks("ann")) == 1
    exported = shop.admin("GET", "/v1/people/ann/export")
    assert {(m["rule"], m["status"], m["reason"]) for m in exported["messages"]} >= {
        ("back_in_stock", "sent", None),
        ("back_in_stock", "suppressed", "duplicate"),
        ("price_drop", "suppressed", "paused"),
    }

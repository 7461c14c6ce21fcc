"""Moments over real HTTP, on SQLite and PostgreSQL, as issue 15's outside contract says: rules, a
person's wishes (the admin key, or their own link), the outbox with its dead-letter replay, the staff
inbox's tasks, one-click unsubscribe, and every refusal, each bad field named.

The servers that make moments run the moment engine and the outbox worker in the background
(`serve_worker=True`), as `shopkeeper serve` does, with a real SMTP server (aiosmtpd) behind them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from tests.api.tracking_support import Server
from tests.conftest import serving

from shopkeeper.channels.email import FreePortController
from shopkeeper.content import EXAMPLES
from shopkeeper.settings import Settings
from shopkeeper.store import Store

# What the contract promises in every item of GET /v1/tasks and GET /v1/outbox.
CONTRACT_FIELDS = {
    "id",
    "person",
    "rule",
    "channel",
    "status",
    "reason",
    "created_at",
    "item_id",
    "variant_id",
    "text",
    "context",
}
WAIT_SECONDS = 15.0  # a bound, not a timing goal: the worker usually takes well under a second


def grey_trousers(stock34: int, price: float = 120.0) -> dict[str, Any]:
    return {
        "title": "Grey trousers",
        "category": "Clothing > Trousers",
        "price": price,
        "currency": "GBP",
        "attributes": {"colour": "grey", "url": "https://shop.example/grey"},
        "variants": [
            {
                "variant_id": f"grey-{size}",
                "attributes": {"size": str(size), "colour": "grey"},
                "stock": stock34 if size == 34 else 5,
            }
            for size in range(32, 37)
        ],
    }


def call(url: str, key: str | None, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    content = None if body is None else orjson.dumps(body)
    return httpx.request(method, f"{url}{path}", content=content, headers=headers, timeout=30)


def assert_error(response: httpx.Response, status: int, field: str | None, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field, error
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error


def wait_for(what: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    """`what()` once it is truthy, polled; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"still {found!r} after {timeout} s")
        time.sleep(0.05)


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts; `refuse` makes it answer 550."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.refuse = False

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse:
            return "550 5.1.1 mailbox unavailable"
        self.messages.append(envelope.original_content or b"")
        return "250 OK"


@dataclass
class Shopfront:
    """A live server that makes and delivers moments, with its keys and its SMTP server's mailbox."""

    url: str
    admin: str
    write: str
    store: Store
    mailbox: Mailbox

    def admin_call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return call(self.url, self.admin, method, path, body)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        response = self.admin_call(method, path, body)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    def track(self, kind: str, body: dict[str, Any]) -> None:
        response = httpx.post(f"{self.url}/v1/{kind}", auth=(self.write, ""), json=body, timeout=30)
        assert response.status_code == 200, response.text

    def person(self, user: str, *, staff: bool = True) -> None:
        """Someone with an email and a stated size 34; `staff=False` withdraws staff outreach."""
        self.track("identify", {"userId": user, "traits": {"email": f"{user}@example.com"}})
        self.ok("PUT", f"/v1/people/{user}/preferences", {"size": "34", "first_name": user.title()})
        if not staff:
            self.ok("PUT", f"/v1/people/{user}/consent", {"staff_outreach": False})

    def link(self, user: str) -> str:
        token: str = self.ok("POST", f"/v1/people/{user}/link")["token"]
        return token

    def items(self, path: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.ok("GET", path)["items"]
        return found


@pytest.fixture
def shopfront(store: Store, tmp_path: Path) -> Iterator[Shopfront]:
    mailbox = Mailbox()
    controller = FreePortController(mailbox, hostname="127.0.0.1", port=0, server_hostname="localhost")
    controller.start()
    write_key, _ = store.keys.create("write", name="tests")
    admin_key, _ = store.keys.create("admin", name="tests")
    settings = Settings(
        database_url=str(store.engine.url),
        rate_limit_failed_auth=0,
        rate_limit_failed_links=0,
        serve_worker=True,
        quiet_hours="",
        holdout_share=0,
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        mail_from="shop@example.com",
        outbox_retry_seconds=0.2,
    )
    try:
        with serving(store, settings=settings) as url:
            front = Shopfront(url, admin_key, write_key, store, mailbox)
            template = orjson.loads((EXAMPLES / "back_in_stock.json").read_bytes())
            front.ok("PUT", "/v1/templates/back_in_stock", template)
            yield front
    finally:
        controller.stop()


def restock_for_two(front: Shopfront) -> None:
    """Ann (staff may call her) and Bob (no staff outreach) each wish for the grey 34; it comes back."""
    front.ok("PUT", "/v1/items/grey", grey_trousers(0))
    front.person("ann")
    front.person("bob", staff=False)
    for user, source in (("ann", "staff"), ("bob", "stated")):
        front.ok("POST", f"/v1/people/{user}/wishes", {"item_id": "grey", "source": source})
    front.ok("PUT", "/v1/items/grey", grey_trousers(3))
    wait_for(lambda: front.items("/v1/tasks?person=ann"))
    wait_for(lambda: front.items("/v1/outbox?person=bob&status=sent"))


# ---- the staff inbox and the outbox ---------------------------------------------------------------


def test_a_restock_answers_one_task_and_one_email_each_with_the_contract_fields(
    shopfront: Shopfront,
) -> None:
    restock_for_two(shopfront)
    [task] = shopfront.items("/v1/tasks?person=ann")
    assert set(task) >= CONTRACT_FIELDS, sorted(CONTRACT_FIELDS - set(task))
    assert (task["person"], task["rule"], task["channel"], task["status"], task["reason"]) == (
        "ann",
        "back_in_stock",
        "staff",
        "open",
        None,
    )
    assert (task["item_id"], task["variant_id"]) == ("grey", "grey-34")
    assert "Grey trousers" in task["text"] and "34" in task["text"]
    assert datetime.fromisoformat(task["created_at"]) <= datetime.now(UTC)
    [staff_row] = shopfront.items("/v1/outbox?person=ann")
    assert set(staff_row) >= CONTRACT_FIELDS
    assert (staff_row["channel"], staff_row["status"], staff_row["text"]) == ("staff", "sent", task["text"])
    [email_row] = shopfront.items("/v1/outbox?person=bob")
    assert set(email_row) >= CONTRACT_FIELDS
    assert (email_row["person"], email_row["rule"], email_row["channel"]) == ("bob", "back_in_stock", "email")
    assert (email_row["status"], email_row["reason"]) == ("sent", None)
    assert (email_row["item_id"], email_row["variant_id"]) == ("grey", "grey-34")
    assert "Grey trousers" in email_row["text"] and "34" in email_row["subject"]
    assert email_row["context"]["moment"] == "back_in_stock"
    [raw] = shopfront.mailbox.messages
    assert f"Message-ID: {email_row['message_id']}".encode() in raw
    assert b"To: bob@example.com" in raw
    assert shopfront.items("/v1/tasks?person=bob") == []
    assert shopfront.items("/v1/outbox?person=ann&status=suppressed") == []
    everyone = shopfront.items("/v1/outbox")
    assert {r["person"] for r in everyone} == {"ann", "bob"}


def test_a_task_is_claimed_snoozed_and_done_once_and_the_outcome_is_an_event(shopfront: Shopfront) -> None:
    restock_for_two(shopfront)
    [task] = shopfront.items("/v1/tasks?person=ann")
    base = f"/v1/tasks/{task['id']}"
    claimed = shopfront.ok("POST", f"{base}/claim", {"assignee": "mia", "store": "soho"})
    assert (claimed["status"], claimed["assignee"], claimed["store"]) == ("claimed", "mia", "soho")
    assert [t["id"] for t in shopfront.items("/v1/tasks?assignee=mia")] == [task["id"]]
    assert [t["id"] for t in shopfront.items("/v1/tasks?store=soho")] == [task["id"]]
    assert shopfront.items("/v1/tasks?store=leeds") == []
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    snoozed = shopfront.ok("POST", f"{base}/snooze", {"until": later})
    assert snoozed["status"] == "snoozed"
    assert datetime.fromisoformat(snoozed["snoozed_until"]) == datetime.fromisoformat(later)
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    assert shopfront.items(f"/v1/tasks?due_before={soon.replace('+', '%2B')}") == []
    done = shopfront.ok("POST", f"{base}/done", {"outcome": "purchased", "note": "bought the grey, 34"})
    assert (done["status"], done["outcome"], done["note"]) == ("done", "purchased", "bought the grey, 34")
    assert_error(
        shopfront.admin_call("POST", f"{base}/done", {"outcome": "contacted"}), 409, "id", "conflict"
    )
    assert_error(shopfront.admin_call("POST", f"{base}/claim", {"assignee": "mia"}), 409, "id", "conflict")
    assert shopfront.items("/v1/tasks?person=ann") == []  # the default is the open ones
    assert [t["status"] for t in shopfront.items("/v1/tasks?person=ann&status=all")] == ["done"]
    assert [t["id"] for t in shopfront.items("/v1/tasks?status=done")] == [task["id"]]

    def outcome_event() -> list[dict[str, Any]]:
        events = shopfront.ok("GET", "/v1/people/ann/events")["events"]
        return [e for e in events if e.get("event") == "Staff Task Completed"]

    [event] = wait_for(outcome_event)
    assert event["properties"]["outcome"] == "purchased" and event["properties"]["task_id"] == task["id"]


def test_bad_task_calls_are_400_or_404_naming_the_field(shopfront: Shopfront) -> None:
    restock_for_two(shopfront)
    [task] = shopfront.items("/v1/tasks?person=ann")
    base = f"/v1/tasks/{task['id']}"
    post = shopfront.admin_call
    assert_error(post("POST", "/v1/tasks/999999/claim", {"assignee": "mia"}), 404, "id", "not_found")
    assert_error(post("POST", "/v1/tasks/999999/done", {"outcome": "contacted"}), 404, "id", "not_found")
    assert_error(post("POST", "/v1/tasks/999999/snooze", {"until": "2099-01-01T00:00:00Z"}), 404, "id")
    assert_error(post("POST", f"{base}/done", {"outcome": "sold"}), 400, "outcome", "invalid_input")
    assert_error(post("POST", f"{base}/done", {}), 400, "outcome")
    assert_error(post("POST", f"{base}/done", {"outcome": "contacted", "mood": "good"}), 400, "mood")
    assert_error(post("POST", f"{base}/done", {"outcome": "contacted", "note": "n" * 2001}), 400, "note")
    assert_error(post("POST", f"{base}/done", ["contacted"]), 400, "body")
    assert_error(post("POST", f"{base}/claim", {}), 400, "assignee")
    assert_error(post("POST", f"{base}/claim", {"assignee": 7}), 400, "assignee")
    assert_error(post("POST", f"{base}/claim", {"assignee": "  "}), 400, "assignee")
    assert_error(post("POST", f"{base}/snooze", {"until": "tomorrow"}), 400, "until")
    assert_error(post("POST", f"{base}/snooze", {"until": "2001-01-01T00:00:00Z"}), 400, "until")
    assert_error(post("POST", "/v1/tasks/not-a-number/claim", {"assignee": "mia"}), 400, "task_id")
    # Regression: an id past what the database holds was a 500 (found by benchmarks/api_fuzz.py).
    huge = 2**64
    assert_error(post("POST", f"/v1/tasks/{huge}/claim", {"assignee": "mia"}), 400, "task_id")
    assert_error(post("POST", f"/v1/tasks/{huge}/done", {"outcome": "contacted"}), 400, "task_id")
    assert_error(post("POST", f"/v1/outbox/{huge}/replay"), 400, "outbox_id")
    assert_error(post("DELETE", f"/v1/people/ann/wishes/{huge}"), 400, "wish_id")
    assert_error(post("POST", "/v1/tasks/0/claim", {"assignee": "mia"}), 400, "task_id")
    assert_error(post("GET", "/v1/tasks?status=lost"), 400, "status")
    assert_error(post("GET", "/v1/tasks?person=nobody-known"), 404, "id")
    assert_error(post("GET", "/v1/outbox?status=lost"), 400, "status")
    assert_error(post("GET", "/v1/outbox?person=nobody-known"), 404, "id")
    assert post("GET", "/v1/outbox?limit=0").status_code == 400
    assert [t["status"] for t in shopfront.items("/v1/tasks?person=ann")] == ["open"]  # untouched


def test_a_failed_email_is_replayed_from_the_dead_letter_list(shopfront: Shopfront) -> None:
    shopfront.mailbox.refuse = True
    shopfront.ok("PUT", "/v1/items/grey", grey_trousers(0))
    shopfront.person("cat", staff=False)
    shopfront.ok("POST", "/v1/people/cat/wishes", {"item_id": "grey", "source": "stated"})
    shopfront.ok("PUT", "/v1/items/grey", grey_trousers(3))
    [failed] = wait_for(lambda: shopfront.items("/v1/outbox?person=cat&status=failed"))
    assert failed["reason"].startswith("550") and failed["channel"] == "email"
    assert shopfront.mailbox.messages == []
    shopfront.mailbox.refuse = False
    assert shopfront.ok("POST", f"/v1/outbox/{failed['id']}/replay") == {"replayed": 1}
    [sent] = wait_for(lambda: shopfront.items("/v1/outbox?person=cat&status=sent"))
    assert sent["id"] == failed["id"] and sent["message_id"] == failed["message_id"]
    assert len(shopfront.mailbox.messages) == 1
    assert shopfront.ok("POST", f"/v1/outbox/{failed['id']}/replay") == {"replayed": 0}  # it went
    assert shopfront.ok("POST", "/v1/outbox/999999/replay") == {"replayed": 0}


def test_one_click_unsubscribe_withdraws_email_consent_and_a_get_does_not(shopfront: Shopfront) -> None:
    shopfront.person("dan")
    token = shopfront.link("dan")

    def email_consent() -> bool:
        granted: bool = shopfront.ok("GET", "/v1/people/dan")["consent"]["email_marketing"]["granted"]
        return granted

    assert email_consent() is True
    page = httpx.get(f"{shopfront.url}/unsubscribe", params={"token": token}, timeout=30)
    assert page.status_code == 200 and 'method="post"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert email_consent() is True, "a GET (a mail scanner following the link) must not unsubscribe"
    done = httpx.post(
        f"{shopfront.url}/unsubscribe",
        params={"token": token},
        data={"List-Unsubscribe": "One-Click"},
        timeout=30,
    )
    assert done.status_code == 200 and "unsubscribed" in done.text
    assert email_consent() is False
    assert shopfront.ok("GET", "/v1/people/dan")["consent"]["staff_outreach"]["granted"] is True
    for bad in ("junk", token[:-4] + "abcd", ""):
        refused = httpx.post(f"{shopfront.url}/unsubscribe", params={"token": bad}, timeout=30)
        assert_error(refused, 401, "token", "unauthenticated")
    assert_error(httpx.post(f"{shopfront.url}/unsubscribe", timeout=30), 400, "token", "invalid_input")
    too_long = {"token": "t" * 5000}
    for method in ("GET", "POST"):
        answer = httpx.request(method, f"{shopfront.url}/unsubscribe", params=too_long, timeout=30)
        assert_error(answer, 400, "token", "invalid_input")


# ---- rules, wishes and credentials, on one server per backend (no worker) ---------------------------

RULE = {"trigger": "back_in_stock", "channels": ["staff", "email"], "template": "back_in_stock"}


def admin(server: Server, method: str, path: str, body: Any = None) -> httpx.Response:
    return call(server.url, server.admin_key, method, path, body)


def test_rules_are_saved_read_and_listed_with_the_defaults(server: Server) -> None:
    name = f"grey-{uuid.uuid4().hex[:8]}"
    listed = {r["name"]: r for r in admin(server, "GET", "/v1/moments/rules").json()["items"]}
    assert {"back_in_stock", "price_drop", "milestone"} <= set(listed)
    assert listed["price_drop"]["origin"] == "default" and listed["price_drop"]["enabled"] is True
    assert set(listed["back_in_stock"]["last_30_days"]) == {"sent", "suppressed", "pending", "failed"}
    body = {**RULE, "delay_seconds": 60, "priority": 90, "params": {"dedupe_days": 3}}
    saved = admin(server, "PUT", f"/v1/moments/rules/{name}", body)
    assert saved.status_code == 200, saved.text
    assert saved.json()["name"] == name and saved.json()["origin"] == "http"
    read = admin(server, "GET", f"/v1/moments/rules/{name}").json()
    assert (read["trigger"], read["channels"], read["template"]) == (
        "back_in_stock",
        ["staff", "email"],
        "back_in_stock",
    )
    assert (read["delay_seconds"], read["priority"], read["params"]) == (60, 90, {"dedupe_days": 3})
    assert read["recent"] == []
    assert name in {r["name"] for r in admin(server, "GET", "/v1/moments/rules").json()["items"]}
    switched_off = admin(server, "PUT", "/v1/moments/rules/price_drop", {**RULE, "enabled": False})
    assert switched_off.status_code == 200
    again = {r["name"]: r for r in admin(server, "GET", "/v1/moments/rules").json()["items"]}
    assert again["price_drop"]["enabled"] is False and again["price_drop"]["origin"] == "http"
    assert_error(admin(server, "GET", "/v1/moments/rules/no-such-rule"), 404, "name", "not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({**RULE, "trigger": "birthday"}, "trigger"),
        ({"channels": ["staff"]}, "trigger"),
        ({"trigger": "back_in_stock"}, "channels"),
        ({**RULE, "channels": []}, "channels"),
        ({**RULE, "channels": ["sms"]}, "channels.0"),
        ({**RULE, "channels": ["staff", "staff"]}, "channels"),
        ({"trigger": "price_drop", "channels": ["email"]}, "template"),
        ({**RULE, "priority": 1000}, "priority"),
        ({**RULE, "delay_seconds": -1}, "delay_seconds"),
        ({**RULE, "colour": "grey"}, "colour"),
        ({**RULE, "params": {"dedupe_days": "often"}}, "params.dedupe_days"),
        ({**RULE, "params": {"min_percent": 10}}, "params.min_percent"),
        ({"trigger": "milestone", "channels": ["staff"]}, "params"),
        ({**RULE, "audience": "vip"}, "audience"),
    ],
)
def test_a_bad_rule_is_a_400_naming_its_field(server: Server, body: Any, field: str) -> None:
    assert_error(admin(server, "PUT", "/v1/moments/rules/bad-rule", body), 400, field, "invalid_input")
    assert admin(server, "GET", "/v1/moments/rules/bad-rule").status_code == 404


def test_a_bad_rule_name_or_json_is_a_400(server: Server) -> None:
    assert_error(admin(server, "PUT", "/v1/moments/rules/Not%20OK", RULE), 400, "name")
    assert_error(admin(server, "GET", "/v1/moments/rules/Not%20OK"), 400, "name")
    broken = httpx.put(
        f"{server.url}/v1/moments/rules/x",
        content=b'{"trigger": ',
        headers={"Authorization": f"Bearer {server.admin_key}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert broken.status_code == 400 and broken.json()["error"]["field"] == "body"


def wisher(server: Server) -> str:
    """A person with a stated size 34, and the grey trousers in the catalog (grey 34 out of stock)."""
    user = f"w-{uuid.uuid4().hex[:8]}"
    assert admin(server, "PUT", "/v1/items/grey", grey_trousers(0)).status_code == 200
    tracked = httpx.post(
        f"{server.url}/v1/identify", auth=(server.write_key, ""), json={"userId": user}, timeout=30
    )
    assert tracked.status_code == 200
    assert admin(server, "PUT", f"/v1/people/{user}/preferences", {"size": "34"}).status_code == 200
    return user


def test_the_admin_records_reads_and_drops_wishes(server: Server) -> None:
    user = wisher(server)
    staff = {"item_id": "grey", "attributes": {"colour": "grey"}, "source": "staff", "note": "call me"}
    recorded = admin(server, "POST", f"/v1/people/{user}/wishes", staff)
    assert recorded.status_code == 200, recorded.text
    wish = recorded.json()
    assert (wish["item_id"], wish["variant_id"], wish["source"], wish["status"]) == (
        "grey",
        "grey-34",  # the stated size made the wish one variant
        "staff",
        "open",
    )
    assert wish["note"] == "call me" and [e["source"] for e in wish["evidence"]] == ["staff"]
    stated = admin(server, "POST", f"/v1/people/{user}/wishes", {"item_id": "grey", "source": "stated"})
    assert stated.json()["id"] == wish["id"] and stated.json()["source"] == "stated"  # one wish
    [listed] = admin(server, "GET", f"/v1/people/{user}/wishes").json()["items"]
    assert [e["source"] for e in listed["evidence"]] == ["staff", "stated"]
    later = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    other = {"item_id": "grey", "variant_id": "grey-36", "source": "observed", "expires_at": later}
    expiring = admin(server, "POST", f"/v1/people/{user}/wishes", other).json()
    assert datetime.fromisoformat(expiring["expires_at"]) == datetime.fromisoformat(later)
    dropped = admin(server, "DELETE", f"/v1/people/{user}/wishes/{wish['id']}")
    assert dropped.status_code == 200 and dropped.json()["status"] == "dropped"
    statuses = {
        w["id"]: w["status"] for w in admin(server, "GET", f"/v1/people/{user}/wishes").json()["items"]
    }
    assert statuses == {wish["id"]: "dropped", expiring["id"]: "open"}
    assert_error(admin(server, "DELETE", f"/v1/people/{user}/wishes/999999"), 404, "wish_id", "not_found")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ([], 400, "body"),
        ({"item_id": "grey"}, 400, "source"),
        ({"source": "stated"}, 400, "item_id"),
        ({"item_id": "grey", "source": "rumour"}, 400, "source"),
        ({"item_id": 5, "source": "stated"}, 400, "item_id"),
        ({"item_id": "grey", "source": "stated", "size": "34"}, 400, "size"),
        ({"item_id": "grey", "source": "stated", "attributes": {"size": 34}}, 400, "attributes.size"),
        ({"item_id": "grey", "source": "stated", "expires_at": "soon"}, 400, "expires_at"),
        ({"item_id": "grey", "source": "stated", "expires_at": "2001-01-01T00:00:00Z"}, 400, "expires_at"),
        ({"item_id": "grey", "source": "stated", "note": "n" * 1001}, 400, "note"),
        ({"item_id": "no-such-item", "source": "stated"}, 404, "item_id"),
        ({"item_id": "grey", "variant_id": "grey-99", "source": "stated"}, 404, "variant_id"),
    ],
)
def test_a_bad_wish_is_refused_naming_its_field(server: Server, body: Any, status: int, field: str) -> None:
    user = wisher(server)
    assert_error(admin(server, "POST", f"/v1/people/{user}/wishes", body), status, field)
    assert admin(server, "GET", f"/v1/people/{user}/wishes").json() == {"items": []}


def test_a_wish_for_someone_unknown_is_404(server: Server) -> None:
    wisher(server)
    body = {"item_id": "grey", "source": "stated"}
    assert_error(admin(server, "POST", "/v1/people/nobody-known/wishes", body), 404, "id")
    assert_error(admin(server, "GET", "/v1/people/nobody-known/wishes"), 404, "id")


def test_a_persons_link_reaches_their_own_wishes_and_nothing_of_the_shops(server: Server) -> None:
    user, other = wisher(server), wisher(server)
    token = admin(server, "POST", f"/v1/people/{user}/link").json()["token"]
    others = admin(server, "POST", f"/v1/people/{other}/link").json()["token"]
    theirs = admin(server, "POST", f"/v1/people/{other}/wishes", {"item_id": "grey", "source": "staff"})
    mine = call(server.url, token, "POST", "/v1/people/me/wishes", {"item_id": "grey", "source": "stated"})
    assert mine.status_code == 200, mine.text
    assert mine.json()["source"] == "stated" and mine.json()["variant_id"] == "grey-34"
    for source in ("staff", "observed"):
        refused = call(
            server.url, token, "POST", "/v1/people/me/wishes", {"item_id": "grey", "source": source}
        )
        assert_error(refused, 400, "source")
    assert_error(call(server.url, token, "POST", "/v1/people/me/wishes", {"item_id": "grey"}), 400, "source")
    by_id = call(server.url, token, "GET", f"/v1/people/{user}/wishes")
    assert [w["id"] for w in by_id.json()["items"]] == [mine.json()["id"]]
    assert call(server.url, token, "GET", "/v1/people/me/wishes").json() == by_id.json()
    for method, path, body in (
        ("GET", f"/v1/people/{other}/wishes", None),
        ("POST", f"/v1/people/{other}/wishes", {"item_id": "grey", "source": "stated"}),
        ("DELETE", f"/v1/people/{other}/wishes/{theirs.json()['id']}", None),
    ):
        assert_error(call(server.url, token, method, path, body), 403, "id")
    # Someone else's wish, named through my own link, is not mine to drop.
    assert_error(
        call(server.url, token, "DELETE", f"/v1/people/me/wishes/{theirs.json()['id']}"), 404, "wish_id"
    )
    assert call(server.url, others, "GET", "/v1/people/me/wishes").json()["items"][0]["status"] == "open"
    dropped = call(server.url, token, "DELETE", f"/v1/people/me/wishes/{mine.json()['id']}")
    assert dropped.status_code == 200 and dropped.json()["status"] == "dropped"


SHOP_ROUTES = [
    ("GET", "/v1/moments/rules", None),
    ("GET", "/v1/moments/rules/back_in_stock", None),
    ("PUT", "/v1/moments/rules/sneaky", RULE),
    ("GET", "/v1/outbox", None),
    ("GET", "/v1/outbox?person=me", None),
    ("POST", "/v1/outbox/1/replay", None),
    ("GET", "/v1/tasks", None),
    ("GET", "/v1/tasks?person=me", None),
    ("POST", "/v1/tasks/1/claim", {"assignee": "me"}),
    ("POST", "/v1/tasks/1/snooze", {"until": "2099-01-01T00:00:00Z"}),
    ("POST", "/v1/tasks/1/done", {"outcome": "contacted"}),
]


@pytest.mark.parametrize(("method", "path", "body"), SHOP_ROUTES)
def test_a_link_and_a_write_key_reach_none_of_the_shops_moment_routes(
    server: Server, method: str, path: str, body: Any
) -> None:
    user = wisher(server)
    token = admin(server, "POST", f"/v1/people/{user}/link").json()["token"]
    link = call(server.url, token, method, path, body)
    assert link.status_code in (401, 403), link.text
    assert link.json()["error"]["field"] == "Authorization"
    write = call(server.url, server.write_key, method, path, body)
    assert_error(write, 403, "Authorization", "forbidden")
    as_basic = httpx.request(
        method, f"{server.url}{path}", auth=(server.write_key, ""), json=body, timeout=30
    )
    assert as_basic.status_code in (401, 403), as_basic.text
    assert call(server.url, None, method, path, body).status_code == 401
    assert admin(server, "GET", "/v1/moments/rules/sneaky").status_code == 404, "a refused PUT saved a rule"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "/wishes", None),
        ("POST", "/wishes", {"item_id": "grey", "source": "stated"}),
        ("DELETE", "/wishes/1", None),
    ],
)
def test_a_write_key_reaches_no_ones_wishes(server: Server, method: str, suffix: str, body: Any) -> None:
    user = wisher(server)
    assert_error(
        call(server.url, server.write_key, method, f"/v1/people/{user}{suffix}", body), 403, "Authorization"
    )
    assert call(server.url, None, method, f"/v1/people/{user}{suffix}", body).status_code == 401
    assert admin(server, "GET", f"/v1/people/{user}/wishes").json() == {"items": []}

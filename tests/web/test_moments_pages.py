"""The moments page and the staff inbox over HTTP: who may see them, what they show against the API's own
figures, and claim, snooze and done (each audited, each refused clearly when it cannot be done)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import pytest
from tests.web.support import LiveDashboard

from shopkeeper.moments.respect import WORDS
from shopkeeper.store import Store
from shopkeeper.store.engine import write_transaction

pytestmark = pytest.mark.slow
HTMX = {"HX-Request": "true"}


def _admin(dashboard: LiveDashboard) -> httpx.Client:
    raw, _ = dashboard.store.keys.create("admin", name="moments page tests")
    client = httpx.Client(base_url=dashboard.url, headers={"Authorization": f"Bearer {raw}"}, timeout=30)
    dashboard.clients.append(client)
    return client


def _task(store: Store, task_id: int = 1) -> Any:
    with store.engine.connect() as conn:
        return store.outbox.task(conn, task_id)


def _audits(store: Store, action: str) -> list[Any]:
    return [e for e in store.users.audit_entries(limit=50, actor_prefix="user ") if e.action == action]


def _suppress(store: Store, ref: str, reason: str) -> None:
    """A moment of the price_drop rule held back for `ref` with `reason`, made an hour ago."""
    now = datetime.now(UTC) - timedelta(hours=1)
    with write_transaction(store.engine) as conn:
        person = store.identities.find_person(ref, conn)
        store.outbox.add(
            conn,
            {
                "person_id": person,
                "rule": "price_drop",
                "trigger": "price_drop",
                "channel": "email",
                "status": "suppressed",
                "reason": reason,
                "dedupe": f"test:{ref}:{reason}",
                "priority": 60,
                "transactional": False,
                "created_at": now,
                "due_at": now,
            },
        )


def _post(client: httpx.Client, path: str, data: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
    return client.post(path, data={"csrf": client.csrf, **(data or {})}, **kw)  # type: ignore[attr-defined]


# ---- who may see what ------------------------------------------------------------------------------


def test_the_moments_pages_are_for_marketers_and_the_inbox_for_staff(dashboard: LiveDashboard) -> None:
    staff, marketer, owner = (dashboard.client(r) for r in ("staff", "marketer", "owner"))
    assert staff.get("/dashboard/moments").status_code == 403
    assert staff.get("/dashboard/moments/back_in_stock").status_code == 403
    assert "for marketers and above" in staff.get("/dashboard/moments").text
    for client in (marketer, owner):
        assert client.get("/dashboard/moments").status_code == 200
        assert client.get("/dashboard/moments/back_in_stock").status_code == 200
    for client in (staff, marketer, owner):
        assert client.get("/dashboard/inbox").status_code == 200
    nobody = httpx.get(f"{dashboard.url}/dashboard/inbox")
    assert nobody.status_code == 303 and nobody.headers["location"].startswith("/dashboard/login")
    refused = httpx.post(f"{dashboard.url}/dashboard/inbox/1/claim", headers=HTMX)
    assert refused.status_code == 401 and refused.headers["HX-Redirect"].startswith("/dashboard/login")
    assert _task(dashboard.store).status == "open"


def test_an_unknown_or_malformed_rule_is_a_page_saying_so(dashboard: LiveDashboard) -> None:
    marketer = dashboard.client("marketer")
    missing = marketer.get("/dashboard/moments/no_such_rule")
    assert missing.status_code == 404 and "no moment rule named &#39;no_such_rule&#39;" in missing.text
    malformed = marketer.get("/dashboard/moments/Not%20A%20Rule")
    assert malformed.status_code == 400 and "a rule name is 1 to 64" in malformed.text


# ---- the moments page against the API --------------------------------------------------------------


def test_each_rule_shows_its_moments_by_status_and_reason_as_the_api_counts_them(
    dashboard: LiveDashboard,
) -> None:
    _suppress(dashboard.store, "17850", "budget")
    _suppress(dashboard.store, "17841", "budget")
    api = {r["name"]: r for r in _admin(dashboard).get("/v1/moments/rules").json()["items"]}
    page = dashboard.client("marketer").get("/dashboard/moments").text
    assert set(api) == {"back_in_stock", "price_drop", "milestone"}
    for name, rule in api.items():
        section = _section(page, name)
        assert ("on" if rule["enabled"] else "off") in section
        shown = dict(
            re.findall(r'<th scope="row">(\w+)</th><td class="num"><span[^>]*>([\d,]+)</span>', section)
        )
        assert int(shown.get("sent", 0)) == rule["last_30_days"]["sent"]
        assert int(shown.get("failed", 0)) == rule["last_30_days"]["failed"]
        waiting = sum(int(shown.get(s, 0)) for s in ("pending", "held", "sending"))
        assert waiting == rule["last_30_days"]["pending"]
        assert int(shown.get("suppressed", 0)) == sum(rule["last_30_days"]["suppressed"].values())
    price = _section(page, "price_drop")
    assert api["price_drop"]["last_30_days"]["suppressed"] == {"budget": 2}
    assert WORDS["budget"] in price and ">2</span></td></tr>" in price
    assert 'href="/dashboard/people/17850"' in price and 'href="/dashboard/people/17841"' in price


def test_the_demo_s_second_moment_shows_what_became_of_it_and_why(dashboard: LiveDashboard) -> None:
    """The demo's email moment for 17841 is held in quiet hours, or sent, by the time of day it ran."""
    [moment] = _admin(dashboard).get("/v1/outbox", params={"person": "17841"}).json()["items"]
    page = dashboard.client("marketer").get("/dashboard/moments").text
    row = next(r for r in re.findall(r"<tr>.*?</tr>", page, re.S) if "/dashboard/people/17841" in r)
    assert f">{moment['status']}</span>" in row
    if moment["reason"]:
        assert moment["reason_text"] in unescape(row) and f"<code>{moment['reason']}</code>" in row


def test_a_rule_s_page_shows_its_settings_and_who_it_can_reach(dashboard: LiveDashboard) -> None:
    admin = _admin(dashboard)
    body = {
        "trigger": "milestone",
        "channels": ["staff"],
        "params": {"orders": [3]},
        "where": {"trait": "country", "equals": "United Kingdom"},
    }
    assert admin.put("/v1/moments/rules/uk_third_order", json=body).status_code == 200
    api = admin.get("/v1/moments/rules/uk_third_order").json()
    page = dashboard.client("marketer").get("/dashboard/moments/uk_third_order").text
    assert "<h1>Moment rule uk_third_order</h1>" in page
    assert "people who have country United Kingdom" in page
    assert f'title="people in its audience and condition now">{api["reach"]["size"]:,}</span>' in page
    assert "Set by</dt><dd>the API" in page


# ---- the inbox ---------------------------------------------------------------------------------------


def test_the_inbox_shows_each_task_with_its_context_as_the_api_gives_it(dashboard: LiveDashboard) -> None:
    [task] = _admin(dashboard).get("/v1/tasks").json()["items"]
    context = task["context"]
    page = unescape(dashboard.client("staff").get("/dashboard/inbox").text)
    card = page[page.index('id="task-1"') :]
    assert context["why_now"] in card and context["say"] in card
    for fact in context["facts"]:
        assert fact["provenance"] in card and f"({fact['age_days']} days ago)" in card
    assert context["persona"]["name"] in card and context["persona"]["rule"] in card
    for bought in context["history"]["bought"]:
        assert bought["title"] in card
    for pick in context["next_items"]:
        assert pick["title"] in card and pick["reason"] in card
    assert 'href="/dashboard/people/17850"' in card


def test_staff_claim_snooze_and_complete_a_task_each_audited(dashboard: LiveDashboard) -> None:
    staff = dashboard.client("staff")
    claimed = _post(staff, "/dashboard/inbox/1/claim")
    assert claimed.status_code == 303
    assert claimed.headers["location"] == "/dashboard/inbox?task=1&did=claim#task-1"
    task = _task(dashboard.store)
    assert (task.status, task.assignee) == ("claimed", dashboard.emails["staff"])
    page = staff.get(claimed.headers["location"]).text
    assert "You claimed this task" in page and "Claimed by you" in page

    snoozed = _post(staff, "/dashboard/inbox/1/snooze", {"for": "2h"}, headers=HTMX)
    assert snoozed.status_code == 200 and "<html" not in snoozed.text
    assert 'id="task-1"' in snoozed.text and "Snoozed" in snoozed.text
    task = _task(dashboard.store)
    until = task.snoozed_until.replace(tzinfo=task.snoozed_until.tzinfo or UTC)
    assert task.status == "snoozed" and abs(until - datetime.now(UTC) - timedelta(hours=2)) < timedelta(
        minutes=1
    )

    done = _post(
        staff, "/dashboard/inbox/1/done", {"outcome": "purchased", "note": "bought two\r\nat the till"}
    )
    assert done.status_code == 303
    [api] = _admin(dashboard).get("/v1/tasks", params={"status": "done"}).json()["items"]
    assert (api["outcome"], api["note"]) == ("purchased", "bought two\nat the till")

    person = _task(dashboard.store).person_id
    for action in ("claim_task", "snooze_task", "done_task"):
        [entry] = _audits(dashboard.store, action)
        assert entry.person_id == person and entry.actor.endswith("(staff)")
        assert dashboard.emails["staff"] not in str(entry.detail)
    assert _audits(dashboard.store, "done_task")[0].detail["outcome"] == "purchased"


def test_a_task_another_member_of_staff_claimed_is_not_yours(dashboard: LiveDashboard) -> None:
    staff, marketer = dashboard.client("staff"), dashboard.client("marketer")
    assert _post(marketer, "/dashboard/inbox/1/claim").status_code == 303
    assert 'id="task-1"' not in staff.get("/dashboard/inbox").text
    everyone = marketer.get("/dashboard/inbox").text
    assert "Claimed by you" in everyone and 'id="task-1"' in everyone

    again = _post(staff, "/dashboard/inbox/1/claim", headers=HTMX)
    assert again.status_code == 409 and "someone else&#39;s now" in again.text and "<html" not in again.text
    closed = _post(staff, "/dashboard/inbox/1/done", {"outcome": "contacted"})
    assert (
        closed.status_code == 409
        and "someone else&#39;s now" in closed.text
        and "<h1>Inbox</h1>" in closed.text
    )
    assert _post(staff, "/dashboard/inbox/1/snooze", {"for": "tomorrow"}).status_code == 409
    task = _task(dashboard.store)
    assert (task.status, task.assignee) == ("claimed", dashboard.emails["marketer"])
    assert _audits(dashboard.store, "done_task") == []


def test_a_colleague_s_task_shows_who_has_it_to_marketers(dashboard: LiveDashboard) -> None:
    staff, owner = dashboard.client("staff"), dashboard.client("owner")
    assert _post(staff, "/dashboard/inbox/1/claim").status_code == 303
    page = owner.get("/dashboard/inbox").text
    assert "Claimed by colleagues" in page and f"claimed by {dashboard.emails['staff']}" in page
    assert _post(owner, "/dashboard/inbox/1/claim", headers=HTMX).status_code == 409
    assert _post(owner, "/dashboard/inbox/1/done", {"outcome": "unreachable"}).status_code == 303
    assert _task(dashboard.store).outcome == "unreachable"


def test_what_cannot_be_done_says_why_and_changes_nothing(dashboard: LiveDashboard) -> None:
    staff = dashboard.client("staff")
    no_token = staff.post("/dashboard/inbox/1/claim", data={})
    assert no_token.status_code == 403 and "stale or came from another site" in no_token.text
    bad = _post(staff, "/dashboard/inbox/1/done", {"outcome": "maybe"}, headers=HTMX)
    assert bad.status_code == 400 and "Say what happened: contacted, purchased" in bad.text
    assert 'id="task-1"' in bad.text  # the card again, with the message in it
    past = _post(staff, "/dashboard/inbox/1/snooze", {"for": "date", "date": "2001-01-01"})
    assert past.status_code == 400 and "a day in the future" in past.text
    garbled = _post(staff, "/dashboard/inbox/1/snooze", {"for": "date", "date": "next tuesday"})
    assert garbled.status_code == 400 and "like 2027-01-31" in garbled.text
    forever = _post(staff, "/dashboard/inbox/1/snooze", {"for": "date", "date": "2999-01-01"})
    assert forever.status_code == 400 and "at most 365 days" in forever.text
    assert _post(staff, "/dashboard/inbox/1/snooze", {"for": "a while"}).status_code == 400
    assert _task(dashboard.store).status == "open"

    missing = _post(staff, "/dashboard/inbox/999/claim", headers=HTMX)
    assert missing.status_code == 404 and "There is no task 999" in missing.text
    huge = _post(staff, f"/dashboard/inbox/{2**70}/claim")
    assert huge.status_code == 404
    assert _post(staff, "/dashboard/inbox/abc/claim").status_code == 400

    assert _post(staff, "/dashboard/inbox/1/done", {"outcome": "declined"}).status_code == 303
    twice = _post(staff, "/dashboard/inbox/1/done", {"outcome": "contacted"})
    assert twice.status_code == 409 and "already done (outcome: declined)" in twice.text
    assert _task(dashboard.store).outcome == "declined"
    assert len(_audits(dashboard.store, "done_task")) == 1


def _section(page: str, rule: str) -> str:
    start = page.index(f'id="rule-{rule}"')
    end = page.find("</section>", start)
    return page[start:end]

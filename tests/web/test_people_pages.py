"""The people pages over HTTP: search by any id or email, a person's page (told us / we saw / we guessed, with
the figures the API gives), staff limited to the people they serve, export and erase behind a confirmation,
every read and change audited, and ids with "/" or any unicode reaching the right person."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.web.support import LiveDashboard, dashboard_over

from shopkeeper.settings import Settings
from shopkeeper.shop import Shop
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.outbox import SqlOutbox

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def board(demo_shop_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDashboard]:
    """One dashboard for the tests that only read (a read is audited, nothing else changes); the tests
    that change the shop take a fresh `dashboard` each."""
    with dashboard_over(demo_shop_file, tmp_path_factory.mktemp("people-board")) as live:
        yield live


@pytest.fixture
def shop(dashboard: LiveDashboard) -> Iterator[Shop]:
    """The shop's facade over the served store, to set things up as the shop's own code would."""
    with Shop.from_settings(
        Settings(database_url=str(dashboard.store.engine.url)), store=dashboard.store
    ) as opened:
        yield opened


def admin_api(dashboard: LiveDashboard) -> httpx.Client:
    raw, _ = dashboard.store.keys.create("admin", name="people page tests")
    client = httpx.Client(base_url=dashboard.url, headers={"Authorization": f"Bearer {raw}"}, timeout=30)
    dashboard.clients.append(client)
    return client


def section(page: str, css_class: str) -> str:
    """The text of the `<section class="card known {css_class}">` of a person's page."""
    found = re.search(rf'<section class="card known {css_class}".*?</section>', page, re.S)
    assert found, f"no {css_class} section"
    return html.unescape(found.group(0))


def audit_entries(dashboard: LiveDashboard, action: str) -> list[Any]:
    return [e for e in dashboard.store.users.audit_entries(limit=200) if e.action == action]


def user_id_of(dashboard: LiveDashboard, role: str) -> int:
    from shopkeeper.privacy.accounts import Accounts  # noqa: PLC0415

    return next(u.id for u in Accounts(dashboard.store).list() if u.email == dashboard.emails[role])


# ---- search -------------------------------------------------------------------------------------------


def test_search_finds_a_person_by_id_its_start_email_and_number(board: LiveDashboard) -> None:
    client = board.client("marketer")
    whole = client.get("/dashboard/people", params={"q": "17850"})
    assert whole.status_code == 200
    assert 'href="/dashboard/people/17850"' in whole.text and "1 person matching" in whole.text
    start = client.get("/dashboard/people", params={"q": "1785"})
    assert 'href="/dashboard/people/17850"' in start.text
    assert 'href="/dashboard/people/17841"' not in start.text  # 1784... does not start with 1785
    email = client.get("/dashboard/people", params={"q": "  CUSTOMER-17841@Example.COM "})
    assert 'href="/dashboard/people/17841"' in email.text and "customer-17841@example.com" in email.text
    by_start = client.get("/dashboard/people", params={"q": "Customer-1784"})
    assert 'href="/dashboard/people/17841"' in by_start.text
    number = board.store.identities.find_person("17850")
    assert (
        'href="/dashboard/people/17850"' in client.get("/dashboard/people", params={"q": f"#{number}"}).text
    )


def test_an_empty_or_unknown_search_says_what_to_type(board: LiveDashboard) -> None:
    client = board.client("marketer")
    empty = client.get("/dashboard/people")
    assert empty.status_code == 200 and "Type a customer id (like 17850)" in empty.text
    unknown = client.get("/dashboard/people", params={"q": "<script>nobody</script>"})
    assert unknown.status_code == 200
    assert "No one matches" in unknown.text and "&lt;script&gt;nobody&lt;/script&gt;" in unknown.text
    assert "<script>nobody" not in unknown.text
    too_long = client.get("/dashboard/people", params={"q": "x" * 300})
    assert too_long.status_code == 400 and "at most 255 characters" in too_long.text
    nul = client.get("/dashboard/people", params={"q": "a\x00b"})
    assert nul.status_code == 400 and "NUL" in nul.text
    assert client.get("/dashboard/people", params={"erased": "many"}).status_code == 400


def test_htmx_gets_only_the_results(board: LiveDashboard) -> None:
    client = board.client("marketer")
    fragment = client.get("/dashboard/people", params={"q": "17850"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and 'href="/dashboard/people/17850"' in fragment.text


def test_staff_find_only_the_people_they_serve(board: LiveDashboard) -> None:
    staff = board.client("staff")
    listed = staff.get("/dashboard/people")  # no query: the people they serve
    assert listed.status_code == 200 and 'href="/dashboard/people/17850"' in listed.text
    assert 'href="/dashboard/people/17850"' in staff.get("/dashboard/people", params={"q": "17850"}).text
    # 22 customers' ids start with 178 and sort before 17850: the start of an id finds them all the same
    assert 'href="/dashboard/people/17850"' in staff.get("/dashboard/people", params={"q": "178"}).text
    hidden = staff.get("/dashboard/people", params={"q": "17841"})  # no task for them
    assert hidden.status_code == 200 and "No one you serve matches" in hidden.text
    assert "/dashboard/people/17841" not in hidden.text


def test_a_page_without_a_session_goes_to_the_login_form(board: LiveDashboard) -> None:
    for path in ("/dashboard/people", "/dashboard/people/17850", "/dashboard/people/17850/erase"):
        answer = httpx.get(f"{board.url}{path}")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/dashboard/login?next=")


# ---- a person's page ----------------------------------------------------------------------------------


def test_the_person_page_groups_what_is_known_as_the_api_does(dashboard: LiveDashboard, shop: Shop) -> None:
    shop.state_preferences("17850", {"favourite_colours": ["green"], "size": "M"})
    shop.set_consent("17850", {"email_marketing": False})
    shop.set_consent("17850", {"email_marketing": True})
    page = dashboard.client("marketer").get("/dashboard/people/17850")
    assert page.status_code == 200
    told, saw, guessed = (section(page.text, c) for c in ("told", "saw", "guessed"))
    assert "favourite colours" in told and "green" in told and "counts in full" in told
    assert "we guessed white, red (beaten)" in told  # the guess it beat, with why
    assert "order count" in saw and "34 events" in saw and "a fact: counts in full" in saw
    assert "persona" in guessed and "the persona model" in guessed and "confidence" in guessed
    assert "green" not in guessed and "order count" not in guessed

    api = admin_api(dashboard)
    person = api.get("/v1/people/17850").json()
    by_source: dict[str, int] = {}
    for trait in person["traits"]:
        by_source[trait["source"]] = by_source.get(trait["source"], 0) + 1
    for css, source in (("told", "stated"), ("saw", "observed"), ("guessed", "inferred")):
        n = by_source.get(source, 0)
        assert f"{n} trait{'s' if n != 1 else ''}, with where each came from" in section(page.text, css)
    export = api.get("/v1/people/17850/export").json()
    text = html.unescape(page.text)
    n_events = person["event_count"]
    assert f"Their newest events: {min(50, n_events)} of the {n_events} stored" in text
    assert f"of the {len(export['decisions'])} made for them" in text
    assert f"The consent ledger: {len(export['consent_history'])} changes recorded" in text
    assert len(export["consent_history"]) == 2
    assert text.count('data-label="choice">withdrawn') == 1 and text.count('data-label="choice">allowed') == 1
    messages = [m for m in export["messages"] if m["kind"] == "message"]
    assert f"Moments for them, newest first: {len(messages)}" in text
    assert "This customer asked about the Hand warmer union jack" in text  # the staff task's why


def test_every_read_of_a_person_is_audited_under_the_dashboard_user(board: LiveDashboard) -> None:
    client = board.client("marketer")
    before = len(audit_entries(board, "read_profile"))
    assert client.get("/dashboard/people/17850").status_code == 200
    reads = audit_entries(board, "read_profile")
    assert len(reads) == before + 1
    newest = max(reads, key=lambda e: e.id)
    assert newest.actor == f"user {user_id_of(board, 'marketer')} (marketer)"
    assert newest.person_id == board.store.identities.find_person("17850")


def test_suppressed_moments_show_with_their_reason(board: LiveDashboard) -> None:
    person_id = board.store.identities.find_person("17850")
    now = datetime.now(UTC)
    with write_transaction(board.store.engine) as conn:
        SqlOutbox.add(
            conn,
            {
                "person_id": person_id,
                "rule": "price_drop",
                "trigger": "price_drop",
                "channel": "email",
                "status": "suppressed",
                "reason": "no_consent",
                "dedupe": "test:suppressed:1",
                "priority": 50,
                "transactional": 0,
                "context": {"moment": "price_drop"},
                "created_at": now,
                "due_at": now,
            },
        )
    page = html.unescape(board.client("marketer").get("/dashboard/people/17850").text)
    assert "price_drop" in page and "suppressed</span>: no consent for this channel's purpose" in page


def test_a_person_is_found_by_email_and_by_number_too(board: LiveDashboard) -> None:
    client = board.client("marketer")
    number = board.store.identities.find_person("17841")
    for ref in ("CUSTOMER-17841%40example.com", f"%23{number}"):
        page = client.get(f"/dashboard/people/{ref}")
        assert page.status_code == 200 and "Customer 17841" in page.text


def test_staff_see_the_people_they_serve_and_no_one_else(dashboard: LiveDashboard) -> None:
    staff = dashboard.client("staff")
    assert staff.get("/dashboard/people/17850").status_code == 200  # demo staff task 1 is open
    unserved = staff.get("/dashboard/people/17841")
    unknown = staff.get("/dashboard/people/no-such-person")
    assert unserved.status_code == unknown.status_code == 404
    assert unserved.text == unknown.text  # nothing tells them that 17841 exists
    assert "No one you serve is known by that id" in unserved.text
    with write_transaction(dashboard.store.engine) as conn:  # another staff member takes the task
        SqlOutbox.set_task(conn, 1, datetime.now(UTC), status="claimed", assignee="someone@shop.example")
    assert staff.get("/dashboard/people/17850").status_code == 404
    with write_transaction(dashboard.store.engine) as conn:  # now they hold it
        SqlOutbox.set_task(conn, 1, datetime.now(UTC), assignee=dashboard.emails["staff"])
    assert staff.get("/dashboard/people/17850").status_code == 200
    assert "Export their data" not in staff.get("/dashboard/people/17850").text


# ---- export ---------------------------------------------------------------------------------------------


def test_export_asks_first_then_downloads_the_api_s_export(board: LiveDashboard) -> None:
    client = board.client("marketer")
    confirm = client.get("/dashboard/people/17850/export")
    assert confirm.status_code == 200
    assert 'action="/dashboard/people/17850/export"' in confirm.text and "Download the export" in confirm.text
    assert client.post("/dashboard/people/17850/export", data={}).status_code == 403  # no CSRF token
    download = client.post("/dashboard/people/17850/export", data={"csrf": client.csrf})  # type: ignore[attr-defined]
    assert download.status_code == 200
    person_id = board.store.identities.find_person("17850")
    assert download.headers["content-disposition"] == f'attachment; filename="person-{person_id}.json"'
    assert download.headers["content-type"].startswith("application/json")
    data = orjson.loads(download.content)
    api = admin_api(board).get("/v1/people/17850/export").json()
    assert set(data) == set(api) and len(data["events"]) == len(api["events"]) == 35
    assert data["person"]["person_id"] == person_id
    exports = audit_entries(board, "export")
    assert any(e.actor == f"user {user_id_of(board, 'marketer')} (marketer)" for e in exports)


def test_staff_may_not_export_or_erase(board: LiveDashboard) -> None:
    staff = board.client("staff")
    for path in ("/dashboard/people/17850/export", "/dashboard/people/17850/erase"):
        assert staff.get(path).status_code == 403
        assert staff.post(path, data={"csrf": staff.csrf, "confirm": "17850"}).status_code == 403  # type: ignore[attr-defined]
    assert board.store.identities.find_person("17850") is not None


# ---- erase ----------------------------------------------------------------------------------------------


def test_erase_asks_for_the_id_then_the_person_is_gone(dashboard: LiveDashboard) -> None:
    client = dashboard.client("marketer")
    person_id = dashboard.store.identities.find_person("17841")
    confirm = client.get("/dashboard/people/17841/erase")
    assert confirm.status_code == 200
    assert "This deletes, for good" in confirm.text and "To confirm, type their id" in confirm.text
    assert client.post("/dashboard/people/17841/erase", data={"confirm": "17841"}).status_code == 403
    wrong = client.post("/dashboard/people/17841/erase", data={"csrf": client.csrf, "confirm": "17850"})  # type: ignore[attr-defined]
    assert wrong.status_code == 400
    assert "not one of this person's ids, so nothing was erased" in html.unescape(wrong.text)
    empty = client.post("/dashboard/people/17841/erase", data={"csrf": client.csrf, "confirm": " "})  # type: ignore[attr-defined]
    assert empty.status_code == 400
    assert dashboard.store.identities.find_person("17841") == person_id
    done = client.post("/dashboard/people/17841/erase", data={"csrf": client.csrf, "confirm": "17841"})  # type: ignore[attr-defined]
    assert done.status_code == 303 and done.headers["location"] == f"/dashboard/people?erased={person_id}"
    notice = client.get(done.headers["location"])
    assert f"Person #{person_id} was erased" in notice.text
    assert client.get("/dashboard/people/17841").status_code == 404
    assert "No one matches" in client.get("/dashboard/people", params={"q": "17841"}).text
    assert (
        "No one matches" in client.get("/dashboard/people", params={"q": "customer-17841@example.com"}).text
    )
    assert dashboard.store.identities.find_person("17841") is None
    erased = [e for e in audit_entries(dashboard, "erase") if e.person_id == person_id]
    assert len(erased) == 1 and erased[0].actor == f"user {user_id_of(dashboard, 'marketer')} (marketer)"
    assert erased[0].detail["events"] > 0


def test_the_erased_notice_is_only_shown_for_someone_erased(board: LiveDashboard) -> None:
    person_id = board.store.identities.find_person("17850")
    page = board.client("marketer").get("/dashboard/people", params={"erased": person_id})
    assert "was erased" not in page.text


# ---- hostile ids ----------------------------------------------------------------------------------------


def test_ids_with_slashes_and_unicode_reach_the_right_person(dashboard: LiveDashboard, shop: Shop) -> None:
    odd = ["a/erase", "b/export", "ü/ß 東京", "..", "line\nbreak", "{{ 7*7 }}"]
    for user_id in odd:
        shop.identify(user_id=user_id, traits={"first_name": "Odd"})
    client = dashboard.client("marketer")
    results = client.get("/dashboard/people", params={"q": "a/"})
    assert 'href="/dashboard/people/a%2Ferase"' in results.text
    page = client.get("/dashboard/people/a%2Ferase")  # the page of "a/erase", not the erasure of "a"
    assert page.status_code == 200 and "Customer a/erase" in page.text and "This deletes" not in page.text
    assert client.get("/dashboard/people/b%2Fexport").status_code == 200
    assert "This deletes" in client.get("/dashboard/people/a%2Ferase/erase").text
    unicode = client.get("/dashboard/people/%C3%BC%2F%C3%9F%20%E6%9D%B1%E4%BA%AC")
    assert unicode.status_code == 200 and "Customer ü/ß 東京" in unicode.text
    assert client.get("/dashboard/people/line%0Abreak").status_code == 200
    template = client.get("/dashboard/people/%7B%7B%207%2A7%20%7D%7D")
    assert (
        template.status_code == 200
        and "{{ 7*7 }}" in html.unescape(template.text)
        and ">49<" not in template.text
    )
    dots = client.get("/dashboard/people", params={"q": ".."})  # a browser would resolve /people/.. away
    number = dashboard.store.identities.find_person("..")
    assert f'href="/dashboard/people/%23{number}"' in dots.text
    assert "Customer .." in client.get(f"/dashboard/people/%23{number}").text
    erase = client.post(
        "/dashboard/people/a%2Ferase/erase",
        data={"csrf": client.csrf, "confirm": "a/erase"},  # type: ignore[attr-defined]
    )
    assert erase.status_code == 303 and dashboard.store.identities.find_person("a/erase") is None


def test_bad_addresses_are_pages_with_a_4xx(board: LiveDashboard) -> None:
    client = board.client("marketer")
    invalid = client.get("/dashboard/people/%FF%FE")
    assert invalid.status_code == 400 and "not valid UTF-8" in invalid.text and "<html" in invalid.text
    nul = client.get("/dashboard/people/a%00b")
    assert nul.status_code == 404 and "No one is known by that id" in nul.text
    long = client.get("/dashboard/people/" + "x" * 2000)
    assert long.status_code == 404
    assert client.get("/dashboard/people/").status_code == 303
    assert client.get("/dashboard/people/%23999999999999999999999").status_code == 404
    assert client.post("/dashboard/people/17850", data={"csrf": client.csrf}).status_code == 405  # type: ignore[attr-defined]

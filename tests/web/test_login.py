"""Logging in: the form, the cookie's flags, CSRF on every change, the rate limit, roles and the audit log."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from tests.web.support import PASSWORD, LiveDashboard

pytestmark = pytest.mark.slow


def _login_form(client: httpx.Client) -> str:
    form = client.get("/dashboard/login")
    client.cookies.set("shopkeeper_login", form.cookies["shopkeeper_login"])
    found = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert found
    return found.group(1)


def test_a_page_without_a_session_goes_to_the_login_form(dashboard: LiveDashboard) -> None:
    answer = httpx.get(f"{dashboard.url}/dashboard/users")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Fusers"
    htmx = httpx.get(f"{dashboard.url}/dashboard/users", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/dashboard/login")


def test_the_session_cookie_is_secure_httponly_and_strict(dashboard: LiveDashboard) -> None:
    with httpx.Client(base_url=dashboard.url) as client:
        token = _login_form(client)
        answer = client.post(
            "/dashboard/login",
            data={
                "email": "Test-Owner@Shop.Example ",
                "password": PASSWORD,
                "login_token": token,
                "next": "//evil.example/x",
            },
        )
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("shopkeeper_session="))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(dashboard: LiveDashboard) -> None:
    answers = []
    for email in ("test-owner@shop.example", "nobody@shop.example"):
        with httpx.Client(base_url=dashboard.url) as client:
            token = _login_form(client)
            answers.append(
                client.post(
                    "/dashboard/login",
                    data={"email": email, "password": "wrong password!", "login_token": token},
                )
            )
    assert [a.status_code for a in answers] == [401, 401]
    assert (
        "do not match an active user" in answers[0].text and "do not match an active user" in answers[1].text
    )
    assert "shopkeeper_session" not in answers[0].headers.get("set-cookie", "")


def test_a_login_without_the_form_s_token_is_refused(dashboard: LiveDashboard) -> None:
    answer = httpx.post(
        f"{dashboard.url}/dashboard/login", data={"email": "owner@shop.example", "password": PASSWORD}
    )
    assert answer.status_code == 403 and "shopkeeper_session" not in answer.headers.get("set-cookie", "")


def test_logins_are_limited_per_email(dashboard: LiveDashboard) -> None:
    statuses = []
    for _ in range(7):
        with httpx.Client(base_url=dashboard.url) as client:
            token = _login_form(client)
            statuses.append(
                client.post(
                    "/dashboard/login",
                    data={
                        "email": "test-marketer@shop.example",
                        "password": "not it at all",
                        "login_token": token,
                    },
                ).status_code
            )
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]
    with httpx.Client(base_url=dashboard.url) as client:  # the right password is refused too, for now
        token = _login_form(client)
        late = client.post(
            "/dashboard/login",
            data={"email": "test-marketer@shop.example", "password": PASSWORD, "login_token": token},
        )
    assert late.status_code == 429 and int(late.headers["Retry-After"]) > 0
    dashboard.client("owner")  # another email from the same client still logs in


def test_a_change_without_the_csrf_token_or_from_another_site_is_refused(dashboard: LiveDashboard) -> None:
    client = dashboard.client("owner")
    assert client.post("/dashboard/logout", data={}).status_code == 403
    assert client.post("/dashboard/logout", data={"csrf": "nope"}).status_code == 403
    other = client.post(
        "/dashboard/logout",
        data={"csrf": client.csrf},
        headers={"Origin": "https://evil.example"},  # type: ignore[attr-defined]
    )
    assert other.status_code == 403
    assert client.get("/dashboard").status_code == 200  # still logged in
    out = client.post("/dashboard/logout", data={"csrf": client.csrf})  # type: ignore[attr-defined]
    assert out.status_code == 303
    assert client.get("/dashboard").status_code == 303  # the session is gone on the server too


def test_staff_are_sent_to_the_inbox_and_kept_from_marketing_pages(dashboard: LiveDashboard) -> None:
    staff = dashboard.client("staff")
    assert staff.get("/dashboard").headers["location"] == "/dashboard/inbox"
    refused = staff.get("/dashboard/users")
    assert refused.status_code == 403 and "for owners and above" in refused.text


def test_the_overview_tells_the_headline_in_words(dashboard: LiveDashboard) -> None:
    page = dashboard.client("marketer").get("/dashboard")
    assert page.status_code == 200
    assert "Not proven yet:" in page.text and "more people needed to detect a 10% lift" in page.text
    assert (
        "content-security-policy" in page.headers
        and "'unsafe-inline'" not in page.headers["content-security-policy"]
    )


def test_the_demo_prints_a_login_that_opens_the_overview(
    dashboard: LiveDashboard, demo_shop_file: Path
) -> None:
    printed = (demo_shop_file.parent / "demo.out").read_text()
    assert "The dashboard: http://127.0.0.1:8000/dashboard" in printed
    found = re.search(r"log in as (\S+) with the password (\S+) \(shown once\)", printed)
    assert found, printed
    with httpx.Client(base_url=dashboard.url) as client:
        token = _login_form(client)
        answer = client.post(
            "/dashboard/login",
            data={"email": found.group(1), "password": found.group(2), "login_token": token},
        )
        assert answer.status_code == 303
        client.cookies.set("shopkeeper_session", answer.cookies["shopkeeper_session"])
        overview = client.get("/dashboard")
    assert overview.status_code == 200 and "Does personalizing pay?" in overview.text


def test_every_change_is_in_the_audit_log_under_its_user(dashboard: LiveDashboard) -> None:
    owner = dashboard.client("owner")
    made = owner.post(
        "/dashboard/users",
        data={"csrf": owner.csrf, "email": "new@shop.example", "role": "staff", "password": "long enough pw"},  # type: ignore[attr-defined]
    )
    assert made.status_code == 303
    key = owner.post("/dashboard/keys", data={"csrf": owner.csrf, "kind": "write", "name": "site"})  # type: ignore[attr-defined]
    assert key.status_code == 200 and "It is shown only this once" in key.text
    raw = re.search(r'<code class="secret">(sk_write_[^<]+)</code>', key.text)
    assert raw and dashboard.store.keys.authenticate(raw.group(1)) is not None
    entries = dashboard.store.users.audit_entries(actor_prefix="user ")
    me = f"user {dashboard.user_id('owner')} (owner)"
    assert [(e.action, e.actor) for e in entries[:2]] == [("create_key", me), ("create_user", me)]
    assert "new@shop.example" not in str([e.detail for e in entries])  # the user by number, not by email
    page = owner.get("/dashboard/audit")
    assert page.status_code == 200 and "create_key" in page.text


def test_the_last_owner_cannot_be_disabled_or_demoted(dashboard: LiveDashboard) -> None:
    owner = dashboard.client("owner")
    me, demo = dashboard.user_id("owner"), dashboard.user_id("demo")
    csrf = owner.csrf  # type: ignore[attr-defined]
    assert owner.post(f"/dashboard/users/{demo}", data={"csrf": csrf, "action": "disable"}).status_code == 303
    refused = owner.post(f"/dashboard/users/{me}", data={"csrf": csrf, "action": "disable"})
    assert refused.status_code == 409 and "at least one active owner" in refused.text
    demoted = owner.post(f"/dashboard/users/{me}", data={"csrf": csrf, "action": "role", "role": "staff"})
    assert demoted.status_code == 409


def test_a_disabled_user_is_logged_out_at_once(dashboard: LiveDashboard) -> None:
    marketer = dashboard.client("marketer")
    owner = dashboard.client("owner")
    marketer_id = dashboard.user_id("marketer")
    disabled = owner.post(f"/dashboard/users/{marketer_id}", data={"csrf": owner.csrf, "action": "disable"})  # type: ignore[attr-defined]
    assert disabled.status_code == 303
    assert marketer.get("/dashboard").status_code == 303
    assert marketer.get("/dashboard").headers["location"].startswith("/dashboard/login")


def test_an_unknown_dashboard_page_is_a_page_not_json(dashboard: LiveDashboard) -> None:
    answer = dashboard.client("marketer").get("/dashboard/no-such-page")
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    assert "there is no such page" in answer.text and "Back to the overview" in answer.text
    api = httpx.get(f"{dashboard.url}/v1/no-such-route")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"  # the API still answers JSON

"""Logging in: the form, the cookie's flags, CSRF on every change, the rate limit, roles and the audit log."""

from __future__ import annotations

import re

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
                "email": "Owner@Shop.Example ",
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
    for email in ("owner@shop.example", "nobody@shop.example"):
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
                        "email": "marketer@shop.example",
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
            data={"email": "marketer@shop.example", "password": PASSWORD, "login_token": token},
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

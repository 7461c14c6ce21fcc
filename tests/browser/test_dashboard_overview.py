"""The overview in a real browser: log in, read the headline, see the charts drawn with their tables."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser
from tests.browser.dashboard_support import axe_violations, new_dashboard_page, screenshots
from tests.web.support import LiveDashboard

pytestmark = pytest.mark.slow


def test_a_marketer_logs_in_and_reads_the_headline(browser: Browser, dashboard: LiveDashboard) -> None:
    page = new_dashboard_page(browser)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    dashboard.login(page, "marketer")
    headline = page.get_by_role("region", name="Does personalizing pay? Personalized vs the holdout")
    assert "Not proven yet:" in headline.inner_text()
    assert page.locator("figure.chart canvas").count() == 2  # uPlot drew both charts
    page.get_by_text("The figures as a table").first.click()
    assert page.get_by_role("table", name="Events per day, last 30 days (events)").is_visible()
    assert axe_violations(page) == []
    screenshots(page, "overview")
    assert errors == []


def test_the_wrong_password_says_so_and_logs_nobody_in(browser: Browser, dashboard: LiveDashboard) -> None:
    page = new_dashboard_page(browser)
    page.goto(f"{dashboard.url}/dashboard")
    page.get_by_label("Email").fill(dashboard.emails["owner"])
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    assert "do not match an active user" in page.get_by_role("alert").inner_text()
    assert axe_violations(page) == []
    screenshots(page, "login")

"""The whole dashboard as each role finds it: every page in the menu opened by clicking it, drawn without a
console error, with no serious or critical accessibility violation, and photographed at both widths."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser
from tests.browser.dashboard_support import axe_violations, new_dashboard_page, screenshots
from tests.web.support import LiveDashboard

pytestmark = pytest.mark.slow

MENUS = {
    "staff": ["People", "Inbox"],
    "marketer": [
        "Overview",
        "People",
        "Personas",
        "Audiences",
        "Experiments",
        "Moments",
        "Inbox",
        "Content",
        "Recommendations",
    ],
    "owner": [
        "Overview",
        "People",
        "Personas",
        "Audiences",
        "Experiments",
        "Moments",
        "Inbox",
        "Content",
        "Recommendations",
        "Users and keys",
        "Audit log",
    ],
}


@pytest.mark.parametrize("role", sorted(MENUS))
def test_every_page_in_the_menu_opens_cleanly(browser: Browser, dashboard: LiveDashboard, role: str) -> None:
    page = new_dashboard_page(browser)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    dashboard.login(page, role)
    menu = page.get_by_role("navigation", name="Dashboard")
    assert [link.inner_text() for link in menu.get_by_role("link").all()] == MENUS[role]
    for label in MENUS[role]:
        page.get_by_role("navigation", name="Dashboard").get_by_role("link", name=label, exact=True).click()
        page.wait_for_load_state("networkidle")
        assert page.locator("h1").count() == 1, label
        current = page.get_by_role("navigation", name="Dashboard").locator("[aria-current=page]")
        assert current.inner_text() == label
        assert axe_violations(page) == [], label
        if role != "staff" or label == "Inbox":  # each page once, as the role that uses it
            screenshots(page, f"tour-{role}-{label}")
    assert errors == []

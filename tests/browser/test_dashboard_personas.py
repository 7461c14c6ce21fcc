"""The personas page in a real browser: read the cards, rename one in place (htmx), see the name stay."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect
from tests.browser.dashboard_support import axe_violations, new_dashboard_page, screenshots
from tests.web.support import LiveDashboard

pytestmark = pytest.mark.slow


def test_a_marketer_reads_the_personas_and_renames_one(browser: Browser, dashboard: LiveDashboard) -> None:
    page = new_dashboard_page(browser)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    dashboard.login(page, "marketer")
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Personas").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Personas")
    assert page.locator("article.persona").count() == len(dashboard.store.personas.all()) == 5
    champions = page.locator("#persona-p1")
    expect(champions).to_contain_text("ordered 3+ times, last order within 31 days")
    champions.get_by_text("Their five most bought items").click()
    expect(champions.get_by_role("listitem").first).to_contain_text("bought by")
    expect(page.get_by_role("region", name="Who moved since the last run")).to_contain_text("first run")
    assert axe_violations(page) == []
    screenshots(page, "personas")

    card = page.locator("#persona-p2")
    card.get_by_label("New name for p2").fill("Regulars")
    card.get_by_role("button", name="Rename").click()
    expect(page.locator("#persona-p2 .persona-name")).to_have_text("Regulars")
    expect(page.locator("#persona-p2").get_by_role("status")).to_have_text(
        "Renamed: Loyal customers is now Regulars."
    )
    assert dashboard.store.personas.get("p2").name == "Regulars"
    page.reload()
    expect(page.locator("#persona-p2 .persona-name")).to_have_text("Regulars")
    assert errors == []

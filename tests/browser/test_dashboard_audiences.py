"""The audiences in a real browser: build an audience and watch its size follow each condition as it is
edited (each size checked against the service), save it, read the reach guard's warning on a narrow one,
start the broad-vs-narrow comparison; edit as JSON; and the same builder without JavaScript."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.browser.dashboard_support import DESKTOP, axe_violations, new_dashboard_page, screenshots
from tests.web.support import PASSWORD, LiveDashboard

from shopkeeper import Shop
from shopkeeper.personas.conditions import parse_condition

pytestmark = pytest.mark.slow
WAIT = 15_000  # ms: a preview waits 400 ms for typing to pause, then asks the server (this machine is shared)


@pytest.fixture
def oracle(dashboard: LiveDashboard) -> Iterator[Shop]:
    """The same shop, opened in the test: what the page's figures must equal."""
    shop = Shop.open(str(dashboard.store.engine.url))
    try:
        yield shop
    finally:
        shop.close()


def _size_of(shop: Shop, condition: dict[str, Any]) -> int:
    return int(shop.audiences.reach_of(parse_condition(condition))["size"])


def _expect_size(page: Page, size: int) -> None:
    expect(page.locator("#reach-size")).to_have_attribute("data-size", str(size), timeout=WAIT)
    expect(page.locator("#reach-size")).to_have_text(f"{size:,} {'person' if size == 1 else 'people'}")


def _console_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


def test_a_marketer_builds_an_audience_watches_its_size_saves_and_compares_it(
    browser: Browser, dashboard: LiveDashboard, oracle: Shop
) -> None:
    page = new_dashboard_page(browser)
    errors = _console_errors(page)
    dashboard.login(page, "marketer")
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Audiences").click()
    expect(page.locator(".reach-cell").first).to_contain_text("of active", timeout=WAIT)  # loaded by htmx
    assert axe_violations(page) == []
    screenshots(page, "audiences")

    page.get_by_role("link", name="Build a new audience").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Build an audience")
    page.get_by_label("Name", exact=True).fill("mug-buyers")
    row = page.get_by_role("group", name="Condition 1")
    row.get_by_role("combobox", name="Looks at").select_option("persona")
    row.get_by_role("combobox", name="Persona").select_option("p1")
    _expect_size(page, _size_of(oracle, {"persona": "p1"}))
    row.get_by_role("combobox", name="Persona").select_option("p3")
    _expect_size(page, _size_of(oracle, {"persona": "p3"}))
    row.get_by_role("combobox", name="Looks at").select_option("purchased")
    expect(row.locator("#r0-persona-id")).to_be_hidden()  # only the chosen kind's fields show
    _expect_size(page, _size_of(oracle, {"purchased": True}))
    row.get_by_role("combobox", name="Category (empty: anything)", exact=True).fill("Mugs")
    _expect_size(page, _size_of(oracle, {"purchased": "Mugs"}))
    row.get_by_role("textbox", name="In the last (days)", exact=True).fill("30")
    mugs = {"purchased": "Mugs", "within_days": 30}
    _expect_size(page, _size_of(oracle, mugs))
    reach = page.locator("#reach")
    expect(reach.locator(".warning")).to_contain_text("Narrow: it holds")
    expect(reach).to_contain_text("People who bought Mugs in the last 30 days.")
    assert (
        reach.locator(".warning")
        .first.inner_text()
        .startswith(oracle.audiences.reach_of(parse_condition(mugs))["guard"]["warnings"][0][:60])
    )
    assert axe_violations(page) == []
    screenshots(page, "audience-builder")

    page.get_by_role("button", name="Save the audience").click()
    page.wait_for_url(re.compile(r".*/dashboard/audiences/mug-buyers\?done=saved$"))
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.locator("#reach .warning")).to_contain_text(
        "Compare it with the broad base with the comparison below."
    )

    compare = page.get_by_role("region", name="Broad vs narrow")
    compare.get_by_label("Placement to compare on").select_option("web")
    compare.get_by_role("button", name="Start the comparison").click()
    page.wait_for_url(re.compile(r".*/dashboard/audiences/mug-buyers\?done=started#compare$"))
    expect(page.get_by_role("status")).to_contain_text("The comparison started")
    expect(compare).to_contain_text("compare-mug-buyers shows web to mug-buyers")
    assert dashboard.store.experiments.get("compare-mug-buyers").status == "running"
    assert axe_violations(page) == []
    screenshots(page, "audience")

    page.get_by_role("link", name="Delete this audience").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete the audience mug-buyers?")
    expect(page.locator(".warning")).to_contain_text("cannot be deleted while experiment compare-mug-buyers")
    assert axe_violations(page) == []
    screenshots(page, "audience-delete")
    assert errors == []


def test_the_builder_edits_json_and_says_what_is_wrong_in_place(
    browser: Browser, dashboard: LiveDashboard, oracle: Shop
) -> None:
    page = new_dashboard_page(browser)
    errors = _console_errors(page)
    dashboard.login(page, "marketer")
    page.goto(f"{dashboard.url}/dashboard/audiences/wrap-regulars")
    saved = oracle.audiences.show("wrap-regulars")
    _expect_size(page, saved["reach"]["size"])
    page.get_by_label("as JSON (the whole language: nesting, not, any)").check()
    box = page.get_by_label("The condition as JSON")
    expect(box).to_be_visible()
    assert json.loads(box.input_value()) == saved["where"]  # the rows, as JSON
    wider = {"any": [saved["where"], {"persona": "p3"}]}
    box.fill(json.dumps(wider))
    _expect_size(page, _size_of(oracle, wider))
    box.fill('{"any": [{"persona": "p3"}, {"event": "Order Completed", "at_least": 0}]}')
    expect(page.locator("#reach-error")).to_have_text(
        "where.any[1].at_least: expected a whole number of at least 1 (keys of an event condition: "
        "event, at_least, at_most, within_days)",
        timeout=WAIT,
    )
    # The browser reports the 400 itself, and htmx logs it: those, and only those, are expected.
    expected = (
        "the server responded with a status of 400",
        "Response Status Error Code 400 from /dashboard/audiences/preview",
    )
    assert [e for e in errors if not any(part in e for part in expected)] == []
    assert errors, "the refused preview was not asked for"


def test_without_javascript_show_the_size_posts_the_form(
    browser: Browser, dashboard: LiveDashboard, oracle: Shop
) -> None:
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{dashboard.url}/dashboard/login")
    page.get_by_label("Email").fill(dashboard.emails["marketer"])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{dashboard.url}/dashboard/audiences/new")
    row = page.get_by_role("group", name="Condition 1")
    row.get_by_role("combobox", name="Looks at").select_option("event")
    expect(
        row.get_by_role("combobox", name="Event", exact=True)
    ).to_be_visible()  # CSS alone shows the chosen kind's fields
    row.get_by_role("combobox", name="Event", exact=True).fill("Order Completed")
    row.get_by_role("textbox", name="At least (times)", exact=True).fill("3")
    page.get_by_role("button", name="Show the size").click()
    _expect_size(page, _size_of(oracle, {"event": "Order Completed", "at_least": 3}))
    page.get_by_role("button", name="Add a condition").click()
    row = page.get_by_role("group", name="Condition 2")
    row.get_by_role("combobox", name="Looks at").select_option("consent")
    page.get_by_role("button", name="Show the size").click()
    both = {"all": [{"event": "Order Completed", "at_least": 3}, {"consent": "email_marketing"}]}
    _expect_size(page, _size_of(oracle, both))
    page.get_by_label("Name", exact=True).fill("repeat-buyers")
    page.get_by_role("button", name="Save the audience").click()
    page.wait_for_url(re.compile(r".*/dashboard/audiences/repeat-buyers\?done=saved$"))
    assert oracle.audiences.show("repeat-buyers")["where"] == parse_condition(both)
    context.close()

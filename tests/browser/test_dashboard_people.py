"""The people pages in a real browser, on the demo shop: a marketer finds customer 17850 and reads what they
told us against what we guessed; a marketer exports and erases a person through the confirmations and
sees them gone; staff see the person they have a task for and no one else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page
from tests.browser.dashboard_support import axe_violations, new_dashboard_page, screenshots
from tests.web.support import LiveDashboard

from shopkeeper.settings import Settings
from shopkeeper.shop import Shop

pytestmark = pytest.mark.slow


@pytest.fixture
def shop(dashboard: LiveDashboard) -> Iterator[Shop]:
    with Shop.from_settings(
        Settings(database_url=str(dashboard.store.engine.url)), store=dashboard.store
    ) as opened:
        yield opened


def watch_console(page: Page) -> list[str]:
    """The page's console errors, uncaught exceptions and failed scripts, styles or fetches. A page we
    asked for with its 4xx (a refused erasure, a person who is not there) is not one."""
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.request.resource_type != "document"
            else None
        ),
    )
    return errors


def test_a_marketer_finds_17850_and_reads_what_they_told_us_against_what_we_guessed(
    browser: Browser, dashboard: LiveDashboard, shop: Shop
) -> None:
    shop.state_preferences("17850", {"favourite_colours": ["green"], "size": "M"})
    guessed = shop.profile("17850").traits["persona"]
    assert guessed.source == "inferred"
    page = new_dashboard_page(browser)
    errors = watch_console(page)
    dashboard.login(page, "marketer")
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="People").click()
    search = page.get_by_label("Customer id, visitor id, email or person number")
    search.press_sequentially("1785")  # with JavaScript, the results come as one types
    page.locator("#people-results").get_by_role("link", name="Customer 17850").wait_for()
    assert "people found" in page.locator("#people-count").inner_text()  # told to a screen reader
    search.fill("17850")
    page.get_by_role("button", name="Search").click()  # without, the form does the same
    page.wait_for_url("**/dashboard/people?q=17850")
    results = page.get_by_role("table", name="People whose id or email is, or starts with, what you typed")
    assert "customer id 17850" in results.inner_text()
    assert axe_violations(page) == []
    screenshots(page, "people-search")

    page.get_by_role("link", name="Customer 17850").click()
    page.wait_for_url("**/dashboard/people/17850")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Customer 17850")
    told = page.get_by_role("region", name="Told us").inner_text()
    saw = page.get_by_role("region", name="We saw").inner_text()
    we_guessed = page.get_by_role("region", name="We guessed").inner_text()
    assert "favourite colours" in told and "green" in told and "size" in told
    assert "persona" in we_guessed and str(guessed.value) in we_guessed and "the persona model" in we_guessed
    assert "green" not in we_guessed and "green" not in saw
    assert "order count" in saw and "34" in saw
    assert "expires" in we_guessed and "days ago" in we_guessed  # its decay and its age
    assert axe_violations(page) == []
    screenshots(page, "people-person")
    assert errors == []


def test_a_marketer_exports_then_erases_a_person_and_they_are_gone(
    browser: Browser, dashboard: LiveDashboard
) -> None:
    page = new_dashboard_page(browser)
    errors = watch_console(page)
    dashboard.login(page, "marketer")
    page.goto(f"{dashboard.url}/dashboard/people?q=customer-17841@example.com")
    page.get_by_role("link", name="Customer 17841").click()

    page.get_by_role("link", name="Export their data").click()
    assert "What the file holds" in page.inner_text("main")
    assert axe_violations(page) == []
    screenshots(page, "people-export")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the export (JSON)").click()
    person_id = dashboard.store.identities.find_person("17841")
    assert download.value.suggested_filename == f"person-{person_id}.json"

    page.get_by_role("link", name="Customer 17841").click()  # the crumb back to their page
    page.get_by_role("link", name="Erase them").click()
    assert "This deletes, for good" in page.inner_text("main")
    page.get_by_label("To confirm, type their id").fill("17850")  # someone else's id: refused
    page.get_by_role("button", name="Erase them for good").click()
    assert "nothing was erased" in page.get_by_role("alert").inner_text()
    assert axe_violations(page) == []
    screenshots(page, "people-erase")
    page.get_by_label("To confirm, type their id").fill("17841")
    page.get_by_role("button", name="Erase them for good").click()
    page.wait_for_url(f"**/dashboard/people?erased={person_id}")
    assert f"Person #{person_id} was erased" in page.get_by_role("status").inner_text()

    page.get_by_label("Customer id, visitor id, email or person number").fill("17841")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/dashboard/people?q=17841")
    assert "No one matches" in page.inner_text("main")
    gone = page.goto(f"{dashboard.url}/dashboard/people/17841")
    assert gone is not None and gone.status == 404
    assert "No one is known by that id" in page.get_by_role("alert").inner_text()
    assert errors == []


def test_staff_see_the_person_they_have_a_task_for_and_no_one_else(
    browser: Browser, dashboard: LiveDashboard
) -> None:
    page = new_dashboard_page(browser)
    errors = watch_console(page)
    dashboard.login(page, "staff")
    page.goto(f"{dashboard.url}/dashboard/people")
    served = page.get_by_role("table", name="People with a task waiting in the inbox, or one you took")
    served.get_by_role("link", name="Customer 17850").click()  # the demo's staff task 1
    page.wait_for_url("**/dashboard/people/17850")
    assert "This customer asked about the Hand warmer union jack" in page.inner_text("main")
    assert page.get_by_role("link", name="Erase them").count() == 0
    assert axe_violations(page) == []
    screenshots(page, "people-person-staff")

    other = page.goto(f"{dashboard.url}/dashboard/people/17841")  # a customer with no task
    assert other is not None and other.status == 404
    assert "No one you serve is known by that id" in page.get_by_role("alert").inner_text()
    page.goto(f"{dashboard.url}/dashboard/people?q=17841")
    assert "No one you serve matches" in page.inner_text("main")
    assert axe_violations(page) == []
    assert errors == []

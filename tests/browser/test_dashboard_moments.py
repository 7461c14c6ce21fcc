"""Moments, the staff inbox and content in a real browser: staff claim and complete a task on a phone, a
marketer reads what the moment rules did and why, previews a template on the hostile set, and watches
lint answer as they type."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from tests.browser.dashboard_support import PHONE, axe_violations, new_dashboard_page, screenshots
from tests.web.support import LiveDashboard

pytestmark = pytest.mark.slow
MIN_TARGET = 44  # px: the smallest a finger can hit reliably (WCAG 2.5.5)


def _watched(browser: Browser) -> tuple[Page, list[str]]:
    """A page, and the list its console errors and dialogs (an alert a hostile value opened) go to."""
    page = new_dashboard_page(browser)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page, problems


def _fits_a_phone(page: Page, *, buttons: bool = True) -> None:
    """No sideways scrolling, and every visible button (there are some) at least 44 px high."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    if not buttons:
        return
    heights: list[Any] = page.evaluate(
        """() => Array.from(document.querySelectorAll('main button, main summary.button, main label.choice'))
            .filter(e => e.offsetParent !== null)
            .map(e => [e.textContent.trim(), e.getBoundingClientRect().height])"""
    )
    assert heights and all(h >= MIN_TARGET for _, h in heights), heights


def test_staff_claim_and_complete_a_task_on_a_phone(browser: Browser, dashboard: LiveDashboard) -> None:
    page, problems = _watched(browser)
    page.set_viewport_size(PHONE)
    dashboard.login(page, "staff")  # staff land in the inbox
    assert page.url.endswith("/dashboard/inbox")
    card = page.locator("#task-1")
    assert "asked about the Hand warmer union jack" in card.inner_text()
    assert "we guessed" in card.inner_text() and "days ago" in card.inner_text()  # provenance and age
    assert page.evaluate("parseFloat(getComputedStyle(document.querySelector('.task .why')).fontSize)") >= 16
    _fits_a_phone(page)
    assert axe_violations(page) == []
    screenshots(page, "inbox")
    page.set_viewport_size(PHONE)

    card.get_by_role("button", name="Claim").click()
    page.locator("#task-1").get_by_text("You claimed this task").wait_for()
    card = page.locator("#task-1")
    assert "yours" in card.inner_text()
    card.locator("summary", has_text="Done").click()
    card.get_by_role("radio", name="Contacted: we spoke").check()
    card.get_by_label("Note (optional)").fill("coming in on Saturday")
    _fits_a_phone(page)
    assert axe_violations(page) == []
    screenshots(page, "inbox-done-form")
    page.set_viewport_size(PHONE)

    card.get_by_role("button", name="Mark done").click()
    page.locator("#task-1").get_by_text("Outcome: contacted").wait_for()
    with dashboard.store.engine.connect() as conn:
        task = dashboard.store.outbox.task(conn, 1)
    assert task is not None
    assert (task.status, task.outcome, task.note, task.assignee) == (
        "done",
        "contacted",
        "coming in on Saturday",
        dashboard.emails["staff"],
    )
    _fits_a_phone(page, buttons=False)
    page.reload()
    assert "Nothing to do" in page.locator("main").inner_text()
    screenshots(page, "inbox-empty")
    assert problems == []


def test_a_marketer_reads_what_each_moment_rule_did_and_why(
    browser: Browser, dashboard: LiveDashboard
) -> None:
    page, problems = _watched(browser)
    dashboard.login(page, "marketer")
    page.goto(f"{dashboard.url}/dashboard/moments")
    rule = page.get_by_role("region", name="back_in_stock")
    assert "Fires when" in rule.inner_text() and "staff, then email" in rule.inner_text()
    row = rule.get_by_role("row").filter(has=page.get_by_role("link", name="17841"))
    with dashboard.store.engine.connect() as conn:
        person = dashboard.store.identities.find_person("17841", conn)
    [moment] = dashboard.store.outbox.messages(person_ids=[person])
    assert moment.status in row.inner_text()
    if moment.reason == "quiet_hours":  # the demo ran at night: held until their quiet hours end
        assert "quiet hours where they live: held until they end" in row.inner_text()
        assert "held" in rule.get_by_role("table", name="Not sent, and why (last 30 days)").inner_text()
    assert axe_violations(page) == []
    screenshots(page, "moments")

    rule.get_by_role("link", name="All of back_in_stock: its reach and its newest 20 moments").click()
    page.wait_for_url("**/dashboard/moments/back_in_stock")
    assert "It is for everyone" in page.get_by_role("region", name="Who it can reach").inner_text()
    assert axe_violations(page) == []
    screenshots(page, "moment-rule")
    assert problems == []


def test_a_marketer_previews_a_template_on_the_hostile_set_and_sees_lint_live(
    browser: Browser, dashboard: LiveDashboard
) -> None:
    page, problems = _watched(browser)
    dashboard.login(page, "marketer")
    page.goto(f"{dashboard.url}/dashboard/content")
    assert axe_violations(page) == []
    screenshots(page, "content")
    page.get_by_role("link", name="picked_for_you").click()
    page.wait_for_url("**/dashboard/content/picked_for_you")
    assert "No findings: this template would save." in page.locator("#lint").inner_text()
    assert axe_violations(page) == []

    page.get_by_role("button", name="Preview for personas and the hostile set").click()
    hostile = page.get_by_role(
        "table", name="The hostile set at a glance: what each awkward profile would get"
    )
    hostile.wait_for()
    summary = hostile.inner_text()
    assert "full name as first name" in summary and "a full name in a first-name slot" in summary
    frames: list[dict[str, str]] = page.evaluate(
        """() => Array.from(document.querySelectorAll('#previews iframe'))
            .map(f => ({sandbox: f.getAttribute('sandbox'), doc: f.getAttribute('srcdoc')}))"""
    )
    assert len(frames) >= 21 and all(f["sandbox"] == "" for f in frames)
    subjects = page.locator("#previews .rendered-subject").all_inner_texts()
    for shown in subjects + [f["doc"] for f in frames]:
        assert "Lester" not in shown and "Wunderman" not in shown and "{{" not in shown
        assert "<script" not in shown.lower()
    assert "Hi there, we picked a few things for you" in subjects
    page.wait_for_timeout(300)  # any script a hostile value smuggled in would have run by now
    assert page.evaluate("window.__hostile === undefined") and problems == []
    screenshots(page, "content-preview")

    html = page.get_by_label("HTML", exact=True)
    html.press("Control+End")
    html.type('<p><a href="http://shop.example">{{ nope }}</a></p>')
    lint = page.locator("#lint")
    lint.get_by_text("This would not save").wait_for()
    assert "unknown_field" in lint.inner_text() and "'nope' is not a declared field" in lint.inner_text()
    assert "http_link" in lint.inner_text() and "line " in lint.inner_text()
    assert axe_violations(page) == []
    screenshots(page, "content-editor-lint")

    assert problems == []

    page.get_by_role("button", name="Save", exact=True).click()
    assert "Nothing was saved" in page.get_by_role("alert").first.inner_text()
    assert dashboard.store.templates.versions("picked_for_you") == 1
    assert all("status of 422" in p for p in problems)  # the refused save's page itself
    problems.clear()

    page.goto(f"{dashboard.url}/dashboard/content/new")
    assert axe_violations(page) == []
    screenshots(page, "content-new")
    assert problems == []

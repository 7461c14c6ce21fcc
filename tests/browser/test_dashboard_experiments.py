"""Experiments and recommendations in a real browser, on the demo shop, as a marketer: start an experiment and
stop it through the forms, read the holdout's verdict and SRM, see a bandit's traffic shares, and a
customer's picks with their reasons. Every page is screenshot at both widths and checked with axe."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.browser.dashboard_support import axe_violations, new_dashboard_page, screenshots
from tests.web.experiment_traffic import admin_client, customers, make_traffic
from tests.web.support import LiveDashboard

pytestmark = pytest.mark.slow
EVALUATION = Path(__file__).parents[1] / "web" / "data" / "demo_evaluation.json"


def _page(browser: Browser, dashboard: LiveDashboard) -> tuple[Page, list[str]]:
    page = new_dashboard_page(browser)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    dashboard.login(page, "marketer")
    return page, errors


def _checked(page: Page, name: str) -> None:
    assert axe_violations(page) == [], name
    screenshots(page, name)


def _row(page: Page, name: str) -> str:
    return page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True)).inner_text()


def test_a_marketer_starts_an_experiment_and_stops_it(browser: Browser, dashboard: LiveDashboard) -> None:
    page, errors = _page(browser, dashboard)
    page.get_by_role("link", name="Experiments").click()
    expect(page.get_by_role("heading", name="Experiments", level=1)).to_be_visible()
    assert "holdout" in page.get_by_role("table").get_by_role("row").nth(1).inner_text()  # the holdout first
    _checked(page, "experiments")

    page.get_by_label("Experiment name").fill("no good!")
    page.get_by_role("button", name="Start the experiment").click()
    expect(page.get_by_role("alert")).to_contain_text("Experiment name: experiment name 'no good!'")
    _checked(page, "experiments-create-error")
    assert errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    errors.clear()  # the page's own 400, on purpose: nothing else went wrong

    page.get_by_label("Experiment name").fill("fewer-picks")
    page.locator("#v2-n").fill("4")
    page.locator("#v1-weight").fill("3")
    page.locator("#v2-weight").fill("1")
    page.get_by_role("button", name="Start the experiment").click()
    page.wait_for_url(re.compile(r".*/dashboard/experiments/fewer-picks$"))
    expect(page.get_by_role("heading", name="Experiment fewer-picks")).to_be_visible()
    _checked(page, "experiment-report-new")
    page.get_by_role("link", name="Experiments", exact=True).first.click()
    assert "running" in _row(page, "fewer-picks") and "75%" in _row(page, "fewer-picks")

    page.get_by_role("link", name="fewer-picks").click()
    page.get_by_role("link", name="Stop this experiment").click()
    expect(page.get_by_role("heading", name="Stop the experiment fewer-picks?")).to_be_visible()
    _checked(page, "experiment-stop")
    page.get_by_label("Type the experiment's name, fewer-picks, to confirm").fill("fewer-picks")
    page.get_by_role("button", name="Stop fewer-picks").click()
    page.wait_for_url(re.compile(r".*/dashboard/experiments/fewer-picks$"))
    expect(page.get_by_role("link", name="Stop this experiment")).to_have_count(0)
    page.goto(f"{dashboard.url}/dashboard/experiments")
    assert "stopped" in _row(page, "fewer-picks")
    assert dashboard.store.experiments.get("fewer-picks").status == "stopped"
    assert errors == []


def test_the_holdout_report_tells_the_verdict_and_the_srm(browser: Browser, dashboard: LiveDashboard) -> None:
    api = admin_client(dashboard)
    make_traffic(dashboard, api, customers(dashboard, 200), buy_every=5)
    page, errors = _page(browser, dashboard)
    page.goto(f"{dashboard.url}/dashboard/experiments")
    page.get_by_role("link", name="holdout", exact=True).click()
    # Its figures were computed as the server started, before this traffic: the marketer asks again.
    page.get_by_role("link", name="Compute them again now").click()
    page.wait_for_url("**/dashboard/experiments/holdout?fresh=1")
    verdict = page.get_by_role("region", name="The verdict")
    expect(verdict).to_contain_text("Not proven yet:")
    expect(verdict).to_contain_text("personalized is not distinguishable from baseline on conversion yet")
    srm = page.get_by_role("region", name="Is the split what it should be? (sample ratio)")
    expect(srm).to_contain_text("Checked: the arms' sizes fit the traffic shares")
    expect(page.locator("#lift-over-time canvas")).to_have_count(1)  # uPlot drew the sequential view
    page.locator("#lift-over-time").get_by_text("The figures as a table").click()
    table = page.get_by_role("table", name="Lift in conversion over baseline, at the end of each day")
    assert datetime.now(UTC).strftime("%d %b") in table.inner_text()
    _checked(page, "experiment-report-holdout")
    assert errors == []


def test_a_bandit_shows_its_traffic_shares(browser: Browser, dashboard: LiveDashboard) -> None:
    api = admin_client(dashboard)
    made = api.post(
        "/v1/experiments",
        json={
            "name": "picks-bandit",
            "placement": "new_for_you",
            "bandit": True,
            "variants": [{"name": "mine"}, {"name": "popular", "options": {"model": "popularity"}}],
        },
    )
    assert made.status_code == 201, made.text
    make_traffic(dashboard, api, customers(dashboard, 100), placement="new_for_you")
    page, errors = _page(browser, dashboard)
    page.goto(f"{dashboard.url}/dashboard/experiments")
    assert "bandit" in _row(page, "picks-bandit")
    page.get_by_role("link", name="picks-bandit").click()
    expect(page.locator("#traffic-shares canvas")).to_have_count(1)
    page.locator("#traffic-shares").get_by_text("The figures as a table").click()
    shares = page.get_by_role("table", name="Share of each day's decisions per arm (%)")
    cells = shares.get_by_role("cell").all_inner_texts()
    assert len(cells) == 2 and sum(float(c) for c in cells) == pytest.approx(100, abs=0.2)
    _checked(page, "experiment-report-bandit")
    assert errors == []


def test_a_customer_s_picks_with_their_reasons(browser: Browser, dashboard: LiveDashboard) -> None:
    page, errors = _page(browser, dashboard)
    page.get_by_role("link", name="Recommendations").click()
    expect(page.get_by_text("No offline evaluation is stored for this shop yet")).to_be_visible()
    page.get_by_label("Customer id, visitor id or email").fill("17850")
    page.get_by_role("button", name="Show their picks").click()
    picks = page.get_by_role("table", name=re.compile(r"items, in the order they would be shown"))
    expect(picks).to_be_visible()
    rows = picks.get_by_role("row")
    assert rows.count() > 3
    assert "Because you" in picks.inner_text() or "Popular" in picks.inner_text()
    expect(page.get_by_text("Personalized: chosen for this person")).to_be_visible()
    _checked(page, "recommendations")

    # A real run of `shopkeeper evaluate --cutoff 2026-10-22 --json` on the demo shop, kept as it keeps it.
    dashboard.store.evaluations.record(json.loads(EVALUATION.read_text()))
    page.reload()
    expect(page.locator("figure.chart canvas")).to_have_count(2)  # tasks all and new
    page.get_by_label("Metric").select_option("recall_at_20")
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("Picks for customer 17850"))).to_be_visible()
    expect(page.locator("#evaluation-all figcaption")).to_contain_text("Recall@20 per model")
    _checked(page, "recommendations-evaluation")
    assert errors == []

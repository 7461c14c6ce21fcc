"""The recommendations page over HTTP: a person's picks are the API's, previewed without logging an exposure;
their holdout and consent state, and why; the newest stored evaluation as charts, or how to make one."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from tests.web.experiment_traffic import admin_client, customers
from tests.web.support import LiveDashboard
from tests.web.test_experiments_pages import charts

from shopkeeper.store.dashboard import SqlDashboard

pytestmark = pytest.mark.slow


def _decisions(dashboard: LiveDashboard, api: object) -> int:
    api.get("/v1/experiments/holdout/report")  # type: ignore[attr-defined]  # stores the server's pending log
    since = datetime.now(UTC) - timedelta(days=2)
    return sum(a + b for a, b in SqlDashboard(dashboard.store.engine).decisions_per_day(since).values())


def test_a_person_s_picks_are_the_api_s_with_reasons_and_the_look_is_not_logged(
    dashboard: LiveDashboard,
) -> None:
    api = admin_client(dashboard)
    client = dashboard.client("marketer")
    before = _decisions(dashboard, api)
    page = client.get("/dashboard/recommendations", params={"person": "17850", "placement": "web"})
    assert page.status_code == 200
    assert _decisions(dashboard, api) == before  # a preview is no exposure
    decided = api.post("/v1/decide", json={"userId": "17850", "placement": "web"}).json()
    assert _decisions(dashboard, api) == before + 1  # where the API's decision is one
    shown = re.findall(r'<th scope="row">(.*?) <span class="muted">([^<]+)</span></th>', page.text)
    assert [(html.unescape(t), i) for t, i in shown] == [(d["title"], d["item_id"]) for d in decided["items"]]
    for item in decided["items"]:
        for reason in item["reasons"]:
            assert html.escape(reason["text"]) in page.text
    scores = [
        float(s) for s in re.findall(r'data-label="score"><span title="[^"]+">([0-9.]+)</span>', page.text)
    ]
    assert scores == pytest.approx([d["score"] for d in decided["items"]], abs=1e-4)
    assert (
        "Picks for customer 17850 on web" in page.text and "Personalized: chosen for this person" in page.text
    )
    entry = dashboard.store.users.audit_entries(limit=1, actor_prefix="user ")[0]
    assert entry.action == "read_consent" and entry.actor.endswith("(marketer)") and entry.person_id


def test_the_holdout_and_no_consent_say_why(dashboard: LiveDashboard) -> None:
    api = admin_client(dashboard)
    client = dashboard.client("marketer")
    held = None
    for user in customers(dashboard, 300):
        reasons = api.post("/v1/decide", json={"userId": user}).json()["reasons"]
        if any("comparison group" in r["text"] for r in reasons):
            held = user
            break
    assert held is not None, "5% of 300 people: some are in the holdout"
    page = client.get("/dashboard/recommendations", params={"person": held}).text
    assert "In the holdout: this person is one of the share picked at random" in page
    assert "You are in the shop&#39;s comparison group" in page
    changed = api.put("/v1/people/17850/consent", json={"personalization": False})
    assert changed.status_code == 200, changed.text
    page = client.get("/dashboard/recommendations", params={"person": "17850"}).text
    assert "No consent to personalization: this person sees what is popular" in page
    consent = re.search(r'<th scope="row">personalization</th><td>([^<]+)</td>', page)
    assert consent is not None and consent.group(1) == "not agreed"


def test_an_unknown_person_or_a_bad_choice_is_a_clear_4xx(dashboard: LiveDashboard) -> None:
    client = dashboard.client("marketer")
    missing = client.get("/dashboard/recommendations", params={"person": "<b>nobody</b>"})
    assert missing.status_code == 404
    assert "No person is known by the id &#39;&lt;b&gt;nobody&lt;/b&gt;&#39;" in missing.text
    assert 'value="&lt;b&gt;nobody&lt;/b&gt;"' in missing.text  # kept in the search field, escaped
    placement = client.get("/dashboard/recommendations", params={"person": "17850", "placement": "sidebar"})
    assert placement.status_code == 400 and "unknown placement &#39;sidebar&#39;" in placement.text
    metric = client.get("/dashboard/recommendations", params={"metric": "accuracy"})
    assert metric.status_code == 400 and "metric: one of ndcg_at_10" in metric.text
    huge = client.get("/dashboard/recommendations", params={"person": "9" * 5000})
    assert huge.status_code in (404, 414)


def _row(model: str, task: str, ndcg: float, recall: float, default: bool = False) -> dict[str, object]:
    return {
        "model": model,
        "task": task,
        "ndcg_at_10": ndcg,
        "recall_at_20": recall,
        "hr_at_10": 0.5,
        "coverage_at_10": 0.1,
        "fit_seconds": 0.1,
        "default": default,
    }


def test_the_latest_evaluation_is_charted_model_against_anchors(dashboard: LiveDashboard) -> None:
    client = dashboard.client("marketer")
    empty = client.get("/dashboard/recommendations").text
    assert "No offline evaluation is stored for this shop yet" in empty
    assert re.search(r"<code>shopkeeper evaluate --cutoff \d{4}-\d\d-\d\d</code>", empty)
    split = {"cutoff": "2026-10-22", "until": None, "test_users": 186, "test_users_new": 170}
    dashboard.store.evaluations.record(
        {"split": split, "results": [_row("old", "all", 0.1, 0.1)]}, at=datetime.now(UTC) - timedelta(days=3)
    )
    dashboard.store.evaluations.record(
        {
            "split": split,
            "results": [
                _row("popularity", "all", 0.118, 0.13),
                _row("repeat purchase", "all", 0.419, 0.384),
                _row("rerank", "all", 0.426, 0.371, default=True),
                _row("EASE", "new", 0.090, 0.09),
                _row("rerank", "new", 0.092, 0.1, default=True),
            ],
        }
    )
    page = client.get("/dashboard/recommendations").text
    found = charts(page)
    everything = found["evaluation-all"]
    assert everything["x"] == ["rerank (the model in use)", "repeat purchase", "popularity"]
    assert everything["series"][0]["values"] == [0.426, 0.419, 0.118]
    assert found["evaluation-new"]["series"][0]["values"] == [0.092, 0.090]
    assert "old" not in everything["x"]  # only the newest evaluation
    words = " ".join(page.split())
    assert (
        "rerank, scores <strong>0.426</strong> on NDCG@10, ahead of the best anchor, repeat purchase, "
        "at 0.419" in words
    )
    recall = charts(client.get("/dashboard/recommendations", params={"metric": "recall_at_20"}).text)
    assert recall["evaluation-all"]["x"][0] == "repeat purchase"  # 0.384 beats the model's 0.371
    assert recall["evaluation-all"]["series"][0]["label"] == "Recall@20"

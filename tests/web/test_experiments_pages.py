"""The experiments pages over HTTP: who may see and change them, the create form's checks (the API's own,
with the field named), the stop behind a typed confirmation, the audit of each change, and reports whose
figures are the API's."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from tests.web.experiment_traffic import admin_client, customers, make_traffic
from tests.web.support import LiveDashboard

pytestmark = pytest.mark.slow
NO_VALUE = "\u2013"  # an en dash: the page's "no figure"

CHART = re.compile(r'<figure class="chart" id="([^"]+)">.*?data-chart="([^"]+)"', re.S)


def _form(client: Any, **fields: Any) -> dict[str, Any]:
    """The create form as a browser sends it: four variant rows, every field present."""
    rows = fields.pop("rows", [("control", "", ""), ("popular", "popularity", "")])
    rows = [*rows, *[("", "", "")] * (4 - len(rows))]
    form: dict[str, Any] = {
        "csrf": client.csrf,
        "name": "",
        "placement": "web",
        "kind": "ab",
        "reward": "conversion",
        "audience": "",
        "condition": "",
        "outcome_events": "",
        "window_days": "14",
        "floor": "0.05",
        "variant_name": [r[0] for r in rows],
        "variant_model": [r[1] for r in rows],
        "variant_n": ["4" if r[0] == "popular" else "" for r in rows],
        "variant_max": ["" for _ in rows],
        "variant_repeats": ["no" if r[0] == "popular" else "" for r in rows],
        "variant_weight": [r[2] for r in rows],
    }
    form.update(fields)
    return form


def charts(page: str) -> dict[str, dict[str, Any]]:
    """Every chart's spec on a page, by its id."""
    return {name: json.loads(html.unescape(spec)) for name, spec in CHART.findall(page)}


def test_who_may_see_the_pages(dashboard: LiveDashboard) -> None:
    for role in ("marketer", "owner"):
        client = dashboard.client(role)
        for path in (
            "/dashboard/experiments",
            "/dashboard/experiments/holdout",
            "/dashboard/recommendations",
        ):
            assert client.get(path).status_code == 200, (role, path)
    staff = dashboard.client("staff")
    for path in (
        "/dashboard/experiments",
        "/dashboard/experiments/holdout",
        "/dashboard/experiments/holdout/stop",
        "/dashboard/recommendations?person=17850",
    ):
        refused = staff.get(path)
        assert refused.status_code == 403 and "for marketers and above" in refused.text
    sent = staff.post("/dashboard/experiments", data=_form(staff, name="sneaky"))
    assert sent.status_code == 403
    assert [e.name for e in dashboard.store.experiments.list()] == []
    client = dashboard.client("marketer")
    client.cookies.clear()
    assert client.get("/dashboard/experiments").headers["location"].startswith("/dashboard/login")


def test_a_marketer_starts_an_experiment_and_stops_it(dashboard: LiveDashboard) -> None:
    client = dashboard.client("marketer")
    sent = client.post(
        "/dashboard/experiments",
        data=_form(
            client,
            name="fewer-picks",
            outcome_events="Newsletter Signed Up",
            rows=[("control", "", "3"), ("popular", "popularity", "1")],
        ),
    )
    assert sent.status_code == 303 and sent.headers["location"] == "/dashboard/experiments/fewer-picks"
    made = dashboard.store.experiments.get("fewer-picks")
    assert (made.kind, made.placement, made.status, made.weights) == ("ab", "web", "running", (3.0, 1.0))
    assert [(v.name, v.options) for v in made.variants] == [
        ("control", {}),
        ("popular", {"model": "popularity", "n": 4, "repeats": False}),
    ]
    assert made.outcome_events == ("Newsletter Signed Up",)
    listed = client.get("/dashboard/experiments").text
    assert "fewer-picks</a>" in listed and "control <span" in listed and ">75%</span>" in listed
    report = client.get("/dashboard/experiments/fewer-picks")
    assert report.status_code == 200 and "Stop this experiment" in report.text
    entry = dashboard.store.users.audit_entries(limit=1, actor_prefix="user ")[0]
    assert entry.action == "create_experiment" and entry.actor.endswith("(marketer)")
    assert entry.detail["experiment"] == "fewer-picks" and entry.detail["arms"] == ["control", "popular"]

    confirm = client.get("/dashboard/experiments/fewer-picks/stop")
    assert (
        confirm.status_code == 200 and "Type the experiment's name, fewer-picks, to confirm" in confirm.text
    )
    wrong = client.post(
        "/dashboard/experiments/fewer-picks/stop", data={"csrf": client.csrf, "confirm": "fewer"}
    )
    assert wrong.status_code == 400 and "type the experiment&#39;s name, fewer-picks" in wrong.text
    assert dashboard.store.experiments.get("fewer-picks").status == "running"
    no_token = client.post("/dashboard/experiments/fewer-picks/stop", data={"confirm": "fewer-picks"})
    assert no_token.status_code == 403
    assert dashboard.store.experiments.get("fewer-picks").status == "running"
    stopped = client.post(
        "/dashboard/experiments/fewer-picks/stop", data={"csrf": client.csrf, "confirm": "fewer-picks"}
    )
    assert stopped.status_code == 303 and stopped.headers["location"] == "/dashboard/experiments/fewer-picks"
    assert dashboard.store.experiments.get("fewer-picks").status == "stopped"
    entry = dashboard.store.users.audit_entries(limit=1, actor_prefix="user ")[0]
    assert (entry.action, entry.detail["experiment"]) == ("stop_experiment", "fewer-picks")
    again = client.post(
        "/dashboard/experiments/fewer-picks/stop", data={"csrf": client.csrf, "confirm": "fewer-picks"}
    )
    assert again.status_code == 303  # nothing left to stop, and nothing audited
    assert dashboard.store.users.audit_entries(limit=1, actor_prefix="user ")[0].id == entry.id
    assert "Stop this experiment" not in client.get("/dashboard/experiments/fewer-picks").text
    assert "there is nothing to stop" in client.get("/dashboard/experiments/fewer-picks/stop").text


BAD_FORMS: list[tuple[dict[str, Any], int, str]] = [
    ({"name": "bad name!"}, 400, "Experiment name: experiment name &#39;bad name!&#39;: use 1-64 letters"),
    ({"name": "holdout"}, 400, "holdout, personalized and no_consent are reserved"),
    ({"name": "x", "placement": "sidebar"}, 400, "Placement: unknown placement &#39;sidebar&#39;"),
    ({"name": "x", "rows": [("only", "", "")]}, 400, "Variants: an experiment needs at least two variants"),
    ({"name": "x", "rows": [("a", "", "1"), ("b", "", "")]}, 400, "Traffic shares: give a traffic share"),
    ({"name": "x", "rows": [("a", "", "1"), ("b", "", "-2")]}, 400, "Traffic shares: traffic weights must"),
    (
        {"name": "x", "rows": [("a", "", "x"), ("b", "", "1")]},
        400,
        "Traffic shares: variant a: traffic share",
    ),
    ({"name": "x", "rows": [("a", "", ""), ("a", "", "")]}, 400, "Variants: variant names must differ"),
    ({"name": "x", "window_days": "400"}, 400, "Attribution window: the attribution window must be 1 to 365"),
    ({"name": "x", "window_days": "two"}, 400, "Attribution window: the attribution window must be a whole"),
    ({"name": "x", "audience": "nobody-saved-this"}, 404, "Audience: no audience is named"),
    ({"name": "x", "condition": "{not json"}, 400, "Audience: the condition is not valid JSON"),
    ({"name": "x", "kind": "bandit", "floor": "0.9"}, 400, "Exploration floor: the exploration floor must"),
    ({"name": "x", "kind": "lottery"}, 400, "Kind: "),
    ({"name": "{{ 7*7 }}"}, 400, "Experiment name: experiment name &#39;{{ 7*7 }}&#39;"),
]


def test_a_bad_form_says_which_field_and_keeps_what_was_typed(dashboard: LiveDashboard) -> None:
    client = dashboard.client("marketer")
    for fields, status, message in BAD_FORMS:
        answer = client.post("/dashboard/experiments", data=_form(client, **dict(fields)))
        assert answer.status_code == status, (fields, answer.text[:2000])
        assert message in answer.text, fields
        assert 'role="alert"' in answer.text and 'aria-invalid="true"' in answer.text, fields
        assert f'value="{html.escape(fields["name"])}"' in answer.text  # kept, escaped
    assert dashboard.store.experiments.list() == []


def test_a_busy_placement_and_a_used_name_are_conflicts(dashboard: LiveDashboard) -> None:
    client = dashboard.client("marketer")
    assert client.post("/dashboard/experiments", data=_form(client, name="first")).status_code == 303
    busy = client.post("/dashboard/experiments", data=_form(client, name="second"))
    assert (
        busy.status_code == 409 and "Placement: placement &#39;web&#39; already runs experiment" in busy.text
    )
    client.post("/dashboard/experiments/first/stop", data={"csrf": client.csrf, "confirm": "first"})
    reused = client.post("/dashboard/experiments", data=_form(client, name="first"))
    assert reused.status_code == 409 and "names are never reused" in reused.text


def test_the_holdout_cannot_be_stopped_and_an_unknown_experiment_is_not_found(
    dashboard: LiveDashboard,
) -> None:
    client = dashboard.client("marketer")
    for answer in (
        client.get("/dashboard/experiments/holdout/stop"),
        client.post("/dashboard/experiments/holdout/stop", data={"csrf": client.csrf, "confirm": "holdout"}),
    ):
        assert answer.status_code == 400 and "SHOPKEEPER_HOLDOUT_SHARE=0" in answer.text
    for path in ("/dashboard/experiments/nope", "/dashboard/experiments/nope/stop"):
        missing = client.get(path)
        assert missing.status_code == 404 and "no experiment named &#39;nope&#39;" in missing.text


def test_the_holdout_report_reads_as_the_api_s(dashboard: LiveDashboard) -> None:
    api = admin_client(dashboard)
    make_traffic(dashboard, api, customers(dashboard, 240), buy_every=4)
    expected = api.get("/v1/experiments/holdout/report").json()
    # 240, and the few people the demo itself decided for
    assert expected["people"] >= 240 and sum(a["conversions"] for a in expected["arms"]) == 60
    # The report kept since the server started predates this traffic: computed again, as its link does.
    page = dashboard.client("marketer").get("/dashboard/experiments/holdout", params={"fresh": "1"}).text
    for arm in expected["arms"]:
        row = re.search(rf'<th scope="row">{arm["arm"]}.*?</tr>', page, re.S)
        assert row is not None, arm["arm"]
        cells = re.findall(r"<span title=\"[^\"]+\">([^<]+)</span>", row.group(0))
        rate = arm["conversion_rate"]
        assert cells[:7] == [
            f"{arm['people']:,}",
            f"{100 * arm['share']:.1f}%",
            f"{arm['conversions']:,}",
            NO_VALUE if rate is None else f"{100 * rate:.2f}%",
            f"£{arm['revenue']:,.2f}",
            NO_VALUE if arm["revenue_per_person"] is None else f"£{arm['revenue_per_person']:,.2f}",
            f"{100 * arm['probability_best']:.1f}%",
        ]
    for sentence in expected["summary"]:
        assert html.escape(sentence) in page
    srm = expected["srm"]
    assert srm["checked"] and "p = <span" in page and f"{srm['p_value']:.3g}</span>" in page
    assert "Not proven yet:" in page  # the headline's words, as on the overview
    lift = charts(page)["lift-over-time"]
    conversion = expected["arms"][1]["metrics"][0]
    assert lift["series"][0]["label"] == "personalized" and lift["units"] == "percentage points"
    assert lift["series"][0]["values"][-1] == round(100 * conversion["diff"], 2)
    assert lift["series"][0]["low"][-1] == round(100 * conversion["always_valid_ci_low"], 2)
    assert lift["series"][0]["high"][-1] == round(100 * conversion["always_valid_ci_high"], 2)
    assert "more people" in page or "edge of what these people can show" in page  # the power, in words


def test_a_bandit_shows_its_traffic_shares_per_day(dashboard: LiveDashboard) -> None:
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
    make_traffic(dashboard, api, customers(dashboard, 120), placement="new_for_you")
    report = api.get("/v1/experiments/picks-bandit/report").json()
    page = dashboard.client("marketer").get("/dashboard/experiments/picks-bandit").text
    traffic = charts(page)["traffic-shares"]
    people = {arm["arm"]: arm["people"] for arm in report["arms"]}  # one decision each: people = decisions
    total = sum(people.values())
    assert [s["label"] for s in traffic["series"]] == ["mine", "popular"]
    assert [s["values"][-1] for s in traffic["series"]] == [
        round(100 * people["mine"] / total, 1),
        round(100 * people["popular"] / total, 1),
    ]
    assert traffic["decisions"] == [total]
    assert "Not checked: a bandit moves traffic between arms on purpose" in page

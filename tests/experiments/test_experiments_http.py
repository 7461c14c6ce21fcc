"""The experiments API over real HTTP: create, decide into arms, outcomes, report, stop, and every error."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer

from shopkeeper.experiments.assign import Holdout

BODY: dict[str, Any] = {
    "name": "picks",
    "placement": "web",
    "variants": [
        {"name": "personalized"},
        {"name": "baseline", "options": {"model": "popularity"}},
        {"name": "small", "options": {"n": 2, "max_per_category": 1}},
    ],
    "weights": [2, 1, 1],
    "window_days": 7,
    "outcome_events": ["Review Written"],
}
REPORT_KEYS = {
    "name",
    "kind",
    "placement",
    "status",
    "control",
    "window_days",
    "primary_metric",
    "audience",
    "reach",
    "people",
    "excluded_no_consent",
    "window_open",
    "cuped",
    "srm",
    "trustworthy",
    "arms",
    "summary",
}
ARM_KEYS = {
    "arm",
    "people",
    "share",
    "conversions",
    "conversion_rate",
    "revenue",
    "revenue_per_person",
    "events",
    "probability_best",
    "metrics",
}


def _admin(server: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_key}"}


def test_create_decide_report_and_stop_over_http(live_server: LiveServer) -> None:
    url, admin = live_server.url, _admin(live_server)
    created = httpx.post(f"{url}/v1/experiments", headers=admin, json=BODY)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "running" and created.json()["kind"] == "ab"
    users = [f"shopper-{i}" for i in range(30) if not Holdout().contains(f"shopper-{i}")]
    for user in users:
        decided = httpx.post(f"{url}/v1/decide", headers=admin, json={"userId": user})
        assert decided.status_code == 200
        assert decided.json()["reasons"][-1]["provenance"]["experiment"] == "picks"
    write = httpx.BasicAuth(live_server.write_key, "")
    for user in users[:5]:
        tracked = httpx.post(
            f"{url}/v1/track",
            auth=write,
            json={"userId": user, "event": "Order Completed", "properties": {"revenue": 12.5}},
        )
        assert tracked.status_code == 200, tracked.text
    listed = httpx.get(f"{url}/v1/experiments", headers=admin).json()
    assert [e["name"] for e in listed["experiments"]] == ["picks"] and listed["holdout"]["share"] == 0.05
    report = httpx.get(f"{url}/v1/experiments/picks/report", headers=admin)
    assert report.status_code == 200, report.text
    body = report.json()
    assert set(body) == REPORT_KEYS
    assert [a["arm"] for a in body["arms"]] == ["personalized", "baseline", "small"]
    assert all(set(a) >= ARM_KEYS for a in body["arms"])
    assert body["people"] == len(users) and sum(a["conversions"] for a in body["arms"]) == 5
    assert sum(a["revenue"] for a in body["arms"]) == pytest.approx(62.5)
    for arm in body["arms"][1:]:
        if arm["metrics"]:
            assert [m["metric"] for m in arm["metrics"]] == ["conversion", "revenue", "Review Written"]
            assert {m["verdict"] for m in arm["metrics"]} <= {"win", "loss", "inconclusive"}
    holdout = httpx.get(f"{url}/v1/experiments/holdout/report", headers=admin, params={"window_days": 3})
    assert holdout.status_code == 200 and holdout.json()["window_days"] == 3
    stopped = httpx.post(f"{url}/v1/experiments/picks/stop", headers=admin)
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    after = httpx.post(f"{url}/v1/decide", headers=admin, json={"userId": users[0]}).json()
    assert all("experiment" not in r["provenance"] for r in after["reasons"])


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"variants": [{"name": "only"}]}, 400, "variants"),
        ({"variants": [{"name": "a"}, {"name": "b", "options": {"n": 500}}]}, 400, "variants"),
        ({"variants": [{"name": "a"}, {"name": "b", "colour": "red"}]}, 400, "variants.1.colour"),
        ({"placement": "nowhere"}, 400, "placement"),
        ({"name": "holdout"}, 400, "name"),
        ({"name": ""}, 400, "name"),
        ({"weights": [1]}, 400, "weights"),
        ({"weights": ["a", "b", "c"]}, 400, "weights"),
        ({"weights": [1, True, 1]}, 400, "weights"),
        ({"audience": {"trait": "order_count", "gte": "x"}}, 400, "audience.gte"),
        ({"window_days": 0}, 400, "window_days"),
        ({"bandit": "yes"}, 400, "bandit"),
        ({"floor": "0.1"}, 400, "floor"),
        ({"floor": 0.4}, 400, "floor"),
        ({"floor": 0.6}, 400, "floor"),
        ({"surprise": 1}, 400, "surprise"),
    ],
)
def test_bad_input_is_a_precise_4xx(
    live_server: LiveServer, change: dict[str, Any], status: int, field: str
) -> None:
    response = httpx.post(
        f"{live_server.url}/v1/experiments", headers=_admin(live_server), json={**BODY, **change}
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field and error["message"]


def test_errors_for_names_conflicts_and_bodies(live_server: LiveServer) -> None:
    url, admin = live_server.url, _admin(live_server)
    assert httpx.post(f"{url}/v1/experiments", headers=admin, json=BODY).status_code == 201
    again = httpx.post(f"{url}/v1/experiments", headers=admin, json=BODY)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    busy = httpx.post(f"{url}/v1/experiments", headers=admin, json={**BODY, "name": "other"})
    assert busy.status_code == 409 and busy.json()["error"]["field"] == "placement"
    for method, path in (("GET", "/v1/experiments/nope/report"), ("POST", "/v1/experiments/nope/stop")):
        missing = httpx.request(method, url + path, headers=admin)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    holdout_stop = httpx.post(f"{url}/v1/experiments/holdout/stop", headers=admin)
    assert holdout_stop.status_code == 400
    bad_window = httpx.get(f"{url}/v1/experiments/picks/report", headers=admin, params={"window_days": 0})
    assert bad_window.status_code == 400 and bad_window.json()["error"]["field"] == "window_days"
    not_json = httpx.post(
        f"{url}/v1/experiments", headers={**admin, "Content-Type": "application/json"}, content=b"{nope"
    )
    assert not_json.status_code == 400
    assert httpx.get(f"{url}/v1/experiments").status_code == 401
    write = {"Authorization": f"Bearer {live_server.write_key}"}
    assert httpx.get(f"{url}/v1/experiments", headers=write).status_code == 403

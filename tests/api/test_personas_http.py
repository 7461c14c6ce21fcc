"""Personas and audiences over real HTTP (the admin key), as a marketer meets them: discovery on the bundled
sample of real orders (599 customers: the RFM path; with SHOPKEEPER_PERSONAS_SMALL_SHOP lowered, k-means),
ids and names that stay across runs, the persona guess a customer may reject, saved audiences with their
reach and the guard's word, every bad condition named by its path, the broad-vs-narrow comparison, and
saved audiences targeted by experiments and moment rules.

The sample runs on SQLite (imported once, copied per test); what runs on both backends uses a handful of
customers sent through the API.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from tests.api.tracking_support import Server
from tests.conftest import LiveServer, serving
from tests.personas.persona_shop import PERSONA_KEYS, RFM_NAMES, import_sample

from shopkeeper.experiments.assign import Holdout
from shopkeeper.profiles.builder import ProfileBuilder
from shopkeeper.settings import Settings
from shopkeeper.store import Store
from shopkeeper.store.interactions import PURCHASE
from shopkeeper.store.schema import events, identities, interactions

RUN_KEYS = {
    "k",
    "coverage",
    "silhouette",
    "stability_ari",
    "method",
    "customers",
    "everyone_else",
    "personas",
}


# ---- shops --------------------------------------------------------------------------------------------


@dataclass
class Front:
    """A live server with its keys and store."""

    url: str
    admin: str
    write: str
    store: Store

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin}", "Content-Type": "application/json"}
        content = raw if raw is not None else (None if body is None else orjson.dumps(body))
        return httpx.request(method, f"{self.url}{path}", content=content, headers=headers, timeout=60)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        response = self.call(method, path, body)
        assert response.status_code == 200, (method, path, response.text)
        return response.json()


def assert_error(response: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["field"] == field, error
    assert error["message"]
    return error


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample, replayed to end today, with its profiles built: imported once per module."""
    return import_sample(tmp_path_factory.mktemp("personas-sample") / "sample.db")


@contextmanager
def sample_front(sample_db: Path, tmp_path: Path, **settings: Any) -> Iterator[Front]:
    """A copy of the sample shop, served with these settings."""
    copy = tmp_path / "shop.db"
    shutil.copy(sample_db, copy)
    url = f"sqlite:///{copy}"
    store = Store.open(url)
    try:
        write_key, _ = store.keys.create("write", name="tests")
        admin_key, _ = store.keys.create("admin", name="tests")
        chosen = Settings(database_url=url, rate_limit_failed_auth=0, rate_limit_failed_links=0, **settings)
        with serving(store, settings=chosen) as served:
            yield Front(served, admin_key, write_key, store)
    finally:
        store.close()


@pytest.fixture
def sample(sample_db: Path, tmp_path: Path) -> Iterator[Front]:
    with sample_front(sample_db, tmp_path) as front:
        yield front


@pytest.fixture
def small(live_server: LiveServer) -> Front:
    """A handful of customers sent through the API, on SQLite and PostgreSQL: u0..u11, customer u{i}
    placed 1 + i % 4 orders (so u3, u7 and u11 placed 4), of items priced 5, 20 and 80."""
    front = Front(live_server.url, live_server.admin_key, live_server.write_key, live_server.store)
    for i, price in enumerate([5.0, 20.0, 80.0]):
        item = {"title": f"Item {i}", "category": f"Cat{i} > Sub", "price": price, "currency": "GBP"}
        front.ok("PUT", f"/v1/items/i{i}", item)
    batch = [
        {
            "type": "track",
            "userId": f"u{u}",
            "event": "Order Completed",
            "messageId": f"o{u}-{o}",
            "properties": {"order_id": f"o{u}-{o}", "products": [{"product_id": f"i{u % 3}", "quantity": 1}]},
        }
        for u in range(12)
        for o in range(1 + u % 4)
    ]
    sent = httpx.post(f"{front.url}/v1/batch", auth=(front.write, ""), json={"batch": batch}, timeout=30)
    assert sent.status_code == 200 and sent.json()["stored"] == len(batch), sent.text
    ProfileBuilder(front.store).refresh_dirty()
    return front


def user_of(store: Store, person_id: int) -> str:
    with store.engine.connect() as conn:
        query = select(identities.c.value).where(
            identities.c.person_id == person_id, identities.c.kind == "user_id"
        )
        return str(conn.scalar(query))


def trait(front: Front, user: str, key: str) -> dict[str, Any] | None:
    found = [t for t in front.ok("GET", f"/v1/people/{user}")["traits"] if t["key"] == key]
    return found[0] if found else None


def arm_of(front: Front, user: str) -> tuple[str | None, str | None]:
    """The (experiment, arm) a decision for `user` was made in, or (None, None)."""
    decided = front.ok("POST", "/v1/decide", {"userId": user})
    for reason in decided["reasons"]:
        provenance = reason.get("provenance", {})
        if provenance.get("experiment"):
            return provenance["experiment"], provenance.get("arm")
    return None, None


def check_contract(found: dict[str, Any]) -> None:
    assert set(found) >= RUN_KEYS, sorted(RUN_KEYS - set(found))
    assert isinstance(found["k"], int) and not isinstance(found["k"], bool) and 2 <= found["k"] <= 12
    assert isinstance(found["coverage"], float) and 0 < found["coverage"] <= 1
    assert found["silhouette"] is None or -1 <= found["silhouette"] <= 1
    assert found["stability_ari"] is None or -1 <= found["stability_ari"] <= 1
    assert isinstance(found["personas"], list) and len(found["personas"]) == found["k"]
    for persona in found["personas"]:
        assert set(persona) >= PERSONA_KEYS, sorted(PERSONA_KEYS - set(persona))
        assert isinstance(persona["id"], str) and persona["id"].startswith("p")
        assert isinstance(persona["name"], str) and persona["name"]
        assert isinstance(persona["rule"], str) and persona["rule"]
        assert 0 <= persona["rule_agreement"] <= 1
        assert isinstance(persona["size"], int) and persona["size"] > 0
        assert 0 < persona["share_customers"] <= 1 and 0 <= persona["share_revenue"] <= 1
        assert isinstance(persona["description"], str) and persona["description"]
        assert isinstance(persona["top_categories"], list)
        assert all(isinstance(c, str) for c in persona["top_categories"])
    assert len({p["id"] for p in found["personas"]}) == found["k"]
    # The shares add up: the personas and everyone else are all the customers.
    shares = sum(p["share_customers"] for p in found["personas"])
    assert shares == pytest.approx(found["coverage"], abs=0.01)
    assert shares + found["everyone_else"]["share_customers"] == pytest.approx(1.0, abs=0.01)
    sizes = sum(p["size"] for p in found["personas"])
    assert sizes + found["everyone_else"]["size"] == found["customers"]
    assert sum(p["share_revenue"] for p in found["personas"]) <= 1.0 + 1e-6


# ---- discovery -------------------------------------------------------------------------------------------


def test_discover_on_the_sample_takes_the_rfm_path_and_keeps_the_contract(sample: Front) -> None:
    answer = httpx.post(
        f"{sample.url}/v1/personas/discover", headers={"Authorization": f"Bearer {sample.admin}"}, timeout=60
    )  # no body at all
    assert answer.status_code == 200, answer.text
    found = answer.json()
    check_contract(found)
    assert found["method"] == "rfm"
    assert found["coverage"] >= 0.7
    assert 550 <= found["customers"] <= 599
    names = {p["name"] for p in found["personas"]}
    assert "Champions" in names and names <= RFM_NAMES
    listed = sample.ok("GET", "/v1/personas")
    assert listed["run"]["run"] == found["run"] and listed["run"]["method"] == "rfm"
    assert [(p["id"], p["name"], p["size"]) for p in listed["personas"]] == [
        (p["id"], p["name"], p["size"]) for p in found["personas"]
    ]
    first = found["personas"][0]
    shown = sample.ok("GET", f"/v1/personas/{first['id']}")
    assert {k: shown[k] for k in PERSONA_KEYS} == {k: first[k] for k in PERSONA_KEYS}
    assert shown["active"] is True and shown["renamed"] is False


@pytest.mark.slow  # k-means with its stability resampling: seconds
def test_with_the_small_shop_setting_lowered_discovery_clusters(sample_db: Path, tmp_path: Path) -> None:
    with sample_front(sample_db, tmp_path, personas_small_shop=50) as front:
        found = front.ok("POST", "/v1/personas/discover", {"k": 3, "seed": 1})
    check_contract(found)
    assert found["method"] == "kmeans" and found["k"] == 3
    assert found["silhouette"] is not None


def test_ids_stay_across_runs_and_a_rename_stays_too(sample: Front) -> None:
    first = sample.ok("POST", "/v1/personas/discover", {})
    second = sample.ok("POST", "/v1/personas/discover", {"k": "auto", "seed": 0, "target": 0.7})
    by_name = {p["name"]: p["id"] for p in first["personas"]}
    assert {p["name"]: p["id"] for p in second["personas"]} == by_name
    assert second["run"] == first["run"] + 1
    champions = by_name["Champions"]
    renamed = sample.ok("PATCH", f"/v1/personas/{champions}", {"name": "  Our VIPs  "})
    assert (renamed["id"], renamed["name"], renamed["renamed"]) == (champions, "Our VIPs", True)
    third = sample.ok("POST", "/v1/personas/discover")
    again = {p["id"]: p for p in third["personas"]}
    assert again[champions]["name"] == "Our VIPs"
    assert sample.ok("GET", f"/v1/personas/{champions}")["name"] == "Our VIPs"
    assert {p["id"] for p in third["personas"]} == set(by_name.values())


def test_a_customers_persona_is_an_inferred_trait_they_may_reject(sample: Front) -> None:
    found = sample.ok("POST", "/v1/personas/discover")
    persona = max(found["personas"], key=lambda p: p["size"])
    user = user_of(sample.store, persona["typical_members"][0])
    guess = trait(sample, user, "persona")
    assert guess is not None and guess["source"] == "inferred" and guess["value"] == persona["name"]
    audience = sample.ok("PUT", "/v1/audiences/one-persona", {"where": {"persona": persona["id"]}})
    assert audience["reach"]["size"] == persona["size"]
    people = sample.ok("POST", f"/v1/people/{user}/rejections", {"key": "persona"})
    assert "persona" not in {t["key"] for t in people["traits"]}
    assert trait(sample, user, "persona") is None
    assert sample.ok("GET", "/v1/audiences/one-persona/reach")["size"] == persona["size"] - 1
    sample.ok("POST", "/v1/personas/discover")
    assert trait(sample, user, "persona") is None, "a later run gave back the rejected persona"
    with sample.store.engine.connect() as conn:
        members = sample.store.personas.members(conn)
    inside = sorted(p for p, pid in members.items() if pid == persona["id"])
    assert persona["typical_members"][0] not in members, "the rejected customer is a member again"
    assert sample.ok("GET", "/v1/audiences/one-persona/reach")["size"] == len(inside)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"k": 1}, "k"),
        ({"k": 13}, "k"),
        ({"k": "three"}, "k"),
        ({"k": 2.5}, "k"),
        ({"k": True}, "k"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**31}, "seed"),
        ({"seed": "1"}, "seed"),
        ({"target": 0.1}, "target"),
        ({"target": 1.5}, "target"),
        ({"target": "most"}, "target"),
        ({"colour": "red"}, "colour"),
        ([], "body"),
    ],
)
def test_bad_discover_bodies_name_their_field(server: Server, body: Any, field: str) -> None:
    front = Front(server.url, server.admin_key, server.write_key, server.store)
    assert_error(front.call("POST", "/v1/personas/discover", body), 400, field)


def test_discover_on_a_small_shop_both_backends_and_its_errors(small: Front) -> None:
    found = small.ok("POST", "/v1/personas/discover", {})  # an empty object is fine
    check_contract(found)
    assert found["method"] == "rfm" and found["customers"] == 12
    pid = found["personas"][0]["id"]
    assert trait(small, "u3", "persona") is not None
    assert_error(small.call("GET", "/v1/personas/p999"), 404, "id")
    assert_error(small.call("PATCH", "/v1/personas/p999", {"name": "Ghosts"}), 404, "id")
    broken = small.call("POST", "/v1/personas/discover", raw=b'{"k": ')
    assert_error(broken, 400, "body")
    for bad in ("", "   ", "x" * 200, "tab\there", "new\nline", "evil\u202etxt", "iso\u2066late", 7, None):
        assert_error(small.call("PATCH", f"/v1/personas/{pid}", {"name": bad}), 400, "name")
    assert_error(small.call("PATCH", f"/v1/personas/{pid}", {}), 400, "name")
    assert_error(small.call("PATCH", f"/v1/personas/{pid}", {"name": "ok", "x": 1}), 400, "x")
    assert small.ok("GET", f"/v1/personas/{pid}")["name"] == found["personas"][0]["name"]


def test_discover_with_no_customers_is_a_400(server: Server) -> None:
    front = Front(server.url, server.admin_key, server.write_key, server.store)
    assert_error(front.call("POST", "/v1/personas/discover"), 400, "customers")
    assert front.ok("GET", "/v1/personas") == {"run": None, "personas": []}


# ---- audiences ---------------------------------------------------------------------------------------


def test_audiences_are_created_replaced_read_listed_and_deleted(small: Front) -> None:
    where = {"event": "Order Completed", "at_least": 3}
    created = small.ok("PUT", "/v1/audiences/regulars", {"where": where, "description": "3+ orders"})
    assert created["created"] is True and created["name"] == "regulars"
    assert created["where"] == {"event": "Order Completed", "at_least": 3}
    assert created["description"] == "3+ orders" and created["summary"]
    assert created["reach"]["size"] == 6  # u2, u3, u6, u7, u10, u11
    replaced = small.ok(
        "PUT", "/v1/audiences/regulars", {"where": {"event": "Order Completed", "at_least": 4}}
    )
    assert replaced["created"] is False and replaced["reach"]["size"] == 3
    assert replaced["description"] is None
    shown = small.ok("GET", "/v1/audiences/regulars")
    assert shown["where"]["at_least"] == 4 and shown["reach"]["size"] == 3
    assert [(a["name"], a["size"]) for a in small.ok("GET", "/v1/audiences")["items"]] == [("regulars", 3)]
    deleted = small.ok("DELETE", "/v1/audiences/regulars")
    assert deleted == {"deleted": True, "name": "regulars"}
    assert_error(small.call("GET", "/v1/audiences/regulars"), 404, "name")
    assert_error(small.call("GET", "/v1/audiences/regulars/reach"), 404, "name")
    assert_error(small.call("DELETE", "/v1/audiences/regulars"), 404, "name")
    assert small.ok("GET", "/v1/audiences") == {"items": []}


def test_reach_has_every_figure_and_under_ten_people_is_not_k_anonymous(small: Front) -> None:
    reach = small.ok("PUT", "/v1/audiences/most", {"where": {"trait": "order_count", "gte": 4}})["reach"]
    assert reach == small.ok("GET", "/v1/audiences/most/reach")
    assert reach["size"] == 3 and reach["known"]["people"] == 12 and reach["known"]["share"] == 0.25
    assert reach["active"]["of"] == 12 and reach["active"]["people"] == 3 and reach["active"]["days"] == 90
    assert set(reach["revenue"]) == {"amount", "share"} and reach["revenue"]["amount"] >= 0
    assert set(reach["reachable"]) == {"personalization", "email_marketing", "staff_outreach"}
    for entry in reach["reachable"].values():
        assert 0 <= entry["people"] <= 3
    assert reach["reachable"]["personalization"]["people"] + reach["holdout"]["people"] <= 3
    guard = reach["guard"]
    assert guard["k_anonymous"] is False and guard["narrow"] is False  # 25% of the active ones
    assert any("Fewer than 10" in w for w in guard["warnings"])
    everyone = small.ok("PUT", "/v1/audiences/all", {"where": {"purchased": True}})["reach"]
    assert everyone["size"] == 12 and everyone["guard"]["k_anonymous"] is True
    assert everyone["guard"]["warnings"] == []


def hand_count_events(store: Store, event: str, at_least: int) -> int:
    with store.engine.connect() as conn:
        per_person = (
            select(events.c.person_id)
            .where(events.c.event == event)
            .group_by(events.c.person_id)
            .having(func.count() >= at_least)
            .subquery()
        )
        return int(conn.scalar(select(func.count()).select_from(per_person)) or 0)


def hand_count_buyers_since(store: Store, days: int) -> int:
    since = datetime.now(UTC) - timedelta(days=days)
    with store.engine.connect() as conn:
        query = select(func.count(func.distinct(interactions.c.person_id))).where(
            interactions.c.kind == PURCHASE, interactions.c.at >= since
        )
        return int(conn.scalar(query) or 0)


def test_a_narrow_audience_is_warned_and_sizes_agree_with_a_hand_count(sample: Front) -> None:
    narrow = sample.ok("PUT", "/v1/audiences/whales", {"where": {"trait": "order_count", "gte": 40}})
    reach = narrow["reach"]
    assert 1 <= reach["size"] < 10
    assert reach["guard"]["narrow"] is True and reach["guard"]["k_anonymous"] is False
    assert reach["guard"]["left_out"] == reach["active"]["of"] - reach["active"]["people"] > 300
    assert any("left out" in w for w in reach["guard"]["warnings"])
    assert any("compare whales" in w for w in reach["guard"]["warnings"])
    frequent = {"event": "Order Completed", "at_least": 10}
    by_event = sample.ok("PUT", "/v1/audiences/frequent", {"where": frequent})["reach"]
    assert by_event["size"] == hand_count_events(sample.store, "Order Completed", 10) > 10
    recent = {"purchased": True, "within_days": 30}
    by_purchase = sample.ok("PUT", "/v1/audiences/recent", {"where": recent})["reach"]
    assert by_purchase["size"] == hand_count_buyers_since(sample.store, 30) > 10
    assert by_purchase["known"]["people"] >= 590 and 0 < by_purchase["revenue"]["share"] < 1


# ---- the condition language's errors -------------------------------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    condition: dict[str, Any] = {"event": "Order Completed"}
    for _ in range(depth - 1):
        condition = {"not": condition}
    return condition


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"where": {"all": [{"event": "Viewed", "at_least": "3"}]}}, "where.all[0].at_least"),
        (
            {"where": {"all": [{"event": "Viewed"}, {"purchased": True, "within_days": 0}]}},
            "where.all[1].within_days",
        ),
        ({"where": {"any": [{"trait": "order_count", "gte": "many"}]}}, "where.any[0].gte"),
        ({"where": {"event": "Viewed", "colour": "red"}}, "where.colour"),
        ({"where": {"colour": "red"}}, "where.colour"),
        ({"where": {}}, "where"),
        ({"where": {"event": "Viewed", "trait": "x"}}, "where.trait"),
        ({"where": {"all": []}}, "where.all"),
        ({"where": {"all": {"event": "x"}}}, "where.all"),
        ({"where": {"not": [{"event": "x"}]}}, "where.not"),
        ({"where": {"all": [{"event": "x"}], "any": []}}, "where.any"),
        ({"where": {"event": ""}}, "where.event"),
        ({"where": {"event": "x", "at_least": True}}, "where.at_least"),
        ({"where": {"consent": "email_marketing", "granted": "yes"}}, "where.granted"),
        ({"where": {"wish": True, "status": "lost"}}, "where.status"),
        ({"where": {"trait": "x", "source": "rumour", "equals": 1}}, "where.source"),
        ({"where": {"trait": "x", "gte": 5, "lte": 1}}, "where.lte"),
        ({"where": {"purchased": False}}, "where.purchased"),
        ({"where": nested(7)}, "where" + ".not" * 6),
        ({"where": "everyone"}, "where"),
        ({"where": None}, "where"),
        ({"description": "no where"}, "where"),
        ({"where": {"event": "x"}, "description": "d" * 501}, "description"),
        ({"where": {"event": "x"}, "colour": 1}, "colour"),
        ([], "body"),
    ],
)
def test_a_bad_condition_is_a_400_naming_its_path(server: Server, body: Any, field: str) -> None:
    front = Front(server.url, server.admin_key, server.write_key, server.store)
    error = assert_error(front.call("PUT", "/v1/audiences/bad", body), 400, field)
    assert error["code"] == "invalid_input"
    assert front.call("GET", "/v1/audiences/bad").status_code == 404


def test_nesting_at_the_limit_is_fine_and_malformed_json_is_a_400(server: Server) -> None:
    front = Front(server.url, server.admin_key, server.write_key, server.store)
    assert front.ok("PUT", "/v1/audiences/deep", {"where": nested(6)})["created"] in (True, False)
    assert_error(front.call("PUT", "/v1/audiences/deep", raw=b'{"where": {"event": '), 400, "body")
    assert_error(front.call("PUT", "/v1/audiences/bad%20name", {"where": {"event": "x"}}), 400, "name")
    assert_error(front.call("PUT", "/v1/audiences/deep", raw=b""), 400, "body")
    too_many = {"where": {"any": [{"event": f"e{i}"} for i in range(33)]}}
    assert front.call("PUT", "/v1/audiences/deep", too_many).status_code == 400


# ---- broad vs narrow -----------------------------------------------------------------------------------


@pytest.mark.slow  # 70 decisions over HTTP
def test_compare_starts_then_reports_and_decide_splits_members_and_others(sample: Front) -> None:
    found = sample.ok("POST", "/v1/personas/discover")
    lapsed = next(p for p in found["personas"] if p["name"] == "Lapsed customers")
    saved = sample.ok("PUT", "/v1/audiences/lapsed", {"where": {"persona": lapsed["id"]}})
    assert saved["reach"]["guard"]["narrow"] is True  # nobody of them is active
    started = sample.ok("POST", "/v1/audiences/lapsed/compare")
    assert (started["experiment"], started["started"], started["verdict"]) == (
        "compare-lapsed",
        True,
        "not proven yet",
    )
    assert started["narrow"]["size"] == lapsed["size"] and started["placement"] == "web"
    assert started["narrow"]["shown"] == 0 and started["broad"]["shown"] == 0
    again = sample.ok("POST", "/v1/audiences/lapsed/compare", {"placement": "web"})
    assert again["started"] is False and again["experiment"] == "compare-lapsed"
    with sample.store.engine.connect() as conn:
        members = sample.store.personas.members(conn)
    inside = [p for p, pid in members.items() if pid == lapsed["id"]][:12]
    outside = [p for p, pid in members.items() if pid != lapsed["id"]][:60]
    arms_in = {arm_of(sample, user_of(sample.store, p)) for p in inside}
    arms_out = [arm_of(sample, user_of(sample.store, p)) for p in outside]
    arms_in.discard((None, None))  # a member in the shop's holdout is shown nothing in it
    assert arms_in == {("compare-lapsed", "narrow")}
    assert ("compare-lapsed", "broad") in arms_out
    assert ("compare-lapsed", "narrow") not in arms_out
    report = sample.ok("POST", "/v1/audiences/lapsed/compare")
    assert report["narrow"]["shown"] >= 10 and report["broad"]["shown"] >= 1


def test_compare_refuses_fewer_than_ten_people_and_unknown_audiences(sample: Front) -> None:
    sample.ok("PUT", "/v1/audiences/whales", {"where": {"trait": "order_count", "gte": 40}})
    assert_error(sample.call("POST", "/v1/audiences/whales/compare"), 400, "name")
    assert_error(sample.call("POST", "/v1/audiences/nobody/compare"), 404, "name")
    assert_error(sample.call("POST", "/v1/audiences/whales/compare", {"placement": 3}), 400, "placement")
    assert_error(sample.call("POST", "/v1/audiences/whales/compare", {"where": 3}), 400, "where")
    assert sample.ok("GET", "/v1/experiments")["experiments"] == []


# ---- targeting: experiments and moment rules ------------------------------------------------------------

EXPERIMENT = {
    "name": "for-regulars",
    "placement": "web",
    "variants": [{"name": "personalized"}, {"name": "baseline", "options": {"model": "popularity"}}],
}


def test_an_experiment_targets_a_saved_audience_and_assigns_only_its_members(small: Front) -> None:
    small.ok("PUT", "/v1/audiences/regulars", {"where": {"event": "Order Completed", "at_least": 3}})
    unknown = small.call("POST", "/v1/experiments", {**EXPERIMENT, "audience": "nobody"})
    assert unknown.status_code in (400, 404), unknown.text
    assert "nobody" in unknown.json()["error"]["message"]
    created = small.call("POST", "/v1/experiments", {**EXPERIMENT, "audience": "regulars"})
    assert created.status_code == 201, created.text
    assert created.json()["audience"] == {"audience": "regulars"}
    holdout = Holdout()
    members = [f"u{u}" for u in (2, 3, 6, 7, 10, 11) if not holdout.contains(f"u{u}")]
    others = [f"u{u}" for u in (0, 1, 4, 5, 8, 9) if not holdout.contains(f"u{u}")]
    for user in members:
        experiment, arm = arm_of(small, user)
        assert experiment == "for-regulars" and arm in ("personalized", "baseline"), user
    for user in others:
        assert arm_of(small, user) == (None, None), user


def test_moment_rules_target_saved_audiences_and_full_conditions(small: Front) -> None:
    rule = {"trigger": "back_in_stock", "channels": ["staff"]}
    assert_error(
        small.call("PUT", "/v1/moments/rules/for-vips", {**rule, "audience": "vips"}), 400, "audience"
    )
    small.ok("PUT", "/v1/audiences/vips", {"where": {"event": "Order Completed", "at_least": 4}})
    saved = small.ok("PUT", "/v1/moments/rules/for-vips", {**rule, "audience": "vips"})
    assert saved["audience"] == "vips"
    where = {"all": [{"event": "Order Completed", "at_least": 2}, {"purchased": "Cat0"}]}
    both = small.ok("PUT", "/v1/moments/rules/both", {**rule, "where": where})
    assert both["where"]["all"][0]["event"] == "Order Completed"
    bad = {**rule, "where": {"all": [{"event": "x", "at_least": 0}]}}
    assert_error(small.call("PUT", "/v1/moments/rules/bad", bad), 400, "where.all[0].at_least")

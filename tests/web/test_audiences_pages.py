"""The audiences pages over the demo shop: the list and each audience against the JSON API, the builder's
live preview against the service (and a hand count), its precise errors (400, never 500), saving,
comparing and deleting (each audited), and who may do what."""

from __future__ import annotations

import html
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from tests.web.support import LiveDashboard

from shopkeeper import Shop
from shopkeeper.personas.conditions import parse_condition
from shopkeeper.store import Store

pytestmark = pytest.mark.slow
WRAPS = {"all": [{"purchased": "Wraps", "within_days": 60}, {"trait": "order_count", "gte": 5}]}


@pytest.fixture
def oracle(dashboard: LiveDashboard) -> Iterator[Shop]:
    """The same shop, opened in the test: the service the pages should agree with."""
    shop = Shop.open(str(dashboard.store.engine.url))
    try:
        yield shop
    finally:
        shop.close()


def _api(dashboard: LiveDashboard) -> httpx.Client:
    raw, _ = dashboard.store.keys.create("admin", name="pages test")
    client = httpx.Client(base_url=dashboard.url, headers={"Authorization": f"Bearer {raw}"}, timeout=30)
    dashboard.clients.append(client)
    return client


def _text(markup: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup)))


def _size(markup: str) -> int:
    found = re.search(r'id="reach-size" data-size="(\d+)"', markup)
    assert found, _text(markup)[:500]
    return int(found.group(1))


def _audit(store: Store, action: str) -> list[dict[str, Any]]:
    return [e.detail for e in store.users.audit_entries(limit=50, actor_prefix="user ") if e.action == action]


def _rows(*leaves: dict[str, str], join: str = "all", **fields: str) -> dict[str, str]:
    """The builder's form: one row per leaf ({"kind": ..., "<kind>-<field>": text, "not": "1"})."""
    form = {"join": join, "editor": "rows", **fields}
    for i, leaf in enumerate(leaves):
        form |= {f"r{i}-{key}": value for key, value in leaf.items()}
    return form


def _preview(client: httpx.Client, form: dict[str, str]) -> httpx.Response:
    headers = {"HX-Request": "true", "X-CSRF-Token": client.csrf}  # type: ignore[attr-defined]
    return client.post("/dashboard/audiences/preview", data=form, headers=headers)


def test_the_list_and_an_audience_show_what_the_api_says(dashboard: LiveDashboard) -> None:
    client = dashboard.client("marketer")
    api = _api(dashboard)
    listed = client.get("/dashboard/audiences")
    assert listed.status_code == 200
    for audience in api.get("/v1/audiences").json()["items"]:
        row = re.search(rf'<a href="/dashboard/audiences/{audience["name"]}">.*?</tr>', listed.text, re.S)
        assert row, audience["name"]
        assert f'<span title="live people who meet the condition now">{audience["size"]}</span>' in row.group(
            0
        )
        assert audience["summary"] in _text(row.group(0))
    reach = api.get("/v1/audiences/wrap-regulars/reach").json()
    cell = client.get("/dashboard/audiences/wrap-regulars", params={"part": "reach"})
    assert cell.status_code == 200 and "<html" not in cell.text
    assert f"{100 * reach['active']['share']:.1f}% of active" in cell.text
    assert f"{reach['reachable']['personalization']['people']} reachable" in cell.text
    assert ("narrow" in cell.text) == reach["guard"]["narrow"]
    page = client.get("/dashboard/audiences/wrap-regulars")
    assert page.status_code == 200 and _size(page.text) == reach["size"]
    text = _text(page.text)
    assert f"{reach['known']['people']}" in text and f"{100 * reach['revenue']['share']:.1f}%" in text
    for purpose, found in reach["reachable"].items():
        assert re.search(
            rf">{purpose.replace('_', ' ')}</th><td class=\"num\"><span [^>]+>{found['people']}<", page.text
        )
    assert f"In the holdout {reach['holdout']['people']}" in text
    # The guard's warning, pointing at the comparison on this page rather than at the command line.
    assert reach["guard"]["warnings"][0].startswith("Narrow: it holds 6.9% of active customers")
    assert "Narrow: it holds 6.9% of active customers" in text
    assert "Compare it with the broad base with the comparison below." in text
    # The builder opens with the saved condition as rows, and the JSON beside it.
    assert 'value="Wraps"' in page.text and 'value="order_count"' in page.text
    assert json.loads(
        html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", page.text, re.S).group(1))
    ) == (  # type: ignore[union-attr]
        parse_condition(WRAPS)
    )
    assert client.get("/dashboard/audiences/nobody").status_code == 404
    bad = client.get("/dashboard/audiences/-bad-")
    assert bad.status_code == 400 and "use 1-64 letters, digits" in bad.text


def test_the_preview_follows_each_condition_as_the_service_counts_it(
    dashboard: LiveDashboard, oracle: Shop
) -> None:
    client = dashboard.client("marketer")
    members = Counter(dashboard.store.personas.members().values())
    for persona in ("p1", "p3"):  # a hand count: the persona's members
        answer = _preview(client, _rows({"kind": "persona", "persona-id": persona}))
        assert answer.status_code == 200 and _size(answer.text) == members[persona]
    cases = [
        (
            _rows({"kind": "event", "event-name": "Order Completed", "event-at_least": "3"}),
            {"event": "Order Completed", "at_least": 3},
        ),
        (
            _rows({"kind": "purchased", "purchased-category": "Mugs", "purchased-within_days": "30"}),
            {"purchased": "Mugs", "within_days": 30},
        ),
        (
            _rows(
                {"kind": "purchased", "purchased-category": "Wraps", "purchased-within_days": "60"},
                {"kind": "trait", "trait-key": "order_count", "trait-test": "gte", "trait-value": "5"},
            ),
            WRAPS,
        ),
        (
            _rows(
                {"kind": "persona", "persona-id": "p1"},
                {"kind": "consent", "consent-purpose": "email_marketing", "consent-granted": "false"},
                join="any",
            ),
            {"any": [{"persona": "p1"}, {"consent": "email_marketing", "granted": False}]},
        ),
        (
            _rows(
                {"kind": "persona", "persona-id": "p5", "not": "1"},
                {
                    "kind": "trait",
                    "trait-key": "order_count",
                    "trait-test": "between",
                    "trait-value": "2",
                    "trait-to": "4",
                },
            ),
            {"all": [{"not": {"persona": "p5"}}, {"trait": "order_count", "gte": 2, "lte": 4}]},
        ),
        (
            {
                "editor": "json",
                "where_json": json.dumps({"not": {"any": [{"persona": "p1"}, {"persona": "p2"}]}}),
            },
            {"not": {"any": [{"persona": "p1"}, {"persona": "p2"}]}},
        ),
    ]
    sizes = set()
    for form, condition in cases:
        answer = _preview(client, form)
        reach = oracle.audiences.reach_of(parse_condition(condition))
        assert answer.status_code == 200, _text(answer.text)
        assert _size(answer.text) == reach["size"], condition
        text = _text(answer.text)
        assert f"({reach['active']['people']:,} of {reach['active']['of']:,}, last 90 days)" in text
        for purpose, found in reach["reachable"].items():
            assert f">{found['people']:,}<" in answer.text, purpose
        assert ("Narrow:" in text) == reach["guard"]["narrow"]
        sizes.add(reach["size"])
    assert len(sizes) == len(cases)  # every condition changes the figure
    # From rows, the JSON box is brought up to date beside the fragment (out of band)...
    rows = _preview(client, cases[2][0])
    box = re.search(r'<textarea id="where-json"[^>]*hx-swap-oob="true">(.*?)</textarea>', rows.text, re.S)
    assert box and json.loads(html.unescape(box.group(1))) == parse_condition(WRAPS)
    # ... and from JSON that rows can say, the rows.
    from_json = _preview(client, {"editor": "json", "where_json": json.dumps(WRAPS)})
    assert '<div id="rows" hx-swap-oob="true">' in from_json.text and 'value="Wraps"' in from_json.text
    empty = _preview(client, _rows({"kind": ""}))
    assert empty.status_code == 200 and "Pick a condition" in empty.text
    # A row still being filled in is left out, said so, and is no error yet.
    typing = _preview(
        client,
        _rows({"kind": "persona", "persona-id": "p1"}, {"kind": "event", "event-name": " "}),
    )
    assert typing.status_code == 200 and _size(typing.text) == members["p1"]
    assert "Condition 2 (event) is left out until you give the event&#39;s name." in typing.text


BAD_CONDITIONS: list[tuple[dict[str, str], str]] = [
    (
        _rows({"kind": "event", "event-name": "Order Completed", "event-at_least": "abc"}),
        "Condition 1 (event): where.at_least: expected a whole number of at least 1",
    ),
    (
        _rows(
            {"kind": "persona", "persona-id": "p1"},
            {"kind": ""},
            {"kind": "event", "event-name": "Order Completed", "event-within_days": "0"},
        ),
        "Condition 3 (event): where.all[1].within_days: expected a number of days above 0 and at most 36500",
    ),
    (
        _rows({"kind": "trait", "trait-key": "country", "trait-test": "gte", "trait-value": "GB"}),
        "Condition 1 (trait): where.gte: expected a number",
    ),
    (
        _rows({"kind": "purchased", "purchased-spend_gte": "50", "purchased-spend_lte": "10"}),
        "where.spend_lte: expected at least spend_gte (50)",
    ),
    (
        {"editor": "json", "where_json": '{"purchased": "Mugs", "colour": "red"}'},
        "where.colour: unknown key for a purchased condition; known keys: purchased, item",
    ),
    (
        {"editor": "json", "where_json": '{"event": "x", "persona": "p1"}'},
        "where: a condition has one kind, but this one has event and persona",
    ),
    ({"editor": "json", "where_json": '{"all": [{"persona": "p1"},'}, "where: not valid JSON"),
    (
        {"editor": "json", "where_json": "[" * 20_000 + "]" * 20_000},
        "where: not valid JSON (nested too deeply)",
    ),
    (
        {"editor": "json", "where_json": json.dumps({"any": [{"persona": f"p{i}"} for i in range(33)]})},
        "where.any[32]: a condition may have at most 32 leaves",
    ),
    (
        {
            "editor": "json",
            "where_json": json.dumps({"not": {"not": {"not": {"not": {"not": {"not": {"persona": "p1"}}}}}}}),
        },
        "conditions may nest at most 6 levels deep",
    ),
    (
        {"editor": "json", "where_json": '{"event": "{{ 7 * 7 }}<b>", "at_least": 1e999}'},
        "where.at_least: expected a whole number of at least 1",
    ),
]


def test_a_bad_condition_gets_its_precise_error_and_a_400_never_a_500(dashboard: LiveDashboard) -> None:
    client = dashboard.client("marketer")
    for form, message in BAD_CONDITIONS:
        fragment = _preview(client, form)
        assert fragment.status_code == 400 and message in html.unescape(fragment.text), message
        assert "<html" not in fragment.text and "<b>" not in fragment.text
        page = client.post("/dashboard/audiences/preview", data={"csrf": client.csrf, **form})  # type: ignore[attr-defined]
        assert page.status_code == 400 and message in html.unescape(page.text)
        assert "<h1>Build an audience</h1>" in page.text


def test_without_javascript_show_the_size_and_add_a_condition_come_back_as_the_page(
    dashboard: LiveDashboard, oracle: Shop
) -> None:
    client = dashboard.client("marketer")
    form = _rows(
        {"kind": "purchased", "purchased-category": "Mugs", "purchased-within_days": "30"}, name="mugs"
    )
    page = client.post("/dashboard/audiences/preview", data={"csrf": client.csrf, **form})  # type: ignore[attr-defined]
    assert page.status_code == 200 and "<h1>Build an audience</h1>" in page.text
    assert (
        _size(page.text)
        == oracle.audiences.reach_of(parse_condition({"purchased": "Mugs", "within_days": 30}))["size"]
    )
    assert 'value="Mugs"' in page.text and 'id="r1-kind"' in page.text and 'id="r2-kind"' not in page.text
    more = client.post("/dashboard/audiences/preview", data={"csrf": client.csrf, **form, "more": "1"})  # type: ignore[attr-defined]
    assert 'id="r2-kind"' in more.text  # one more blank row


def test_saving_an_audience_is_audited_and_refused_politely_when_wrong(dashboard: LiveDashboard) -> None:
    client = dashboard.client("marketer")
    token = client.csrf  # type: ignore[attr-defined]
    api = _api(dashboard)
    form = _rows({"kind": "purchased", "purchased-category": "Mugs", "purchased-within_days": "30"})
    before = datetime.now(UTC).isoformat()
    saved = client.post(
        "/dashboard/audiences",
        data={"csrf": token, "name": "mug-buyers", "description": "Mugs lately", **form},
    )
    after = datetime.now(UTC).isoformat()
    # The page it is sent to shows the reach measured as it was saved, not computed again.
    assert before < _computed_at(client.get(saved.headers["location"]).text) < after
    assert (
        saved.status_code == 303 and saved.headers["location"] == "/dashboard/audiences/mug-buyers?done=saved"
    )
    shown = api.get("/v1/audiences/mug-buyers").json()
    assert shown["where"] == {"purchased": "Mugs", "within_days": 30, "at_least": 1}
    assert shown["description"] == "Mugs lately"
    assert _audit(dashboard.store, "save_audience")[0] == {
        "name": "mug-buyers",
        "created": True,
        "size": shown["reach"]["size"],
    }
    assert "Saved." in client.get(saved.headers["location"]).text
    refusals = [
        ({"name": "mug buyers!", **form}, 400, "audience name 'mug buyers!': use 1-64 letters"),
        ({"name": "mug-buyers", **form}, 409, "an audience named mug-buyers exists already"),
        ({"name": "nothing", **_rows({"kind": ""})}, 400, "add at least one condition before saving"),
        (
            {"name": "half", **_rows({"kind": "trait", "trait-key": "order_count", "trait-test": "gte"})},
            400,
            "Condition 1 (trait): give the value to compare with",
        ),
        (
            {"name": "long", "description": "x" * 501, **form},
            400,
            "a description is text of at most 500 characters",
        ),
        (
            {
                "name": "bad",
                **_rows({"kind": "event", "event-name": "Order Completed", "event-at_least": "0"}),
            },
            400,
            "Condition 1 (event): where.at_least: expected a whole number of at least 1",
        ),
    ]
    for fields, status, message in refusals:
        refused = client.post("/dashboard/audiences", data={"csrf": token, **fields})
        assert refused.status_code == status and message in html.unescape(refused.text), message
        assert 'value="Mugs"' in refused.text or fields["name"] in ("nothing", "half", "bad")
    assert {a["name"] for a in api.get("/v1/audiences").json()["items"]} == {"wrap-regulars", "mug-buyers"}
    # Changing it from its own page (original = its name) replaces it.
    again = {
        "csrf": token,
        "name": "mug-buyers",
        "original": "mug-buyers",
        **form,
        "r0-purchased-within_days": "90",
    }
    assert client.post("/dashboard/audiences", data=again).status_code == 303
    assert api.get("/v1/audiences/mug-buyers").json()["where"]["within_days"] == 90
    assert _audit(dashboard.store, "save_audience")[0]["created"] is False


def test_comparing_broad_and_narrow_starts_the_experiment_and_deleting_asks_first(
    dashboard: LiveDashboard,
) -> None:
    client = dashboard.client("marketer")
    token = client.csrf  # type: ignore[attr-defined]
    bad = client.post(
        "/dashboard/audiences/wrap-regulars/compare", data={"csrf": token, "placement": "billboard"}
    )
    assert bad.status_code == 400 and "placement: one of email, new_for_you, staff, web" in bad.text
    started = client.post(
        "/dashboard/audiences/wrap-regulars/compare", data={"csrf": token, "placement": "web"}
    )
    assert started.status_code == 303
    assert started.headers["location"] == "/dashboard/audiences/wrap-regulars?done=started#compare"
    experiment = dashboard.store.experiments.get("compare-wrap-regulars")
    assert experiment.status == "running" and experiment.placement == "web"
    page = _text(client.get(started.headers["location"]).text)
    assert "The comparison started" in page and "compare-wrap-regulars shows web to wrap-regulars" in page
    assert _audit(dashboard.store, "compare_audience")[0] == {
        "name": "wrap-regulars",
        "experiment": "compare-wrap-regulars",
        "placement": "web",
        "started": True,
    }
    again = client.post(
        "/dashboard/audiences/wrap-regulars/compare", data={"csrf": token, "placement": "web"}
    )
    assert again.headers["location"].endswith("?done=running#compare")
    # A tiny audience cannot be compared: the page says why.
    tiny = _rows(
        {"kind": "persona", "persona-id": "p1"},
        {"kind": "trait", "trait-key": "order_count", "trait-test": "gte", "trait-value": "100"},
    )
    assert (
        client.post("/dashboard/audiences", data={"csrf": token, "name": "tiny", **tiny}).status_code == 303
    )
    refused = client.post("/dashboard/audiences/tiny/compare", data={"csrf": token, "placement": "email"})
    assert (
        refused.status_code == 400
        and "fewer than 10, so outcomes per person are not reported" in refused.text
    )
    # Deleting: a confirmation first; a wrong name deletes nothing; a targeted audience says what targets it.
    confirm = client.get("/dashboard/audiences/wrap-regulars/delete")
    assert confirm.status_code == 200 and "experiment compare-wrap-regulars" in confirm.text
    assert 'name="confirm"' not in confirm.text  # nothing to confirm while it is targeted
    targeted = client.post(
        "/dashboard/audiences/wrap-regulars/delete", data={"csrf": token, "confirm": "wrap-regulars"}
    )
    assert targeted.status_code == 409
    assert (
        "wrap-regulars is still targeted by experiment compare-wrap-regulars; stop or change them first"
        in targeted.text
    )
    form = client.get("/dashboard/audiences/tiny/delete")
    assert form.status_code == 200 and 'name="confirm"' in form.text
    wrong = client.post("/dashboard/audiences/tiny/delete", data={"csrf": token, "confirm": "tin"})
    assert (
        wrong.status_code == 400
        and "type the audience's name, tiny, to delete it; nothing was deleted" in html.unescape(wrong.text)
    )
    gone = client.post("/dashboard/audiences/tiny/delete", data={"csrf": token, "confirm": "tiny"})
    assert gone.status_code == 303 and gone.headers["location"] == "/dashboard/audiences?deleted=tiny"
    assert "Deleted tiny." in client.get(gone.headers["location"]).text
    assert client.get("/dashboard/audiences/tiny").status_code == 404
    assert _audit(dashboard.store, "delete_audience") == [{"name": "tiny"}]
    assert (
        client.post("/dashboard/audiences/tiny/delete", data={"csrf": token, "confirm": "tiny"}).status_code
        == 404
    )


def test_who_may_see_and_change_audiences(dashboard: LiveDashboard) -> None:
    gets = [
        "/dashboard/audiences",
        "/dashboard/audiences/new",
        "/dashboard/audiences/wrap-regulars",
        "/dashboard/audiences/wrap-regulars/delete",
    ]
    posts = [
        "/dashboard/audiences/preview",
        "/dashboard/audiences",
        "/dashboard/audiences/wrap-regulars/compare",
        "/dashboard/audiences/wrap-regulars/delete",
    ]
    staff = dashboard.client("staff")
    for path in gets:
        assert staff.get(path).status_code == 403, path
    for path in posts:
        refused = staff.post(path, data={"csrf": staff.csrf, "name": "x", "confirm": "wrap-regulars"})  # type: ignore[attr-defined]
        assert refused.status_code == 403 and "for marketers and above" in refused.text, path
    for role in ("owner", "marketer"):
        client = dashboard.client(role)
        for path in gets:
            assert client.get(path).status_code == 200, (role, path)
    marketer = dashboard.client("marketer")
    for path in posts:  # no CSRF token: refused, nothing changed
        assert (
            marketer.post(
                path, data={"name": "x", "confirm": "wrap-regulars", "placement": "web"}
            ).status_code
            == 403
        )
    evil = marketer.post(
        "/dashboard/audiences/wrap-regulars/delete",
        data={"csrf": marketer.csrf, "confirm": "wrap-regulars"},  # type: ignore[attr-defined]
        headers={"Origin": "https://evil.example"},
    )
    assert evil.status_code == 403
    assert dashboard.store.experiments.list() == [] and _audit(dashboard.store, "delete_audience") == []
    with httpx.Client(base_url=dashboard.url) as nobody:
        assert nobody.get("/dashboard/audiences/new").headers["location"].startswith("/dashboard/login")
        htmx = nobody.post("/dashboard/audiences/preview", headers={"HX-Request": "true"})
        assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/dashboard/login")


def _computed_at(markup: str) -> str:
    found = re.search(r'<p class="as-of muted" data-at="([^"]+)">', markup)
    assert found, _text(markup)[:500]
    return found.group(1)


def test_slow_figures_are_kept_a_minute_refreshed_on_asking_and_dropped_by_a_dashboard_change(
    dashboard: LiveDashboard,
) -> None:
    for thread in threading.enumerate():  # the server runs in this process: its start's work is done
        if thread.name == "shopkeeper-figures":
            thread.join(10)
    begun = datetime.now(UTC).isoformat()
    client = dashboard.client("marketer")
    token = client.csrf  # type: ignore[attr-defined]
    # The overview's figures were computed as the server started, before anyone asked.
    assert _computed_at(client.get("/dashboard").text) < begun
    assert _computed_at(client.get("/dashboard/experiments/holdout").text) < begun
    pages = (
        "/dashboard",
        "/dashboard/audiences",
        "/dashboard/audiences/wrap-regulars",
        "/dashboard/experiments/holdout",
    )
    first = {path: client.get(path).text for path in pages}
    for path, markup in first.items():
        assert "they are kept for 1 minute. Compute them again now" in _text(markup), path
        assert _computed_at(client.get(path).text) == _computed_at(markup), path  # kept
    fresh = client.get("/dashboard/audiences", params={"fresh": "1"}).text
    assert _computed_at(fresh) > _computed_at(first["/dashboard/audiences"])
    # An audience saved elsewhere (the API) is listed at once: figures are kept under the definitions.
    assert _api(dashboard).put("/v1/audiences/mugs", json={"where": {"purchased": "Mugs"}}).status_code == 200
    assert '<a href="/dashboard/audiences/mugs">' in client.get("/dashboard/audiences").text
    # A task claimed in the inbox changes no definition: every figure stays kept.
    kept = {path: _computed_at(client.get(path).text) for path in pages}
    staff = dashboard.client("staff")
    claimed = staff.post("/dashboard/inbox/1/claim", data={"csrf": staff.csrf})  # type: ignore[attr-defined]
    assert claimed.status_code == 303
    assert {path: _computed_at(client.get(path).text) for path in pages} == kept
    # A persona renamed (its name shows in audiences' summaries) is a changed definition: all computed again.
    renamed = client.post("/dashboard/personas/p2/rename", data={"csrf": token, "name": "Regulars"})
    assert renamed.status_code == 303
    for path in pages:
        assert _computed_at(client.get(path).text) > kept[path], path
    # Stopping an experiment shows in its report at once.
    api = _api(dashboard)
    assert (
        api.post(
            "/v1/experiments",
            json={"name": "subject", "placement": "web", "variants": [{"name": "a"}, {"name": "b"}]},
        ).status_code
        == 201
    )
    running = client.get("/dashboard/experiments/subject").text
    assert _computed_at(client.get("/dashboard/experiments/subject").text) == _computed_at(running)
    assert api.post("/v1/experiments/subject/stop").status_code == 200
    stopped = client.get("/dashboard/experiments/subject").text
    assert _computed_at(stopped) > _computed_at(running) and "stopped" in _text(stopped)

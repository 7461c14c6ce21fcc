"""The personas page over the demo shop: what it shows against the store's own counts, who may see and
change it, renaming (audited, refused politely when the name is bad), and discovering again (audited; a
run that loses the race to another says so with a 409)."""

from __future__ import annotations

import html
import re
from collections import Counter
from pathlib import Path

import httpx
import pytest
from tests.web.support import LiveDashboard, dashboard_over

from shopkeeper.errors import Conflict
from shopkeeper.personas.service import PersonaService
from shopkeeper.store import Store

pytestmark = pytest.mark.slow


def _text(markup: str) -> str:
    """The text of some HTML, tags dropped and entities read, spaces squeezed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup)))


def _card(page: httpx.Response, persona_id: str) -> str:
    found = re.search(
        rf'<article class="card persona" id="persona-{persona_id}".*?</article>', page.text, re.S
    )
    assert found, f"no card for {persona_id}"
    return found.group(0)


def _audit(store: Store, action: str) -> list[dict[str, object]]:
    return [e.detail for e in store.users.audit_entries(limit=50, actor_prefix="user ") if e.action == action]


def test_the_page_shows_the_latest_run_and_each_persona_as_the_store_counts_them(
    dashboard: LiveDashboard,
) -> None:
    page = dashboard.client("marketer").get("/dashboard/personas")
    assert page.status_code == 200
    run = dashboard.store.personas.latest_run()
    assert run is not None
    text = _text(page.text)
    summary = run.summary
    assert f"{summary['k']} personas cover {round(100 * summary['coverage'])}%" in text
    assert f"of {summary['customers']:,} customers" in text
    assert "RFM groups" in text and f"{summary['silhouette']:.2f}" in text
    assert f"{summary['stability_ari']:.2f}" in text
    assert "This is the first run" in text  # the demo ran discovery once: nothing moved yet
    # Each persona's size is its members, counted by hand from the membership table.
    members = Counter(dashboard.store.personas.members().values())
    rows = dashboard.store.personas.all()
    assert len(rows) == summary["k"]
    for row in rows:
        card = _card(page, row.persona_id)
        card_text = _text(card)
        assert row.name in card_text and row.body["rule"] in card_text
        assert f">{members[row.persona_id]:,}<" in card  # the size, as counted
        assert f"{100 * row.body['share_customers']:.0f}%" in card_text
        assert (
            f'<meter id="meter-{row.persona_id}-revenue" min="0" max="1" value="{row.body["share_revenue"]}"'
            in card
        )
        assert f"the rule agrees on {100 * row.body['rule_agreement']:.0f}% of them" in card_text
        for item in row.body["top_items"]:
            assert f"bought by {item['buyers']}" in card_text
        with dashboard.store.engine.connect() as conn:
            for person in row.body["typical_members"]:
                user_id = dashboard.store.identities.unit_ids(person, conn).get("user_id")
                assert user_id, "every typical member of the demo shop is a customer with a userId"
                assert f'href="/dashboard/people/{user_id}"' in card and f"#{person}<" in card


def test_who_may_see_and_change_personas(dashboard: LiveDashboard) -> None:
    staff = dashboard.client("staff")
    assert staff.get("/dashboard/personas").status_code == 403
    for path in ("/dashboard/personas/discover", "/dashboard/personas/p1/rename"):
        refused = staff.post(path, data={"csrf": staff.csrf, "name": "Mine"})  # type: ignore[attr-defined]
        assert refused.status_code == 403 and "for marketers and above" in refused.text
    assert dashboard.client("owner").get("/dashboard/personas").status_code == 200
    with httpx.Client(base_url=dashboard.url) as nobody:
        assert nobody.get("/dashboard/personas").headers["location"].startswith("/dashboard/login")
    marketer = dashboard.client("marketer")
    for path in ("/dashboard/personas/discover", "/dashboard/personas/p1/rename"):
        assert marketer.post(path, data={"name": "No token"}).status_code == 403  # no CSRF token
    assert dashboard.store.personas.get("p1").name == "Champions"
    assert dashboard.store.personas.latest_run().id == 1  # type: ignore[union-attr]


def test_renaming_a_persona_is_shown_audited_and_refused_politely_when_the_name_is_bad(
    dashboard: LiveDashboard,
) -> None:
    client = dashboard.client("marketer")
    token = client.csrf  # type: ignore[attr-defined]
    done = client.post("/dashboard/personas/p2/rename", data={"csrf": token, "name": "  Regulars "})
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/personas#persona-p2"
    assert "Regulars" in _text(_card(client.get("/dashboard/personas"), "p2"))
    assert dashboard.store.personas.get("p2").name == "Regulars"
    assert _audit(dashboard.store, "rename_persona")[0] == {
        "persona_id": "p2",
        "was": "Loyal customers",
        "name": "Regulars",
    }
    # With htmx, the answer is the card alone, with the new name.
    fragment = client.post(
        "/dashboard/personas/p3/rename",
        data={"name": "Newcomers {{ 7 * 7 }}"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert fragment.status_code == 200 and fragment.text.lstrip().startswith('<article class="card persona"')
    assert "Newcomers {{ 7 * 7 }}" in html.unescape(fragment.text) and "49" not in fragment.text
    assert "Renamed: New customers is now Newcomers" in html.unescape(fragment.text)
    bad = {
        "": "a persona's name is 1 to 128 characters",
        "x" * 129: "a persona's name is 1 to 128 characters",
        "Evil\u202egnirts": "no control, format (direction, zero-width) or line-break characters",
        "Champions": "another persona is named 'Champions'; names are unique",
    }
    for name, message in bad.items():
        refused = client.post("/dashboard/personas/p4/rename", data={"csrf": token, "name": name})
        assert refused.status_code == 400 and message in html.unescape(refused.text), name
        assert 'id="persona-p4"' in refused.text  # the page again, the message at the card
        in_card = client.post(
            "/dashboard/personas/p4/rename",
            data={"name": name},
            headers={"HX-Request": "true", "X-CSRF-Token": token},
        )
        assert in_card.status_code == 400 and message in html.unescape(in_card.text)
    assert dashboard.store.personas.get("p4").name == "At risk"
    missing = client.post("/dashboard/personas/p99/rename", data={"csrf": token, "name": "Ghosts"})
    assert missing.status_code == 404 and "no persona 'p99'" in html.unescape(missing.text)
    script = client.post("/dashboard/personas/p5/rename", data={"csrf": token, "name": "<script>x</script>"})
    assert script.status_code == 303
    assert "<script>x</script>" not in client.get("/dashboard/personas").text


def test_discovering_again_shows_the_new_run_and_is_audited(dashboard: LiveDashboard) -> None:
    client = dashboard.client("marketer")
    token = client.csrf  # type: ignore[attr-defined]
    for fields, message in (
        ({"k": "13"}, "k: auto, or a number of personas from 2 to 12"),
        ({"k": "two"}, "k: auto, or a number of personas from 2 to 12"),
        ({"target": "0.99"}, "target: a share of customers from 0.3 to 0.95"),
        ({"target": "most"}, "target: a share of customers from 0.3 to 0.95"),
    ):
        refused = client.post("/dashboard/personas/discover", data={"csrf": token, **fields})
        assert refused.status_code == 400 and message in refused.text
    assert dashboard.store.personas.latest_run().id == 1  # type: ignore[union-attr]
    done = client.post("/dashboard/personas/discover", data={"csrf": token, "k": "auto", "target": "0.7"})
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/personas?ran=2"
    run = dashboard.store.personas.latest_run()
    assert run is not None and run.id == 2
    page = _text(client.get(done.headers["location"]).text)
    assert f"Discovery finished: {run.summary['k']} personas cover" in page
    if run.summary["churn"]:
        assert run.summary["churn"][0]["text"] in page
    else:
        assert "Nobody moved" in page
    assert _audit(dashboard.store, "discover_personas")[0] == {
        "run": 2,
        "k": run.summary["k"],
        "method": "rfm",
        "coverage": run.summary["coverage"],
    }


def test_a_run_that_loses_the_race_says_so(dashboard: LiveDashboard, monkeypatch: pytest.MonkeyPatch) -> None:
    def raced(self: PersonaService, **_: object) -> None:
        raise Conflict("another persona discovery finished while this one was running; run it again")

    monkeypatch.setattr(PersonaService, "discover", raced)  # the server runs in this process
    client = dashboard.client("marketer")
    answer = client.post("/dashboard/personas/discover", data={"csrf": client.csrf})  # type: ignore[attr-defined]
    assert answer.status_code == 409
    assert "another persona discovery finished while this one was running; run it again" in answer.text
    assert "<h1>Personas</h1>" in answer.text  # the page itself, with the cards, not a bare error
    assert _audit(dashboard.store, "discover_personas") == []


def test_a_shop_with_no_run_yet_explains_and_offers_the_button(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    Store.open(f"sqlite:///{empty}").close()
    (tmp_path / "served").mkdir()
    with dashboard_over(empty, tmp_path / "served") as live:
        client = live.client("marketer")
        page = client.get("/dashboard/personas")
        assert page.status_code == 200
        text = _text(page.text)
        assert "No personas yet" in text and "Nobody has run discovery in this shop yet" in text
        assert 'action="/dashboard/personas/discover"' in page.text and "Run discovery now" in text
        refused = client.post("/dashboard/personas/discover", data={"csrf": client.csrf})  # type: ignore[attr-defined]
        assert refused.status_code == 400 and "no customers yet in this shop" in refused.text

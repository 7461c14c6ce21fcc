"""Issue 5 over real HTTP, on SQLite and PostgreSQL: preferences, consent, rejections, explain, links."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from tests.conftest import LiveServer
from tests.privacy.support import ANON, EMAIL, OTHER, PERSON, orders, seed

from shopkeeper import Shop
from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.consent import Purposes, consent_recorder
from shopkeeper.privacy.tokens import issue_link, issue_token, linked_person, signing_secret
from shopkeeper.recommend import train_default
from shopkeeper.settings import Settings
from shopkeeper.store.schema import audit_log
from shopkeeper.training import train


def admin(server: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_key}"}


def traits_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["key"]: t for t in body["traits"]}


def test_stated_preferences_win_and_can_be_cleared(live_server: LiveServer) -> None:
    seed(live_server.store)
    url = f"{live_server.url}/v1/people/{PERSON}"
    before = httpx.get(url, headers=admin(live_server)).json()
    assert traits_of(before)["first_name"]["source"] == "observed"

    sent = {"language": "en-GB", "sizes": {"trousers": "34"}, "first_name": "Zelda Q.", "size": "M"}
    response = httpx.put(f"{url}/preferences", headers=admin(live_server), json=sent)
    assert response.status_code == 200, response.text
    after = traits_of(response.json())
    assert (after["sizes"]["value"], after["sizes"]["source"]) == ({"trousers": "34"}, "stated")
    assert (after["language"]["value"], after["first_name"]["value"]) == ("en", "Zelda Q.")
    assert after["first_name"]["source"] == "stated"
    assert after["first_name"]["overridden"][0]["value"] == "Zelda"  # the observed value it beat

    # The explanation says which source won and what it beat.
    explained = httpx.get(f"{url}/explain", headers=admin(live_server)).json()
    name = next(t for t in explained["traits"] if t["key"] == "first_name")
    assert [c["status"] for c in name["candidates"]] == ["won", "outranked"]
    assert [c["source"] for c in name["candidates"]] == ["stated", "observed"]
    assert "stated" in explained["rule"]

    # null clears a stated value: the observed one is back.
    cleared = httpx.put(f"{url}/preferences", headers=admin(live_server), json={"first_name": None})
    assert traits_of(cleared.json())["first_name"]["value"] == "Zelda"
    assert traits_of(cleared.json())["first_name"]["source"] == "observed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"shoe_colour": "red"}, "shoe_colour"),
        ({"sizes": {"trousers": "x" * 40}}, "sizes.trousers"),
        ({"language": "english please"}, "language"),
        ({"preferred_channels": ["fax"]}, "preferred_channels.0"),
        ({"pause_until": "next week"}, "pause_until"),
        ({"first_name": "Ze\u0000lda"}, "first_name"),
        ({"favourite_categories": "Mugs"}, "favourite_categories"),
        ([], "preferences"),
        ({}, "preferences"),
    ],
)
def test_bad_preferences_get_a_precise_400(live_server: LiveServer, body: Any, field: str) -> None:
    seed(live_server.store)
    response = httpx.put(
        f"{live_server.url}/v1/people/{PERSON}/preferences", headers=admin(live_server), json=body
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_consent_ledger_from_the_api_and_from_events(live_server: LiveServer) -> None:
    ingestor = seed(live_server.store)
    url = f"{live_server.url}/v1/people/{PERSON}/consent"
    now = httpx.get(url, headers=admin(live_server)).json()
    assert now["purposes"]["personalization"] == {
        "granted": True,
        "at": None,
        "channel": None,
        "default": True,
    }
    assert now["purposes"]["necessary"]["granted"] is True and now["history"] == []

    changed = httpx.put(url, headers=admin(live_server), json={"email_marketing": False, "analytics": True})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["purposes"]["email_marketing"]["granted"] is False
    assert body["purposes"]["email_marketing"]["channel"] == "api"
    assert {(h["purpose"], h["granted"], h["channel"]) for h in body["history"]} == {
        ("email_marketing", False, "api"),
        ("analytics", True, "api"),
    }
    # A cookie banner: the same consent on every event is recorded once, a change again.
    banner = {"categoryPreferences": {"personalization": False, "advertising": True}}
    ingestor.ingest(
        [
            {"type": "page", "userId": PERSON, "messageId": f"banner-{k}", "context": {"consent": banner}}
            for k in range(3)
        ]
    )
    history = httpx.get(url, headers=admin(live_server)).json()["history"]
    from_events = [h for h in history if h["channel"] == "event"]
    assert [(h["purpose"], h["granted"], h["message_id"]) for h in from_events] == [
        ("personalization", False, "banner-0")
    ]
    for bad, field in [
        ({"personalisation": True}, "personalisation"),
        ({"analytics": "yes"}, "analytics"),
        ({"necessary": False}, "necessary"),
        ({}, "consent"),
    ]:
        response = httpx.put(url, headers=admin(live_server), json=bad)
        assert response.status_code == 400 and response.json()["error"]["field"] == field, response.text


def test_consent_is_checked_when_deciding(live_server: LiveServer) -> None:
    seed(live_server.store)
    train(live_server.store, train_default)
    decide = f"{live_server.url}/v1/decide"
    personal = httpx.post(decide, headers=admin(live_server), json={"userId": PERSON, "n": 2}).json()
    assert personal["personalized"] is True

    httpx.put(
        f"{live_server.url}/v1/people/{PERSON}/consent",
        headers=admin(live_server),
        json={"personalization": False, "email_marketing": False},
    )
    baseline = httpx.post(decide, headers=admin(live_server), json={"userId": PERSON, "n": 2}).json()
    assert baseline["personalized"] is False and baseline["items"]
    assert any(r["provenance"].get("consent") == "personalization" for r in baseline["reasons"])
    # No reason may reveal what the person has not agreed to be used: no purchase, no trait.
    every_reason = baseline["reasons"] + [r for item in baseline["items"] for r in item["reasons"]]
    assert not any("bought" in r["text"] or "trait" in r["provenance"] for r in every_reason)

    email = httpx.post(
        decide, headers=admin(live_server), json={"userId": PERSON, "placement": "email"}
    ).json()
    assert email["items"] == []
    assert email["reasons"][0]["provenance"] == {"consent": "email_marketing", "granted": False}


def test_pause_and_never_stop_outreach_but_not_the_web(live_server: LiveServer) -> None:
    seed(live_server.store)
    train(live_server.store, train_default)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    httpx.put(
        f"{live_server.url}/v1/people/{PERSON}/preferences",
        headers=admin(live_server),
        json={"pause_until": tomorrow},
    )
    decide = f"{live_server.url}/v1/decide"
    email = httpx.post(
        decide, headers=admin(live_server), json={"userId": PERSON, "placement": "email"}
    ).json()
    assert email["items"] == [] and "pause" in email["reasons"][0]["text"]
    web = httpx.post(decide, headers=admin(live_server), json={"userId": PERSON}).json()
    assert web["items"]


def test_a_rejected_guess_is_never_made_again_from_the_same_evidence(live_server: LiveServer) -> None:
    ingestor = seed(live_server.store)
    url = f"{live_server.url}/v1/people/{PERSON}"
    guess = traits_of(httpx.get(url, headers=admin(live_server)).json())["favourite_categories"]
    assert (guess["value"], guess["source"]) == (["Mugs"], "inferred")

    response = httpx.post(
        f"{url}/rejections", headers=admin(live_server), json={"key": "favourite_categories"}
    )
    assert response.status_code == 200, response.text
    assert "favourite_categories" not in traits_of(response.json())
    # New events make the person's traits rebuild: the same evidence still doesn't bring the guess back.
    ingestor.ingest([{"type": "page", "userId": PERSON, "messageId": "z-later"}])
    assert "favourite_categories" not in traits_of(httpx.get(url, headers=admin(live_server)).json())
    explained = httpx.get(f"{url}/explain", headers=admin(live_server)).json()
    assert explained["rejected_guesses"][0]["key"] == "favourite_categories"

    for bad, status in [
        ({"key": "first_name"}, 400),  # observed, not a guess
        ({"key": "nothing_here"}, 400),
        ({"value": "Mugs"}, 400),
        ({"key": "favourite_categories", "why": "x"}, 400),
    ]:
        assert httpx.post(f"{url}/rejections", headers=admin(live_server), json=bad).status_code == status


def test_rejecting_one_element_keeps_the_rest(live_server: LiveServer) -> None:
    ingestor = seed(live_server.store)
    ingestor.ingest(orders(PERSON, 3, category="Bags", start_day=10))
    url = f"{live_server.url}/v1/people/{PERSON}"
    guess = traits_of(httpx.get(url, headers=admin(live_server)).json())["favourite_categories"]
    assert set(guess["value"]) == {"Mugs", "Bags"}
    response = httpx.post(
        f"{url}/rejections", headers=admin(live_server), json={"key": "favourite_categories", "value": "Bags"}
    )
    assert traits_of(response.json())["favourite_categories"]["value"] == ["Mugs"]
    ingestor.ingest(orders(PERSON, 2, category="Bags", start_day=20))  # new evidence: still not Bags
    assert traits_of(httpx.get(url, headers=admin(live_server)).json())["favourite_categories"]["value"] == [
        "Mugs"
    ]


def test_a_link_reads_and_changes_only_its_own_person(live_server: LiveServer) -> None:
    seed(live_server.store)
    made = httpx.post(f"{live_server.url}/v1/people/{EMAIL}/link", headers=admin(live_server))
    assert made.status_code == 200, made.text
    link = made.json()
    assert link["url"].startswith(live_server.url + "/preferences#token=pt2.")
    own = {"Authorization": f"Bearer {link['token']}"}

    me = httpx.get(f"{live_server.url}/v1/people/me", headers=own)
    assert (
        me.status_code == 200
        and me.json()["person_id"]
        == httpx.get(f"{live_server.url}/v1/people/{PERSON}", headers=admin(live_server)).json()["person_id"]
    )
    assert (
        httpx.get(f"{live_server.url}/v1/people/{ANON}/explain", headers=own).status_code == 200
    )  # same person
    changed = httpx.put(
        f"{live_server.url}/v1/people/me/consent", headers=own, json={"staff_outreach": False}
    )
    assert changed.json()["history"][-1]["channel"] == "preference_centre"

    for method, path in [
        ("GET", f"/v1/people/{OTHER}"),
        ("GET", f"/v1/people/{OTHER}/export"),
        ("PUT", f"/v1/people/{OTHER}/consent"),
        ("DELETE", f"/v1/people/{OTHER}"),
    ]:
        response = httpx.request(method, live_server.url + path, headers=own, json={"analytics": True})
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["message"] == "this link is for another person"
    # A link cannot make links or decide.
    assert httpx.post(f"{live_server.url}/v1/people/me/link", headers=own).status_code == 403
    assert httpx.post(f"{live_server.url}/v1/decide", headers=own, json={"userId": PERSON}).status_code in (
        401,
        403,
    )


def old_format_link(secret: bytes, external_id: str) -> str:
    """A link as releases before pt2 signed it: it named an external id, which an alias could move."""
    expires = int((datetime.now(UTC) + timedelta(days=1)).timestamp())
    payload = base64.urlsafe_b64encode(orjson.dumps({"id": external_id, "exp": expires})).rstrip(b"=")
    body = f"pt1.{payload.decode()}"
    signature = base64.urlsafe_b64encode(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature.decode().rstrip('=')}"


def test_tampered_and_expired_links_are_refused_clearly(live_server: LiveServer) -> None:
    seed(live_server.store)
    secret = signing_secret(live_server.store, Settings())
    good = issue_link(live_server.store, secret, PERSON)
    payload = good.split(".")[1]
    forged = issue_token(b"not the shop's secret", linked_person(live_server.store, OTHER))
    expired = issue_link(
        live_server.store, secret, PERSON, ttl=timedelta(days=1), now=datetime.now(UTC) - timedelta(days=2)
    )
    cases = {
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"): "this link is not valid",
        good.replace(payload, payload[:-2] + "xy"): "this link is not valid",
        forged: "this link is not valid",
        "pt1.garbage": "this link is not valid",
        old_format_link(secret, PERSON): "this link is not valid",  # pt1 named an external id
        expired: "this link has expired",
    }
    for token, message in cases.items():
        response = httpx.get(f"{live_server.url}/v1/people/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert response.json()["error"]["message"].startswith(message)
    assert (
        httpx.get(f"{live_server.url}/v1/people/me", headers={"Authorization": f"Bearer {good}"}).status_code
        == 200
    )


def test_profile_access_is_audited_without_naming_the_person(live_server: LiveServer) -> None:
    seed(live_server.store)
    for path in ["", "/explain", "/consent", "/export"]:
        assert (
            httpx.get(f"{live_server.url}/v1/people/{PERSON}{path}", headers=admin(live_server)).status_code
            == 200
        )
    url = f"{live_server.url}/v1/people/{PERSON}"
    httpx.put(f"{url}/preferences", headers=admin(live_server), json={"size": "M"})
    httpx.post(f"{url}/rejections", headers=admin(live_server), json={"key": "favourite_categories"})
    with live_server.store.engine.connect() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.id)).all()
    actions = [r.action for r in rows]
    # One entry per access: a change answering with the profile is not also a read.
    assert actions == ["read_profile", "explain", "read_consent", "export", "set_preferences", "reject_guess"]
    assert all(r.actor.startswith("admin key sk_admin_") for r in rows)
    assert all(PERSON not in r.detail and EMAIL not in r.detail for r in rows)
    assert len({r.person_id for r in rows}) == 1


def test_export_has_everything_with_a_summary(live_server: LiveServer) -> None:
    seed(live_server.store)
    train(live_server.store, train_default)
    httpx.post(f"{live_server.url}/v1/decide", headers=admin(live_server), json={"userId": PERSON})
    httpx.put(
        f"{live_server.url}/v1/people/{PERSON}/consent", headers=admin(live_server), json={"analytics": False}
    )
    exported = httpx.get(f"{live_server.url}/v1/people/{PERSON}/export", headers=admin(live_server))
    assert exported.status_code == 200, exported.text
    body = exported.json()
    assert {e["messageId"] for e in body["events"]} >= {"z-page", "z-identify", f"{PERSON}-order-1"}
    assert any(t["key"] == "favourite_categories" for t in body["person"]["traits"])
    assert body["consent_history"][0]["purpose"] == "analytics"
    assert body["messages"] == []
    assert "events about you" in body["summary"] and str(len(body["events"])) in body["summary"]
    assert {i["kind"] for i in body["person"]["ids"]} == {"user_id", "anonymous_id", "email"}


def test_unknown_people_get_404(live_server: LiveServer) -> None:
    for method, path in [
        ("GET", "/v1/people/nobody"),
        ("GET", "/v1/people/nobody/explain"),
        ("GET", "/v1/people/nobody/export"),
        ("PUT", "/v1/people/nobody/preferences"),
        ("PUT", "/v1/people/nobody/consent"),
        ("DELETE", "/v1/people/nobody"),
    ]:
        body = {"language": "en"} if path.endswith("preferences") else {"analytics": True}
        response = httpx.request(method, live_server.url + path, headers=admin(live_server), json=body)
        assert response.status_code == 404, (method, path, response.text)


def test_consent_carried_in_events_is_recorded_through_the_shops_wiring(store: Any) -> None:
    """`context.consent` in Segment's shape and in a plain one both land, read with the shop's own purposes
    (Shop.from_settings gives its Ingestor privacy's recorder); unknown purposes are ignored. No server."""
    settings = Settings(database_url=str(store.engine.url), consent_purposes="sms_marketing")
    shop = Shop.from_settings(settings, store=store)
    shop.ingest(
        [
            {
                "type": "identify",
                "userId": "u1",
                "messageId": "c1",
                "context": {"consent": {"analytics": False}},
            },
            {"type": "track", "userId": "u1", "event": "x", "messageId": "c2", "context": {"consent": "yes"}},
            {
                "type": "track",
                "userId": "u1",
                "event": "x",
                "messageId": "c3",
                "context": {"consent": {"nope": 1, "sms_marketing": False}},
            },
        ]
    )
    with store.engine.connect() as conn:
        person = store.identities.find_person("u1", conn)
        choices = shop.purposes.current(conn, person)
    assert choices["analytics"].granted is False and choices["analytics"].channel == "event"
    assert choices["sms_marketing"].granted is False and choices["sms_marketing"].channel == "event"
    assert choices["personalization"].default
    assert "nope" not in choices


def test_consent_given_while_anonymous_stays_after_a_merge(store: Any) -> None:
    ingestor = Ingestor(store, record_consent=consent_recorder())
    ingestor.ingest([{"type": "track", "userId": "k1", "event": "Signed Up", "messageId": "k1-1"}])
    ingestor.ingest(
        [
            {
                "type": "page",
                "anonymousId": "a1",
                "messageId": "a1-1",
                "context": {"consent": {"categoryPreferences": {"personalization": False}}},
            }
        ]
    )
    with store.engine.connect() as conn:
        assert store.identities.find_person("a1", conn) != store.identities.find_person("k1", conn)
    ingestor.ingest([{"type": "identify", "userId": "k1", "anonymousId": "a1", "messageId": "k1-2"}])
    with store.engine.connect() as conn:
        person = store.identities.find_person("k1", conn)
        assert store.identities.find_person("a1", conn) == person  # merged
        assert Purposes().allows(conn, person, "personalization") is False
        assert Purposes().current(conn, person)["personalization"].channel == "event"

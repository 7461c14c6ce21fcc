"""The content pages over HTTP: the templates, the editor's save (a new version only when something
changed, refused with every lint finding), its live lint, and the preview across the personas and the
hostile set, which must never let a hostile value through raw."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx
import orjson
import pytest
from tests.web.support import LiveDashboard

from shopkeeper.content.hostile import HOSTILE_PROFILES

pytestmark = pytest.mark.slow
HTMX = {"HX-Request": "true"}


def form_of(body: dict[str, Any], **changes: str) -> dict[str, str]:
    """The editor's form for a template's JSON, as a browser sends it (text areas with CRLF)."""
    data = {
        "channel": body["channel"],
        "subject": body.get("subject") or "",
        "preheader": body.get("preheader") or "",
        "html": (body.get("html") or "").replace("\n", "\r\n"),
        "text": body.get("text") or "",
        "variants": orjson.dumps(body["variants"]).decode() if body.get("variants") else "",
    }
    for i, (name, spec) in enumerate(body.get("fields", {}).items()):
        data |= {
            f"field-{i}-name": name,
            f"field-{i}-slot": spec["slot"],
            f"field-{i}-from": spec.get("from", name),
            f"field-{i}-fallback": spec.get("fallback", ""),
            f"field-{i}-weakest": spec.get("weakest_source", "observed"),
        }
    return data | changes


def _post(client: httpx.Client, path: str, data: dict[str, str], **kw: Any) -> httpx.Response:
    return client.post(path, data={"csrf": client.csrf, **data}, **kw)  # type: ignore[attr-defined]


def _saves(dashboard: LiveDashboard) -> list[Any]:
    entries = dashboard.store.users.audit_entries(limit=50, actor_prefix="user ")
    return [e for e in entries if e.action == "save_template"]


def test_content_is_for_marketers(dashboard: LiveDashboard) -> None:
    staff, marketer = dashboard.client("staff"), dashboard.client("marketer")
    body = dashboard.store.templates.get("picked_for_you").body
    for path in ("/dashboard/content", "/dashboard/content/new", "/dashboard/content/picked_for_you"):
        assert staff.get(path).status_code == 403
        assert marketer.get(path).status_code == 200
    for suffix in ("", "/lint", "/preview"):
        answer = _post(staff, f"/dashboard/content/picked_for_you{suffix}", form_of(body))
        assert answer.status_code == 403
    assert dashboard.store.templates.versions("picked_for_you") == 1


def test_the_list_shows_every_template_at_its_latest_version(dashboard: LiveDashboard) -> None:
    page = dashboard.client("marketer").get("/dashboard/content").text
    stored = dashboard.store.templates.latest()
    assert [t.name for t in stored] == ["back_in_stock", "picked_for_you", "price_drop"]
    for t in stored:
        assert f'<a href="/dashboard/content/{t.name}">{t.name}</a>' in page
        row = page[page.index(f">{t.name}</a>") :].split("</tr>")[0]
        assert f">{t.version}</span>" in row and t.channel in row


def test_the_editor_shows_the_template_escaped(dashboard: LiveDashboard) -> None:
    page = dashboard.client("marketer").get("/dashboard/content/picked_for_you").text
    body = dashboard.store.templates.get("picked_for_you").body
    html = re.search(r'<textarea id="t-html"[^>]*>\n(.*?)</textarea>', page, re.S)
    assert html and unescape(html.group(1)) == body["html"]
    assert "<!DOCTYPE html>\n<html" not in page.split('id="t-html"')[1][:200]  # escaped, not raw
    assert 'value="first_name"' in page and 'value="preferences_url"' in page
    assert "No findings: this template would save." in page
    missing = dashboard.client("marketer").get("/dashboard/content/no_such")
    assert missing.status_code == 404 and "no template named" in missing.text
    assert dashboard.client("marketer").get("/dashboard/content/Bad%20Name").status_code == 400


def test_saving_makes_a_new_version_only_when_something_changed(dashboard: LiveDashboard) -> None:
    marketer = dashboard.client("marketer")
    body = dashboard.store.templates.get("picked_for_you").body
    same = _post(marketer, "/dashboard/content/picked_for_you", form_of(body))
    assert same.status_code == 303
    assert same.headers["location"] == "/dashboard/content/picked_for_you?saved=1&unchanged=1"
    assert dashboard.store.templates.versions("picked_for_you") == 1 and _saves(dashboard) == []

    changed = _post(marketer, "/dashboard/content/picked_for_you", form_of(body, subject="New picks for you"))
    assert changed.headers["location"] == "/dashboard/content/picked_for_you?saved=2"
    saved = dashboard.store.templates.get("picked_for_you")
    assert saved.version == 2 and saved.body == {**body, "subject": "New picks for you"}
    assert saved.saved_by.startswith("user ") and "@" not in saved.saved_by
    [entry] = _saves(dashboard)
    assert entry.detail == {"template": "picked_for_you", "version": 2} and entry.actor.endswith("(marketer)")
    assert "Saved as version 2." in marketer.get(changed.headers["location"]).text


def test_a_save_that_lint_refuses_shows_each_finding_and_saves_nothing(dashboard: LiveDashboard) -> None:
    marketer = dashboard.client("marketer")
    body = dashboard.store.templates.get("price_drop").body
    broken = form_of(body, html=body["html"] + '\n<a href="http://shop.example">{{ nope }}</a>')
    answer = _post(marketer, "/dashboard/content/price_drop", broken)
    assert answer.status_code == 422 and "Nothing was saved" in answer.text
    line = body["html"].count("\n") + 2
    assert f"html, line {line}, column 4</span> <code>http_link</code>" in answer.text
    assert f"html, line {line}, column 34</span> <code>unknown_field</code>" in answer.text
    assert "{{ nope }}" in unescape(answer.text)  # the draft is kept to fix
    unreadable = _post(marketer, "/dashboard/content/price_drop", form_of(body, variants="{not json"))
    assert unreadable.status_code == 400 and "variants: not JSON" in unreadable.text
    assert dashboard.store.templates.versions("price_drop") == 1 and _saves(dashboard) == []
    no_token = marketer.post("/dashboard/content/price_drop", data=form_of(body, subject="x"))
    assert no_token.status_code == 403 and dashboard.store.templates.versions("price_drop") == 1


def test_live_lint_answers_a_fragment_with_each_finding_s_place(dashboard: LiveDashboard) -> None:
    marketer = dashboard.client("marketer")
    body = dashboard.store.templates.get("back_in_stock").body
    clean = _post(marketer, "/dashboard/content/back_in_stock/lint", form_of(body), headers=HTMX)
    assert clean.status_code == 200 and "<html" not in clean.text and "would save" in clean.text
    long_subject = "x" * 90
    dirty = _post(
        marketer, "/dashboard/content/back_in_stock/lint", form_of(body, subject=long_subject), headers=HTMX
    )
    assert "This would not save: 1 finding to fix." in dirty.text
    assert "subject, line 1, column 79</span> <code>long_subject</code>" in dirty.text
    unknown_slot = form_of(body, **{"field-0-slot": "shoe"})
    odd = _post(marketer, "/dashboard/content/back_in_stock/lint", unknown_slot, headers=HTMX)
    assert "fields.first_name.slot must be one of" in odd.text
    page = _post(marketer, "/dashboard/content/back_in_stock/lint", form_of(body, subject=""))
    assert "<h1>Template back_in_stock</h1>" in page.text and "empty_subject" in page.text
    assert dashboard.store.templates.versions("back_in_stock") == 1


def test_the_preview_covers_the_personas_and_the_hostile_set_without_a_raw_value(
    dashboard: LiveDashboard,
) -> None:
    marketer = dashboard.client("marketer")
    body = dashboard.store.templates.get("picked_for_you").body
    answer = _post(marketer, "/dashboard/content/picked_for_you/preview", form_of(body), headers=HTMX)
    assert answer.status_code == 200 and "<html" not in answer.text
    text = answer.text
    personas = [p for p in _personas(dashboard) if p]
    assert text.count('<article class="preview') == len(personas) + len(HOSTILE_PROFILES)
    for name in personas:
        assert f'{name}: <a href="/dashboard/people/' in text
    frames = re.findall(r"<iframe ([^>]*)>", text)
    assert frames and all('sandbox=""' in f and "allow-" not in f for f in frames)
    rendered = [unescape(s) for s in re.findall(r'class="rendered-subject">(.*?)</bdi>', text)]
    documents = [unescape(d) for d in re.findall(r'srcdoc="([^"]*)"', text)]
    assert len(documents) == len(frames)
    for output in rendered + documents:
        assert "Lester" not in output and "Acme Trading" not in output and "{{" not in output
        assert "<script" not in output.lower() and "onerror" not in output
    assert "<script>alert" not in text
    assert "Hi there, we picked a few things for you" in rendered
    assert "a full name in a first-name slot" in text
    no_token = marketer.post("/dashboard/content/picked_for_you/preview", data=form_of(body))
    assert no_token.status_code == 403


def test_a_draft_that_would_not_save_is_not_previewed(dashboard: LiveDashboard) -> None:
    marketer = dashboard.client("marketer")
    body = dashboard.store.templates.get("picked_for_you").body
    answer = _post(
        marketer, "/dashboard/content/picked_for_you/preview", form_of(body, html="{{ x.__class__ }}")
    )
    assert answer.status_code == 200 and "fix the lint findings first" in answer.text
    assert "<code>forbidden</code>" in answer.text and "<iframe" not in answer.text


def test_a_new_template_needs_a_free_good_name(dashboard: LiveDashboard) -> None:
    marketer = dashboard.client("marketer")
    page = marketer.get("/dashboard/content/new").text
    assert '<input id="t-name" name="name"' in page and "would save" in page
    starter = {
        "channel": "email",
        "subject": "Hi {{ first_name }}",
        "html": "<p>Hi {{ first_name }}, it is spring.</p>",
        "text": None,
        "fields": {"first_name": {"slot": "first_name", "from": "firstName", "fallback": "there"}},
    }
    made = _post(marketer, "/dashboard/content/new", form_of(starter, name="spring_sale"))
    assert made.status_code == 303 and made.headers["location"] == "/dashboard/content/spring_sale?saved=1"
    saved = dashboard.store.templates.get("spring_sale")
    assert saved.body["fields"]["first_name"]["weakest_source"] == "observed"
    assert [e.detail for e in _saves(dashboard)] == [{"template": "spring_sale", "version": 1}]
    taken = _post(marketer, "/dashboard/content/new", form_of(starter, name="spring_sale"))
    assert taken.status_code == 409 and "exists already" in taken.text
    for bad in ("Spring Sale", "new", "", "x" * 65):
        refused = _post(marketer, "/dashboard/content/new", form_of(starter, name=bad))
        assert refused.status_code == 400 and "lower-case letters" in refused.text
    assert dashboard.store.templates.versions("spring_sale") == 1 and len(_saves(dashboard)) == 1


def _personas(dashboard: LiveDashboard) -> list[str]:
    """The names of the personas with a typical member who is still known."""
    return [
        row.name for row in dashboard.store.personas.all() if row.active and row.body.get("typical_members")
    ]

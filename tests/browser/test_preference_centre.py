"""The preference centre in a real headless Chromium, against a live shop: a person opens their signed link,
changes a size and a consent with the mouse and the keyboard, and the admin API sees the change. Tampered
and expired links get a clear refusal; the page works at 375 px and every control has a name."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.browser.conftest import Shop
from typer.testing import CliRunner

from shopkeeper.cli.main import app as cli

with contextlib.suppress(ImportError):  # without Playwright the `browser` fixture skips (fails in CI)
    from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.slow

CONTROLS = "input, select, textarea, button, summary"


def open_centre(page: Page, shop: Shop, user_id: str) -> None:
    page.goto(shop.centre_url(shop.link_token(user_id)))
    expect(page.locator("#centre")).to_be_visible()


def stated(profile: dict[str, Any], key: str) -> Any:
    found = [t["value"] for t in profile["traits"] if t["key"] == key and t["source"] == "stated"]
    return found[0] if found else None


def status(page: Page) -> Any:
    return page.get_by_role("status")


def test_a_size_and_a_consent_changed_on_the_page_reach_the_api(page: Page, shop: Shop) -> None:
    user_id = shop.new_person()
    with shop.admin() as admin:
        before = admin.get(f"/v1/people/{user_id}/consent").json()["purposes"]["personalization"]
    open_centre(page, shop, user_id)
    box = page.get_by_role("checkbox", name="Personalising what we show you")
    expect(box).to_be_checked(checked=before["granted"])

    page.get_by_label("Trousers", exact=True).fill("34")
    page.get_by_label("General size", exact=True).fill("M")
    page.get_by_role("button", name="Save my preferences").click()
    expect(status(page)).to_contain_text("Saved")
    expect(page.locator("#traits-stated")).to_contain_text("Trousers: 34")

    box.click()
    expect(status(page)).to_contain_text("Personalising what we show you")
    expect(box).to_be_checked(checked=not before["granted"])

    with shop.admin() as admin:
        profile = admin.get(f"/v1/people/{user_id}").json()
        consent = admin.get(f"/v1/people/{user_id}/consent").json()
    assert stated(profile, "sizes") == {"trousers": "34"}
    assert stated(profile, "size") == "M"
    assert consent["purposes"]["personalization"]["granted"] is (not before["granted"])
    assert consent["purposes"]["personalization"]["default"] is False
    newest = consent["history"][-1]
    assert (newest["purpose"], newest["granted"]) == ("personalization", not before["granted"])
    assert newest["channel"] == "preference_centre"
    # The change shows in the page's own history of choices.
    page.get_by_text("History of your choices").click()
    expect(page.locator("#consent-history")).to_contain_text("Personalising what we show you")


def test_the_form_shows_what_was_stated_and_an_empty_field_clears_it(page: Page, shop: Shop) -> None:
    user_id = shop.new_person()
    open_centre(page, shop, user_id)
    page.get_by_label("Categories you like", exact=True).fill("Teapots, Gardening")
    page.get_by_label("How often", exact=True).select_option("monthly")
    page.get_by_role("checkbox", name="Email", exact=True).check()
    page.get_by_label("Pause all messages until", exact=True).fill("2030-01-31")
    page.get_by_label("Tell us about you", exact=True).fill("I collect blue teapots.")
    page.get_by_role("button", name="Save my preferences").click()
    expect(status(page)).to_contain_text("Saved")
    with shop.admin() as admin:
        profile = admin.get(f"/v1/people/{user_id}").json()
    assert stated(profile, "favourite_categories") == ["Teapots", "Gardening"]
    assert stated(profile, "contact_frequency") == "monthly"
    assert stated(profile, "preferred_channels") == ["email"]
    assert stated(profile, "pause_until") == "2030-01-31"
    assert stated(profile, "answers") == {"about_you": "I collect blue teapots."}

    page.reload()
    expect(page.locator("#centre")).to_be_visible()
    expect(page.get_by_label("Categories you like", exact=True)).to_have_value("Teapots, Gardening")
    expect(page.get_by_label("Pause all messages until", exact=True)).to_have_value("2030-01-31")
    page.get_by_label("Pause all messages until", exact=True).fill("")
    page.get_by_role("button", name="Save my preferences").click()
    expect(status(page)).to_contain_text("Saved")
    with shop.admin() as admin:
        profile = admin.get(f"/v1/people/{user_id}").json()
    assert stated(profile, "pause_until") is None
    assert stated(profile, "contact_frequency") == "monthly"  # untouched fields are not re-sent


def test_a_refused_value_is_named_in_the_status_and_the_field(page: Page, shop: Shop) -> None:
    user_id = shop.new_person()
    open_centre(page, shop, user_id)
    page.get_by_label("Trousers", exact=True).fill("3" * 40)  # sizes are at most 32 characters
    page.get_by_role("button", name="Save my preferences").click()
    expect(status(page)).to_contain_text("Not saved. Trousers: ")
    expect(status(page)).not_to_contain_text("sizes.trousers")  # the field's label, not its API name
    expect(page.get_by_label("Trousers", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Trousers", exact=True)).to_be_focused()


def test_keyboard_alone_toggles_a_consent_and_saves_a_size(page: Page, shop: Shop) -> None:
    user_id = shop.new_person()
    open_centre(page, shop, user_id)
    target = page.get_by_role("checkbox", name="Marketing emails")
    was_checked = target.is_checked()
    for _ in range(80):
        page.keyboard.press("Tab")
        if target.evaluate("node => node === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the marketing emails checkbox")
    outline = target.evaluate("node => getComputedStyle(node).outlineStyle")
    assert outline not in ("", "none"), "keyboard focus must be visible"
    page.keyboard.press("Space")
    expect(status(page)).to_contain_text("Marketing emails")
    expect(target).to_be_checked(checked=not was_checked)
    expect(target).to_be_focused()
    # On to the trousers size, still by keyboard: type it, and Enter submits the form.
    trousers = page.get_by_label("Trousers", exact=True)
    for _ in range(40):
        page.keyboard.press("Tab")
        if trousers.evaluate("node => node === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the trousers size")
    page.keyboard.type("32")
    page.keyboard.press("Enter")
    expect(status(page)).to_contain_text("Saved")
    with shop.admin() as admin:
        consent = admin.get(f"/v1/people/{user_id}/consent").json()
        profile = admin.get(f"/v1/people/{user_id}").json()
    assert consent["purposes"]["email_marketing"]["granted"] is (not was_checked)
    assert stated(profile, "sizes") == {"trousers": "32"}


def test_an_old_stated_value_can_be_confirmed_in_one_click(page: Page, shop: Shop) -> None:
    user_id = shop.new_person()
    long_ago = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    stated_long_ago = {
        "type": "identify",
        "userId": user_id,
        "traits": {"language": "fr"},
        "context": {"shopkeeper": {"stated": True}},
        "timestamp": long_ago,
    }
    sent = httpx.post(f"{shop.url}/v1/identify", json=stated_long_ago, auth=(shop.write_key, ""), timeout=10)
    assert sent.status_code == 200, sent.text
    open_centre(page, shop, user_id)
    told = page.locator("#traits-stated")
    expect(told).to_contain_text("French")
    told.get_by_role("button", name="Still right: Language, French").click()
    expect(status(page)).to_contain_text("Language is confirmed")
    expect(told.get_by_role("button", name=re.compile("^Still right"))).to_have_count(0)
    with shop.admin() as admin:
        traits = admin.get(f"/v1/people/{user_id}").json()["traits"]
    language = next(t for t in traits if t["key"] == "language")
    assert (language["source"], language["value"], language["needs_confirmation"]) == ("stated", "fr", False)


def test_that_is_not_me_drops_a_guess(page: Page, shop: Shop) -> None:
    user_id = shop.new_person()
    with shop.admin() as admin:
        traits = admin.get(f"/v1/people/{user_id}").json()["traits"]
    guesses = [t for t in traits if t["source"] == "inferred"]
    assert guesses, "the test person should have at least one guessed trait"
    key = guesses[0]["key"]
    open_centre(page, shop, user_id)
    guessed = page.locator("#traits-inferred")
    buttons = guessed.get_by_role("button", name=re.compile(r"^That's not me"))
    count = buttons.count()
    assert count >= 1
    buttons.first.click()
    expect(status(page)).to_contain_text("We will not guess")
    expect(buttons).to_have_count(count - 1)
    with shop.admin() as admin:
        explained = admin.get(f"/v1/people/{user_id}/explain").json()
    assert any(r.get("key") == key for r in explained["rejected_guesses"])


def test_a_person_sees_their_persona_and_can_say_it_is_not_them(page: Page, shop: Shop) -> None:
    user_id = shop.new_person()
    order = {
        "type": "track",
        "event": "Order Completed",
        "userId": user_id,
        "properties": {"order_id": f"{user_id}-1", "revenue": 9.0, "products": [{"product_id": "m1"}]},
    }
    assert httpx.post(f"{shop.url}/v1/track", json=order, auth=(shop.write_key, ""), timeout=10).is_success
    with shop.admin() as admin:
        assert admin.post("/v1/personas/discover").status_code == 200
        persona = [t for t in admin.get(f"/v1/people/{user_id}").json()["traits"] if t["key"] == "persona"]
    assert persona and persona[0]["source"] == "inferred"
    open_centre(page, shop, user_id)
    guessed = page.locator("#traits-inferred")
    item = guessed.locator("li", has_text="The kind of customer we think you are")
    expect(item).to_contain_text(str(persona[0]["value"]))
    item.get_by_role("button", name=re.compile(r"^That's not me")).first.click()
    expect(status(page)).to_contain_text("We will not guess")
    with shop.admin() as admin:
        traits = admin.get(f"/v1/people/{user_id}").json()["traits"]
        assert all(t["key"] != "persona" for t in traits)
        assert admin.post("/v1/personas/discover").status_code == 200  # a later run does not give it back
        traits = admin.get(f"/v1/people/{user_id}").json()["traits"]
    assert all(t["key"] != "persona" for t in traits)


def test_a_wish_shows_with_its_item_and_can_be_dropped(page: Page, shop: Shop) -> None:
    user_id = shop.new_person()
    item = {
        "title": "GREY WOOL TROUSERS",
        "category": "Trousers",
        "price": 120.0,
        "variants": [{"variant_id": "grey-34", "attributes": {"size": "34", "colour": "grey"}, "stock": 0}],
    }
    with shop.admin() as admin:
        assert admin.put("/v1/items/trousers-grey", json=item).status_code == 200
        wish = admin.post(
            f"/v1/people/{user_id}/wishes",
            json={"item_id": "trousers-grey", "variant_id": "grey-34", "source": "staff"},
        ).json()
    open_centre(page, shop, user_id)
    wishes = page.locator("#wishes-list")
    expect(wishes).to_contain_text("Grey wool trousers")
    expect(wishes).to_contain_text("Size 34")
    expect(wishes).to_contain_text("you asked in the shop")
    wishes.get_by_role("button", name="Stop telling me about Grey wool trousers").click()
    expect(status(page)).to_contain_text("We will not tell you about Grey wool trousers")
    expect(wishes).to_contain_text("Nothing.")
    with shop.admin() as admin:
        after = admin.get(f"/v1/people/{user_id}/wishes").json()["items"]
    assert [(w["id"], w["status"]) for w in after] == [(wish["id"], "dropped")]


def test_the_link_the_shop_issues_opens_the_centre(page: Page, shop: Shop) -> None:
    user_id = shop.new_person()
    with shop.admin() as admin:
        issued = admin.post(f"/v1/people/{user_id}/link", params={"days": 2})
    assert issued.status_code == 200, issued.text
    url = issued.json()["url"]
    assert url.startswith(f"{shop.url}/preferences#token=")
    page.goto(url)
    expect(page.locator("#centre")).to_be_visible()
    expect(page.locator("#known-summary")).to_contain_text(f"{user_id}@example.com")


def test_the_link_printed_by_the_cli_opens_the_centre(page: Page, shop: Shop) -> None:
    user_id = shop.new_person()
    db = str(shop.store.engine.url)
    args = ["people", "link", f"{user_id}@example.com", "--days", "1", "--base-url", shop.url, "--json"]
    result = CliRunner().invoke(cli, [*args, "--db", db], env={"NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    page.goto(json.loads(result.stdout)["url"])
    expect(page.locator("#centre")).to_be_visible()
    expect(page.locator("#known-summary")).to_contain_text(user_id)


def test_an_erased_person_s_link_says_so(page: Page, shop: Shop) -> None:
    user_id = shop.new_person()
    token = shop.link_token(user_id)
    with shop.admin() as admin:
        assert admin.delete(f"/v1/people/{user_id}").status_code == 200
    page.goto(shop.centre_url(token))
    # The link died with its person (issue 12): refused like any invalid link, saying no more.
    expect(page.locator("#refusal")).to_contain_text("This link is not valid")
    expect(page.locator("#centre")).to_be_hidden()


@pytest.mark.parametrize("link", ["tampered", "expired", "missing"])
def test_a_bad_link_gets_a_clear_refusal_and_no_form(page: Page, shop: Shop, link: str) -> None:
    user_id = shop.new_person()
    token = shop.link_token(user_id)
    if link == "tampered":
        payload_end = token.rindex(".")
        swapped = "A" if token[payload_end - 1] != "A" else "B"
        token = token[: payload_end - 1] + swapped + token[payload_end:]
    elif link == "expired":
        token = shop.link_token(user_id, ttl=timedelta(days=1), now=datetime.now(UTC) - timedelta(days=2))
    url = f"{shop.url}/preferences" if link == "missing" else shop.centre_url(token)
    page.goto(url)
    refusal = page.get_by_role("heading", name="We can't open your preferences")
    expect(refusal).to_be_visible()
    expected = {"tampered": "This link is not valid", "expired": "This link has expired", "missing": "no key"}
    expect(page.locator("#refusal")).to_contain_text(expected[link])
    expect(page.locator("#refusal")).to_contain_text("Ask the shop for a new link")
    expect(page.locator("#centre")).to_be_hidden()
    expect(page.locator("#loading")).to_be_hidden()
    assert page.locator(f"{CONTROLS}").filter(visible=True).count() == 0, "no half-working form"
    body = page.locator("body").inner_text()
    assert "{" not in body and "unauthenticated" not in body, "no raw JSON"


def test_a_link_that_expires_while_the_page_is_open_turns_into_the_refusal(page: Page, shop: Shop) -> None:
    user_id = shop.new_person()
    open_centre(page, shop, user_id)
    # From now on the server answers as it does for an expired token.
    expired = {"error": {"code": "unauthenticated", "message": "this link has expired", "field": "token"}}
    page.route("**/v1/people/me/**", lambda route: route.fulfill(status=401, json=expired))
    page.get_by_role("checkbox", name="Measuring how the shop is used").click()
    expect(page.locator("#refusal")).to_contain_text("This link has expired")
    expect(page.locator("#centre")).to_be_hidden()
    assert page.locator(CONTROLS).filter(visible=True).count() == 0


def test_the_page_fits_a_375px_phone(browser: Browser, shop: Shop) -> None:
    user_id = shop.new_person()
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        open_centre(page, shop, user_id)
        page.get_by_text("History of your choices").click()
        widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], f"horizontal scroll at 375px: {widths}"
        for control in page.locator(CONTROLS).filter(visible=True).all():
            box = control.bounding_box()
            assert box is not None
            assert box["x"] >= 0 and box["x"] + box["width"] <= 375, control.evaluate("n => n.outerHTML")
    finally:
        context.close()


def test_every_control_has_an_accessible_name_and_headings_are_in_order(page: Page, shop: Shop) -> None:
    user_id = shop.new_person()
    open_centre(page, shop, user_id)
    controls = page.locator(CONTROLS).all()
    assert len(controls) >= 20
    for control in controls:
        expect(control).to_have_accessible_name(re.compile(r"\w"))
    expect(page.get_by_role("heading", level=1)).to_have_count(1)
    for group in ("You told us", "We saw", "We guessed"):
        expect(page.get_by_role("heading", level=3, name=group)).to_be_visible()
    for name in ("What we know about you", "What we may use your data for", "Tell us what you like"):
        expect(page.get_by_role("heading", level=2, name=name)).to_be_visible()
    levels = page.evaluate(
        "[...document.querySelectorAll('h1,h2,h3,h4,h5,h6')]"
        ".filter(h => h.offsetParent !== null).map(h => Number(h.tagName[1]))"
    )
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), f"heading levels skip: {levels}"
    for purpose in ("necessary", "analytics", "personalization", "email_marketing", "staff_outreach"):
        expect(page.locator(f"#consent-{purpose}")).to_have_role("checkbox")
    expect(page.get_by_role("checkbox", name="Running the shop")).to_be_disabled()
    expect(page.get_by_role("status")).to_have_attribute("aria-live", "polite")


CONTRAST_CHECK = """
() => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const lin = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const background = (node) => {
    for (let n = node; n; n = n.parentElement) {
      const [r, g, b, a = 1] = rgb(getComputedStyle(n).backgroundColor);
      if (a > 0) return [r, g, b];
    }
    return [255, 255, 255];
  };
  const failures = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    const node = text.parentElement;
    if (!text.textContent.trim() || !node.checkVisibility() || node.closest(":disabled")) continue;
    const box = node.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue;  // visually hidden
    const style = getComputedStyle(node);
    const [l1, l2] = [luminance(rgb(style.color)), luminance(background(node))].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (!(ratio >= (large ? 3 : 4.5))) {
      failures.push(`${text.textContent.trim().slice(0, 40)}: ${ratio.toFixed(2)}`);
    }
  }
  return failures;
}
"""


def test_text_meets_wcag_aa_contrast(page: Page, shop: Shop) -> None:
    user_id = shop.new_person()
    open_centre(page, shop, user_id)
    page.get_by_text("History of your choices").click()
    page.get_by_role("checkbox", name="Marketing emails").click()  # a status message, too
    expect(status(page)).to_contain_text("Marketing emails")
    assert page.evaluate(CONTRAST_CHECK) == []
    page.goto(shop.centre_url("pt1.not.valid"))
    expect(page.locator("#refusal")).to_be_visible()
    assert page.evaluate(CONTRAST_CHECK) == []


def test_the_page_loads_nothing_from_elsewhere(page: Page, shop: Shop) -> None:
    user_id = shop.new_person()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    open_centre(page, shop, user_id)
    foreign = [u for u in requested if not u.startswith(shop.url + "/") and not u.startswith("data:")]
    assert foreign == []
    assert f"{shop.url}/preferences/static/centre.js" in requested
    assert f"{shop.url}/preferences/static/words.js" in requested
    # The token stays in the fragment: it never appears in a request path or query.
    token = shop.link_token(user_id)
    assert not any(token in u for u in requested)


def test_the_page_is_served_with_strict_headers(shop: Shop) -> None:
    response = httpx.get(f"{shop.url}/preferences", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "<script>" not in response.text and " style=" not in response.text  # nothing inline
    assert '<meta name="viewport"' in response.text
    script = httpx.get(f"{shop.url}/preferences/static/centre.js", timeout=10)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    for name in ("centre.css", "words.js"):
        assert httpx.get(f"{shop.url}/preferences/static/{name}", timeout=10).status_code == 200
    for name in ("index.html", "..%2Fcentre.py", "nope.js"):
        missing = httpx.get(f"{shop.url}/preferences/static/{name}", timeout=10)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"

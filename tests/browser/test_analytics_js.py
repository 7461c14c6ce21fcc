"""The analytics.js snippet of docs/tracking.md, as written, with the real analytics-next, in Chromium.

The page and the library come from a static server on another local origin (as a shop's site would serve
them), the events go to a live shopkeeper server, and every request anywhere else (Segment's CDN, its
telemetry) is refused and reported.
"""

from __future__ import annotations

import functools
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.browser.conftest import Shop
from tests.js_clients import node_modules

pytestmark = pytest.mark.slow

TRACKING_PAGE = Path(__file__).parent.parent.parent / "docs" / "tracking.md"
BUNDLE = Path("@segment", "analytics-next", "dist", "umd", "index.js")
# What the snippet says, and what the test puts in its place.
KEY_PLACEHOLDER = '"sk_write_..."'
HOST_PLACEHOLDER = '"shopkeeper.your-shop.example/v1"'
PROTOCOL_PLACEHOLDER = 'protocol: "https"'


def readme_snippet() -> str:
    """The tracking page's html block that loads analytics-next."""
    blocks = re.findall(r"```html\n(.*?)```", TRACKING_PAGE.read_text(encoding="utf-8"), flags=re.DOTALL)
    found = [block for block in blocks if "AnalyticsBrowser.load" in block]
    assert len(found) == 1, "docs/tracking.md has one analytics.js snippet"
    return found[0]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A static server on its own localhost port (another origin than the shop's API): its origin, root."""
    root = tmp_path_factory.mktemp("site")
    (root / "js").mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def _page_html(write_key: str, api_url: str) -> str:
    snippet = readme_snippet()
    for placeholder in (KEY_PLACEHOLDER, HOST_PLACEHOLDER, PROTOCOL_PLACEHOLDER):
        assert snippet.count(placeholder) == 1, placeholder
    api = urlsplit(api_url)
    snippet = (
        snippet.replace(KEY_PLACEHOLDER, f'"{write_key}"')
        .replace(HOST_PLACEHOLDER, f'"{api.netloc}/v1"')
        .replace(PROTOCOL_PLACEHOLDER, f'protocol: "{api.scheme}"')
    )
    return f"<!doctype html>\n<html><head><title>A shop</title></head><body>\n{snippet}</body></html>\n"


def test_readme_snippet_sends_page_identify_and_track(
    browser: Any, shop: Shop, site: tuple[str, Path]
) -> None:
    """Each call of the snippet is answered 200 and stored for the person, nothing leaves the machine."""
    origin, root = site
    shutil.copyfile(node_modules() / BUNDLE, root / "js" / "analytics-next.js")
    write_key, _ = shop.store.keys.create("write", name="analytics.js", origins=[origin])
    (root / "index.html").write_text(_page_html(write_key, shop.url), encoding="utf-8")

    context = browser.new_context()
    elsewhere: list[str] = []
    tracking: list[tuple[str, int]] = []
    errors: list[str] = []

    def only_local(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "response",
        lambda response: (
            tracking.append((urlsplit(response.url).path, response.status))
            if response.url.startswith(shop.url) and response.request.method == "POST"
            else None
        ),
    )
    try:
        page.goto(f"{origin}/index.html")
        # Wait (bounded) for the library's three posts to be answered.
        for _ in range(150):
            if len(tracking) >= 3:
                break
            page.wait_for_timeout(100)
    finally:
        context.close()

    assert errors == []
    assert elsewhere == []
    assert sorted(tracking) == [("/v1/i", 200), ("/v1/p", 200), ("/v1/t", 200)]

    with shop.admin() as admin:
        person = admin.get("/v1/people/17850").json()
        events = admin.get("/v1/people/17850/events").json()["events"]
    assert person["event_counts"] == {"page": 1, "identify": 1, "track": 1}
    ids = {(i["kind"], i["value"]) for i in person["ids"]}
    assert ("email", "ann@example.com") in ids
    assert any(kind == "anonymous_id" for kind, _ in ids)  # the page view before identify, stitched
    by_type = {e["type"]: e for e in events}
    assert by_type["page"]["name"] == "Candles"
    assert by_type["track"]["event"] == "Product Viewed"
    assert by_type["track"]["properties"] == {"product_id": "85123A", "price": 2.55}
    assert {e["context"]["library"]["name"] for e in events} == {"analytics.js"}

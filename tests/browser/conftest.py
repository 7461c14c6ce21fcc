"""Fixtures for the browser tests: a system Chromium driven by Playwright, and a live shop to point it at.

Playwright cannot download its own browsers here, so it drives the distribution's Chromium
(`scripts/install-chromium`). Without Chromium or Playwright these tests skip with the reason, except in CI
(`CI=true`), where they must run, as the PostgreSQL tests must.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import IN_CI, serving

from shopkeeper.privacy.tokens import issue_link, signing_secret
from shopkeeper.settings import Settings
from shopkeeper.store import Store

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # reported by the `browser` fixture: a skip, or a failure in CI
    sync_playwright = None  # type: ignore[assignment]

# Root in a container: no sandbox; a small /dev/shm: use /tmp instead.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true, so the browser tests must run: {reason}")
    pytest.skip(reason)


def chromium_path() -> str | None:
    configured = os.environ.get("SHOPKEEPER_TEST_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for candidate in ("chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole session."""
    if sync_playwright is None:
        _unavailable("Playwright is not installed: pip install -e '.[test]'")
    executable = chromium_path()
    if executable is None:
        _unavailable("Chromium not found: run scripts/install-chromium (or set SHOPKEEPER_TEST_CHROMIUM)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Shop:
    """A live server over a SQLite store, with its keys and the secret that signs person links."""

    url: str
    write_key: str
    admin_key: str
    store: Store
    secret: bytes

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=10
        )

    def new_person(self) -> str:
        """A person with a few events behind them (so they have observed and inferred traits): their id."""
        user_id = f"u-{uuid.uuid4().hex[:10]}"
        now = datetime.now(UTC)
        events: list[dict[str, Any]] = [
            {
                "type": "identify",
                "userId": user_id,
                "traits": {"email": f"{user_id}@example.com", "first_name": "Ann"},
                "timestamp": (now - timedelta(days=3)).isoformat(),
            }
        ]
        for n, (item, category) in enumerate([("m1", "Mugs"), ("m2", "Mugs"), ("t1", "Teapots")]):
            events.append(
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "userId": user_id,
                    "properties": {"product_id": item, "category": category, "price": 5.0},
                    "context": {"locale": "de-DE"},
                    "timestamp": (now - timedelta(days=2, minutes=n)).isoformat(),
                }
            )
        response = httpx.post(
            f"{self.url}/v1/batch", json={"batch": events}, auth=(self.write_key, ""), timeout=10
        )
        assert response.status_code == 200, response.text
        return user_id

    def link_token(
        self, user_id: str, *, ttl: timedelta = timedelta(days=7), now: datetime | None = None
    ) -> str:
        return issue_link(self.store, self.secret, user_id, ttl=ttl, now=now)

    def centre_url(self, token: str) -> str:
        return f"{self.url}/preferences#token={token}"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """One live shop per test module; each test makes its own person in it."""
    path = tmp_path_factory.mktemp("centre") / "shop.db"
    store = Store.open(f"sqlite:///{path}")
    write_key, _ = store.keys.create("write", name="browser tests")
    admin_key, _ = store.keys.create("admin", name="browser tests")
    secret = signing_secret(store, Settings(database_url=str(store.engine.url)))
    try:
        with serving(store) as url:
            yield Shop(url, write_key, admin_key, store, secret)
    finally:
        store.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context and page; fails the test if the page's script throws."""
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert errors == [], f"the page's script threw: {errors}"

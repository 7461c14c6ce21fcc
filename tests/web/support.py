"""The dashboard over a copy of the demo shop (`shopkeeper demo --no-serve`, built once per test session),
served for real, with one user of each role; and clients and browser pages logged in as each of them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.conftest import serving

from shopkeeper.privacy.accounts import Accounts
from shopkeeper.settings import Settings
from shopkeeper.store import Store

PASSWORD = "a long test password"
ROLES = ("owner", "marketer", "staff")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def build_demo_shop(folder: Path) -> Path:
    """The demo shop's database, made by the real command (about 15 s)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "demo.db"
    done = subprocess.run(
        [sys.executable, "-m", "shopkeeper", "demo", "--no-serve", "--db", f"sqlite:///{path}"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (folder / "demo.out").write_text(done.stdout)  # what it printed: the dashboard's URL and login
    return path


@dataclass
class LiveDashboard:
    url: str
    store: Store
    emails: dict[str, str] = field(default_factory=dict)
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, role: str) -> httpx.Client:
        """An httpx client logged in as `role`, with the page's CSRF token in `client.csrf`."""
        client = httpx.Client(base_url=self.url, timeout=30, follow_redirects=False)
        self.clients.append(client)
        form = client.get("/dashboard/login")
        token = re.search(r'name="login_token" value="([^"]+)"', form.text)
        assert token, form.text
        client.cookies.set("shopkeeper_login", form.cookies["shopkeeper_login"])
        answer = client.post(
            "/dashboard/login",
            data={"email": self.emails[role], "password": PASSWORD, "login_token": token.group(1)},
        )
        assert answer.status_code == 303, answer.text
        # The cookie is Secure, which httpx keeps for HTTPS; a browser sends it to localhost over HTTP too.
        client.cookies.set("shopkeeper_session", answer.cookies["shopkeeper_session"])
        page = client.get("/dashboard", follow_redirects=True)
        found = CSRF.search(page.text)
        assert found, page.text
        client.csrf = found.group(1)  # type: ignore[attr-defined]
        client.headers["Origin"] = self.url
        return client

    def user_id(self, role: str) -> int:
        return next(u.id for u in self.store.users.list() if u.email == self.emails[role])

    def login(self, page: Any, role: str) -> None:
        """A Playwright page logged in as `role` through the login form."""
        page.goto(f"{self.url}/dashboard/login")
        page.get_by_label("Email").fill(self.emails[role])
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r".*/dashboard(/.*)?$"))


@contextmanager
def dashboard_over(
    template: Path, folder: Path, settings: dict[str, Any] | None = None
) -> Iterator[LiveDashboard]:
    """A live server over a fresh copy of `template`, with a user of each role."""
    path = folder / "shop.db"
    shutil.copyfile(template, path)
    url = f"sqlite:///{path}"
    store = Store.open(url)
    accounts = Accounts(store)
    emails = {}
    for role in ROLES:
        emails[role] = f"test-{role}@shop.example"  # the demo made owner@shop.example
        accounts.create(emails[role], role, PASSWORD)
    options = {
        "rate_limit_failed_auth": 0,
        "rate_limit_failed_links": 0,
        "serve_worker": False,
        **(settings or {}),
    }
    try:
        with serving(store, settings=Settings(database_url=url, **options)) as served:
            live = LiveDashboard(served, store, {**emails, "demo": "owner@shop.example"})
            yield live
    finally:
        for client in live.clients if "live" in locals() else []:
            client.close()
        store.close()

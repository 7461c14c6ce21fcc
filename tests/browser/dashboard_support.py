"""For the dashboard's browser tests: a full-page screenshot at desktop and phone width, kept in a folder CI
keeps, and axe-core run in the page (no serious or critical violation may pass)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page
from tests.js_clients import node_modules

# CI keeps this folder (the log names it); a run elsewhere puts it beside the repository's tests.
SCREENSHOTS = Path(
    os.environ.get(
        "SHOPKEEPER_SCREENSHOTS", Path(__file__).resolve().parents[2] / "screenshots" / "dashboard"
    )
)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
SERIOUS = ("serious", "critical")


def screenshots(page: Page, name: str) -> list[Path]:
    """A full-page screenshot of the page as it is, at desktop and at phone width: their paths."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    paths = []
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)  # the charts redraw at the new width
        path = SCREENSHOTS / f"{safe}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    page.set_viewport_size(DESKTOP)
    return paths


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is (the context must bypass the CSP,
    which rightly refuses the injected script: see `new_dashboard_page`)."""
    page.add_script_tag(path=str(node_modules() / "axe-core" / "axe.min.js"))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))"""
    )
    return [v for v in found if v["impact"] in SERIOUS]


def new_dashboard_page(browser: Browser) -> Page:
    """A page in a fresh context (its own cookies), desktop-sized, where axe-core may be injected."""
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    return context.new_page()

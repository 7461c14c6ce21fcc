"""The dashboard's front-end files: vendored, pinned and attributed, loaded from nowhere else."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import shopkeeper.web

WEB = Path(shopkeeper.web.__file__).parent
VENDOR = WEB / "static" / "vendor"


def test_every_vendored_file_matches_its_recorded_hash_and_has_its_licence() -> None:
    recorded = {}
    for line in (VENDOR / "VENDORED.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            digest, name = line.split()
            recorded[name] = digest
    on_disk = {p.name for p in VENDOR.iterdir() if p.name != "VENDORED.txt"}
    assert set(recorded) == on_disk
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    header = (VENDOR / "VENDORED.txt").read_text()
    assert "htmx.org@2.0.11" in header and "uplot@1.6.32" in header  # pinned, as scripts/vendor-web-assets


def test_no_page_or_script_loads_anything_from_another_origin() -> None:
    external = re.compile(r"""(src|href|action)\s*=\s*["']?(https?:)?//""", re.IGNORECASE)
    for path in [
        *WEB.glob("templates/**/*.html"),
        *(WEB / "static").glob("*.js"),
        *(WEB / "static").glob("*.css"),
    ]:
        text = path.read_text()
        assert not external.search(text), f"{path.name} names another origin"
        assert "<script>" not in text and "style=" not in text, f"{path.name} has inline script or style"
        assert "@import" not in text


def test_the_package_ships_the_templates_and_static_files() -> None:
    wheel_packages = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert 'packages = ["src/shopkeeper"]' in wheel_packages.read_text()  # hatch ships every file under it
    assert (WEB / "templates" / "base.html").is_file() and (VENDOR / "htmx.min.js").is_file()


def test_the_style_sheet_s_blocks_are_balanced() -> None:
    """Regression: a merge cut a media query's closing brace, and every rule after it stopped applying."""
    css = re.sub(r"/\*.*?\*/", "", (WEB / "static" / "app.css").read_text(), flags=re.S)
    depth = 0
    for char in css:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0

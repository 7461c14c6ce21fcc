"""Docs that can't go stale: the MkDocs site builds in strict mode, loads nothing remote, and the README
stays a front page whose links resolve. (tests/test_docs_cover_code.py checks that the docs cover the code;
tests/test_docs_run.py runs their runnable blocks.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ROOT / "docs"

# A page loads what these point at; `<a href>` only links. Matches `//host`, `http://` and `https://`.
_REMOTE_LOAD = re.compile(
    r"""<(?:script|img|iframe|source|video|audio|embed)\b[^>]*\bsrc\s*=\s*["']?(?:https?:)?//"""
    r"""|<link\b[^>]*\bhref\s*=\s*["']?(?:https?:)?//"""
    r"""|@import\s+(?:url\()?\s*["']?(?:https?:)?//"""
    r"""|url\(\s*["']?(?:https?:)?//""",
    re.IGNORECASE,
)


def test_the_docs_build_in_strict_mode_and_load_nothing_remote(tmp_path: Path) -> None:
    """`mkdocs build --strict` fails on a broken link, a missing anchor or a page left out of the nav."""
    site = tmp_path / "site"
    config = str(ROOT / "mkdocs.yml")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", config, "--site-dir", str(site)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    remote = [
        f"{page.relative_to(site)}: {match.group(0)}"
        for page in sorted(site.rglob("*"))
        if page.suffix in (".html", ".css")
        for match in _REMOTE_LOAD.finditer(page.read_text(encoding="utf-8", errors="replace"))
    ]
    assert remote == [], "the built site loads from elsewhere:\n" + "\n".join(remote)


def test_the_readme_links_resolve() -> None:
    relative = [
        target.split("#")[0]
        for target in re.findall(r"\]\(([^)\s]+)\)", README)
        if not re.match(r"[a-z]+:", target) and not target.startswith("#")
    ]
    assert "docs/index.md" in relative
    missing = [target for target in relative if not (ROOT / target).exists()]
    assert missing == []


def test_the_readme_leaves_the_reference_to_the_docs() -> None:
    """The README says what shopkeeper is, how to start, a tour and where to read on; every endpoint,
    setting, CLI command and error code is in docs/ (a table row naming one belongs there)."""
    rows = [
        line
        for line in README.splitlines()
        if re.match(r"\|\s*`(SHOPKEEPER_|GET |POST |PUT |DELETE |shopkeeper |[a-z_]+`\s*\|)", line)
    ]
    assert rows == []
    assert len(README.splitlines()) < 150


def test_the_preference_centre_promises_nothing_that_does_not_exist() -> None:
    """Regression: the page said its link "comes by email" when shopkeeper sent no messages. Moments now
    send back-in-stock messages (and the page lists the wishes behind them), but a link is still handed out
    by the shop (`people link`), not always by email: the page must not say it always comes by email."""
    centre = Path(__file__).parent.parent / "src" / "shopkeeper" / "api" / "static" / "centre"
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(centre.iterdir())).lower()
    assert "comes by email" not in text


def test_the_docs_say_no_feature_is_still_to_come() -> None:
    """Regression: the README said consent, the preference centre and experiments "arrive in the next
    releases"."""
    pages = [README, *(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md"))]
    assert not any("arrive in the next releases" in text for text in pages)

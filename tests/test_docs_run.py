"""The docs' runnable code blocks run: each page's blocks in order, in a fresh folder, on a fresh SQLite shop.

A block is runnable when the line just before its fence is `<!-- runnable -->`, or
`<!-- runnable: server -->` when it talks to a running server (docs/development.md says so for writers).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
MARKER = re.compile(r"\s*<!--\s*runnable(?::\s*(?P<mode>[\w-]+))?\s*-->\s*$")
FENCE = re.compile(r"\s*(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
LANGUAGES = {"sh", "bash", "shell", "console", "python"}
MODES = {None, "server"}
BLOCK_SECONDS = 300  # a block that takes longer is stopped and fails
# In every shell block, curl fails on an HTTP error, as a reader would notice one.
SHELL_PRELUDE = 'curl() { command curl --fail-with-body --silent --show-error "$@"; }\n'


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    mode: str | None
    code: str

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def runnable_blocks(page: Path) -> list[Block]:
    """The page's blocks marked runnable, in order. A marker not followed by a fenced block of a known
    language, or with an unknown mode, is an error: it would otherwise be silently skipped."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    for i, line in enumerate(lines):
        marker = MARKER.match(line)
        if not marker:
            continue
        where = f"{page.relative_to(ROOT)}:{i + 1}"
        opening = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        assert opening, f"{where}: a runnable marker must be followed at once by a fenced code block"
        language = opening.group("lang")
        assert language in LANGUAGES, f"{where}: a runnable block must be one of {sorted(LANGUAGES)}"
        assert marker.group("mode") in MODES, f"{where}: unknown mode {marker.group('mode')!r}"
        fence = opening.group("fence")
        end = next((j for j in range(i + 2, len(lines)) if lines[j].strip().startswith(fence)), None)
        assert end is not None, f"{where}: the code block is not closed"
        code = "\n".join(lines[i + 2 : end]) + "\n"
        blocks.append(Block(page, i + 2, language, marker.group("mode"), code))
    return blocks


PAGES_WITH_BLOCKS = [page for page in PAGES if runnable_blocks(page)]


def _fenced_blocks(text: str) -> list[str]:
    return re.findall(r"^```[\w-]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def test_the_tour_is_runnable() -> None:
    """The tour opens docs/getting-started.md, marked runnable (with a server for its HTTP calls), and the
    README shows the same blocks, word for word, so that what runs there vouches for the README too."""
    guide = ROOT / "docs" / "getting-started.md"
    marked = runnable_blocks(guide)
    assert any(block.mode == "server" for block in marked)
    assert any("import orders --sample" in block.code for block in marked)
    guide_blocks = _fenced_blocks(guide.read_text(encoding="utf-8"))
    readme_blocks = _fenced_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(readme_blocks) >= 4
    not_in_guide = [block for block in readme_blocks if block not in guide_blocks]
    assert not_in_guide == [], "README.md shows code that docs/getting-started.md does not"


def _environment(folder: Path) -> dict[str, str]:
    """This interpreter's environment, without any SHOPKEEPER_ setting (the docs assume the defaults), with
    its scripts first on PATH and `.venv` in the folder pointing at it, so that both `shopkeeper` and
    `.venv/bin/shopkeeper` work as the docs write them."""
    (folder / ".venv").symlink_to(Path(sys.executable).parent.parent, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPKEEPER_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "120"
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(folder: Path, env: dict[str, str]) -> Iterator[int]:
    """`shopkeeper serve` on the folder's shop, on a free port, until the block is done."""
    port = _free_port()
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "shopkeeper", "serve", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"the server stopped: {(folder / 'server.log').read_text()[-2000:]}"
            assert time.monotonic() < deadline, "the server did not answer /healthz within 120 s"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _run(block: Block, folder: Path, env: dict[str, str], port: int | None) -> None:
    code = block.code
    if port is not None:
        code = re.sub(r"(127\.0\.0\.1|localhost):8000\b", f"127.0.0.1:{port}", code)
    if block.language == "python":
        command = [sys.executable, "-c", code]
    else:
        command = ["bash", "-euo", "pipefail", "-c", SHELL_PRELUDE + code]
    try:
        result = subprocess.run(
            command, cwd=folder, env=env, capture_output=True, text=True, timeout=BLOCK_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.where()}: the block ran over {BLOCK_SECONDS} s:\n{block.code}")
    assert result.returncode == 0, (
        f"{block.where()}: the block failed (exit {result.returncode}):\n{block.code}\n"
        f"--- stdout (end) ---\n{result.stdout[-3000:]}\n--- stderr (end) ---\n{result.stderr[-3000:]}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_WITH_BLOCKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_runnable_blocks_run(page: Path, tmp_path: Path) -> None:
    env = _environment(tmp_path)
    for block in runnable_blocks(page):
        if block.mode == "server":
            with _server(tmp_path, env) as port:
                _run(block, tmp_path, env, port)
        else:
            _run(block, tmp_path, env, None)

"""The JavaScript clients the tests run (analytics-next, analytics-node), installed from npm into a cache.

`scripts/install-js-clients` installs them (idempotent, outside the repository; `.ci/run` calls it). Without
node and npm the tests that need them skip with the reason, except in CI (`CI=true`), where they fail.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
from tests.conftest import IN_CI

INSTALL_SCRIPT = Path(__file__).parent.parent / "scripts" / "install-js-clients"


def unavailable(reason: str) -> None:
    """Skip, or fail in CI, where every client test must run."""
    if IN_CI:
        pytest.fail(f"CI=true, so the JavaScript client tests must run: {reason}")
    pytest.skip(reason)


@cache
def _install() -> tuple[Path | None, str]:
    """The node_modules folder (installed if needed), or None and why not."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None, "node and npm are not installed: run scripts/install-js-clients"
    done = subprocess.run([str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        return None, f"scripts/install-js-clients failed: {done.stderr.strip()[-500:]}"
    return Path(done.stdout.strip().splitlines()[-1]), ""


def node_modules() -> Path:
    """The cache's node_modules with both clients in it; skips (fails in CI) when it can't be had."""
    found, reason = _install()
    if found is None:
        unavailable(reason)
    assert found is not None
    return found

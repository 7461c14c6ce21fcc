"""The CI slice of benchmarks/api_fuzz.py: about 1,000 schemathesis cases on a live server, none failing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "api_fuzz.py"


@pytest.mark.slow
def test_a_thousand_generated_requests_get_documented_answers() -> None:
    """No 5xx, no undocumented status, no body outside its schema, on every route (a fixed seed)."""
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--seed", "12", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=SCRIPT.parent,
    )
    assert run.stdout, run.stderr[-3000:]
    summary = orjson.loads(run.stdout.splitlines()[-1])
    assert summary["failures"] == [], run.stderr[-3000:]
    assert summary["server_errors"] == 0
    assert summary["cases"] >= 1000
    assert len(summary["per_operation"]) >= 29  # every documented operation was called
    assert run.returncode == 0, run.stderr[-3000:]

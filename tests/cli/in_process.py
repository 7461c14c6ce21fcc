"""Run the `shopkeeper` command in this process, through its real entry point (a new Python per call
costs seconds): exit code, stdout and stderr, as a user would see them."""

from __future__ import annotations

import sys

import pytest

from shopkeeper.cli.main import main


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    old_argv = sys.argv
    sys.argv = ["shopkeeper", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    finally:
        sys.argv = old_argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err

"""The two shops `benchmarks/dashboard.py` measures, each built once and kept in
`benchmarks/results/dashboard/` (which git ignores): the demo shop, made by `shopkeeper demo --no-serve`
(about 40 s), and the big shop resampled from it (`big_shop`, minutes). A kept shop is used again until
the code that makes it changes (this folder's modules, `bulk_tables.py`, the store's migrations), its
shape changes, or it is a week old (the demo replays its orders to end the day before it was built, and
the pages count the last 30 days); `--fresh` builds both again. Each run measures a copy, so what a run
changes (sessions, the audit log, decisions) never reaches the kept shop or the next run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

from dashboard_support.big_shop import Shape, build

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for the tests' pieces
from tests.web.support import build_demo_shop

KEPT = Path(__file__).resolve().parents[1] / "results" / "dashboard"
MAX_AGE = timedelta(days=7)
# the code that makes the big shop (the demo shop is made by `shopkeeper demo`)
MAKERS = [Path(__file__).parent / "big_shop.py", Path(__file__).parents[1] / "bulk_tables.py"]


@dataclass(frozen=True)
class Kept:
    """A kept shop: its database file, when it was built, what building it took, and what it holds."""

    path: Path
    key: str
    built: str  # ISO 8601
    seconds: dict[str, float]
    counts: dict[str, Any]
    new: bool = False  # built by this run

    @property
    def age(self) -> timedelta:
        return datetime.now(UTC) - datetime.fromisoformat(self.built)


def demo_shop(*, fresh: bool, say: Callable[[str], None]) -> Kept:
    """The demo shop, built by the real command, or the kept one."""
    key = _key("demo", [], [])
    found = None if fresh else _kept("demo", key)
    if found is not None:
        return found
    say("building the demo shop (shopkeeper demo --no-serve) ...")
    started = time.perf_counter()
    made = build_demo_shop(KEPT / "demo-build")
    seconds = {"shopkeeper demo --no-serve": time.perf_counter() - started}
    return _keep("demo", key, made, seconds, {})


def big_shop(demo: Kept, shape: Shape, *, fresh: bool, say: Callable[[str], None]) -> Kept:
    """The big shop resampled from `demo`, or the kept one built from the same demo shop."""
    key = _key("big", MAKERS, [demo.key, demo.built, json.dumps(asdict(shape))])
    found = None if fresh else _kept("big", key)
    if found is not None:
        return found
    say(f"building the big shop ({shape.people:,} people, {shape.events:,} events, resampled) ...")
    KEPT.mkdir(parents=True, exist_ok=True)
    making = KEPT / "big-build.db"
    _remove(making)
    shutil.copyfile(demo.path, making)
    made = build(f"sqlite:///{making}", shape, say)
    counts = {
        "people": made.people,
        "events": made.events,
        "interactions": made.interactions,
        "decisions": made.decisions,
        "personas": made.personas,
    }
    return _keep("big", key, making, made.seconds, counts)


def copy_of(kept: Kept, folder: Path) -> Path:
    """A copy of the kept shop in `folder`, for one run to change as it likes."""
    target = folder / kept.path.name
    shutil.copyfile(kept.path, target)
    return target


def _key(name: str, makers: list[Path], extra: list[str]) -> str:
    """What the shop is made from: the code that makes it, the store's migrations, and `extra`."""
    digest = hashlib.sha256(name.encode())
    for path in makers:
        digest.update(path.read_bytes())
    versions = files("shopkeeper.store.migrations") / "versions"
    digest.update(" ".join(sorted(entry.name for entry in versions.iterdir())).encode())
    for part in extra:
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def _kept(name: str, key: str) -> Kept | None:
    notes = KEPT / f"{name}.json"
    if not notes.exists() or not (KEPT / f"{name}.db").exists():
        return None
    kept = Kept(**{**json.loads(notes.read_text(encoding="utf-8")), "path": KEPT / f"{name}.db"})
    return kept if kept.key == key and kept.age < MAX_AGE else None


def _keep(name: str, key: str, made: Path, seconds: dict[str, float], counts: dict[str, Any]) -> Kept:
    KEPT.mkdir(parents=True, exist_ok=True)
    path = KEPT / f"{name}.db"
    _remove(path)
    with closing(sqlite3.connect(made)) as conn:  # everything into the one file that runs copy
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    made.replace(path)
    kept = Kept(path, key, datetime.now(UTC).isoformat(), seconds, counts, new=True)
    notes = {k: v for k, v in asdict(kept).items() if k not in ("path", "new")}
    (KEPT / f"{name}.json").write_text(json.dumps(notes, indent=2), encoding="utf-8")
    return kept


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)

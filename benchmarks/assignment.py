"""Assignment speed: batch buckets per second and the single-call time, against hashlib in the same run.

Goals (issue 6): at least 1,000,000 assignments/s in batch (numpy) and at most 5 us for one call.
Anchors: hashlib.sha256 over the same ids in a Python loop (what a naive stable assignment costs), and
numpy's own cost of turning the same ids into a fixed-width bytes array (a floor for any vectorised hash).

    .venv/bin/python benchmarks/assignment.py [--n 1000000]
"""

from __future__ import annotations

import argparse
import hashlib
import time
import timeit
import uuid
from collections.abc import Callable

import numpy as np

from shopkeeper.experiments.assign import Holdout, bucket, buckets, choose_arms


def best_of(function: Callable[[], object], repeat: int = 3) -> float:
    """The fastest of `repeat` runs, in seconds (the least disturbed by other work on the machine)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def to_bytes(ids: list[str]) -> np.ndarray:
    """What `buckets` must do before hashing: numpy encodes ASCII itself; other ids are encoded in Python."""
    try:
        return np.asarray(ids, dtype=np.bytes_)
    except UnicodeEncodeError:
        return np.array([u.encode("utf-8") for u in ids], dtype=np.bytes_)


def sha256_buckets(salt: str, ids: list[str]) -> list[int]:
    prefix = salt.encode() + b"\x00"
    return [int.from_bytes(hashlib.sha256(prefix + u.encode()).digest()[:8], "little") % 10_000 for u in ids]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    id_sets = {
        "numeric ids ('17850')": [str(x) for x in rng.integers(10_000, 10**7, size=args.n)],
        "uuid4 strings (36 chars)": [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**63, size=args.n)],
        "non-ASCII ids ('zoë-123')": [f"zoë-{x}" for x in rng.integers(0, 10**9, size=args.n)],
    }
    print(f"batch of {args.n:,} ids, best of 3 runs")
    header = f"{'ids':<26} {'method':<34} {'ids/s':>14} {'vs sha256 loop':>15}"
    print(header)
    print("-" * len(header))
    for label, ids in id_sets.items():
        anchor = best_of(lambda ids=ids: sha256_buckets("exp", ids))
        rows = [
            ("hashlib.sha256 loop (anchor)", anchor),
            ("ids to a numpy bytes array (floor)", best_of(lambda ids=ids: to_bytes(ids))),
            ("buckets (shopkeeper, numpy)", best_of(lambda ids=ids: buckets("exp", ids))),
            ("choose_arms, 3 weighted arms", best_of(lambda ids=ids: choose_arms("exp", ids, [50, 25, 25]))),
            ("Holdout().mask", best_of(lambda ids=ids: Holdout().mask(ids))),
        ]
        for method, seconds in rows:
            print(f"{label:<26} {method:<34} {args.n / seconds:>14,.0f} {anchor / seconds:>14.1f}x")
    print()
    header = f"{'single call':<56} {'us per call':>12} {'vs sha256':>10}"
    print(header)
    print("-" * len(header))
    for unit_id in ("17850", str(uuid.UUID(int=12345)), "zoë-ångström@example.com"):
        prefix = b"exp\x00"
        calls = 200_000
        anchor = min(
            timeit.repeat(
                lambda u=unit_id, p=prefix: (
                    int.from_bytes(hashlib.sha256(p + u.encode()).digest()[:8], "little") % 10_000
                ),
                number=calls,
                repeat=5,
            )
        )
        ours = min(timeit.repeat(lambda u=unit_id: bucket("exp", u), number=calls, repeat=5))
        print(f"{'sha256 bucket ' + repr(unit_id):<56} {anchor / calls * 1e6:>12.2f} {1.0:>9.1f}x")
        print(f"{'bucket ' + repr(unit_id):<56} {ours / calls * 1e6:>12.2f} {anchor / ours:>9.2f}x")


if __name__ == "__main__":
    main()

"""Assignment speed: batch buckets per second and the single-call time, against hashlib in the same run.

Goals (issue 6): at least 1,000,000 assignments/s in batch (numpy) and at most 5 us for one call.
Anchors: hashlib.sha256 over the same ids in a Python loop (what a naive stable assignment costs), and
numpy's own cost of turning the same ids into a fixed-width bytes array (a floor for any vectorised hash).

    .venv/bin/python benchmarks/assignment.py [--n 1000000] [--calls 200000]
"""

from __future__ import annotations

import argparse
import hashlib
import time
import timeit
import uuid
from collections.abc import Callable

import numpy as np
from goals import record

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
    parser.add_argument("--calls", type=int, default=200_000, help="single calls timed per repeat")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    id_sets = {
        "numeric ids ('17850')": [str(x) for x in rng.integers(10_000, 10**7, size=args.n)],
        "uuid4 strings (36 chars)": [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**63, size=args.n)],
        "non-ASCII ids ('zoë-123')": [f"zoë-{x}" for x in rng.integers(0, 10**9, size=args.n)],
    }
    print(f"batch of {args.n:,} ids, best of 3 runs")
    slowest_batch: tuple[float, float, str] = (float("inf"), 0.0, "")  # ids/s, anchor ids/s, which ids
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
        ours = args.n / rows[2][1]
        if ours < slowest_batch[0]:
            slowest_batch = (ours, args.n / anchor, label)
    print()
    header = f"{'single call':<56} {'us per call':>12} {'vs sha256':>10}"
    print(header)
    print("-" * len(header))
    slowest_call: tuple[float, float, str] = (0.0, 0.0, "")  # us per call, anchor us, which id
    for unit_id in ("17850", str(uuid.UUID(int=12345)), "zoë-ångström@example.com"):
        prefix = b"exp\x00"
        calls = args.calls
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
        if ours / calls * 1e6 > slowest_call[0]:
            slowest_call = (ours / calls * 1e6, anchor / calls * 1e6, repr(unit_id))
    ids_per_second, anchor_per_second, label = slowest_batch
    record(
        "assignment",
        f"buckets, numpy batch of {args.n:,} ids (slowest: {label.split(' (')[0]})",
        f"{ids_per_second:,.0f} ids/s",
        anchor=f"hashlib.sha256 loop {anchor_per_second:,.0f} ids/s",
        ratio=ids_per_second / anchor_per_second,
        goal=">= 1,000,000 ids/s",
        met=ids_per_second >= 1_000_000,
    )
    us, anchor_us, which = slowest_call
    record(
        "assignment",
        f"bucket, one call (slowest: {which})",
        f"{us:.2f} us",
        anchor=f"one hashlib.sha256 {anchor_us:.2f} us",
        ratio=us / anchor_us,
        goal="<= 5 us",
        met=us <= 5.0,
    )


if __name__ == "__main__":
    main()

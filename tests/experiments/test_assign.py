"""Deterministic assignment: frozen golden vectors, batch == single, uniform buckets, weights, holdout."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest
from scipy import stats

from shopkeeper.experiments.assign import (
    ASSIGNMENT_VERSION,
    BUCKETS,
    Holdout,
    bucket,
    buckets,
    choose_arm,
    choose_arms,
    hash_unit,
    hash_units,
    unit_float,
    unit_floats,
)

# Computed once with version 1 and frozen. If one of these changes, every running experiment reshuffles
# its people: bump ASSIGNMENT_VERSION instead of editing the numbers.
GOLDEN = [
    ("exp-homepage", "17850", 0x5CC91E919A9477CB, 3624),
    ("exp-homepage", "17851", 0xFB6EFE953CB93D04, 9821),
    ("exp-homepage", "", 0x472C9360F042EEA1, 2780),
    ("holdout", "anon-3f2a9c", 0x9374BB8B41D49204, 5759),
    ("checkout-v2", "user@example.com", 0x514A75ACA765465C, 3175),
    ("checkout-v2", "Zoë Ångström", 0x4D29E74810199C2B, 3014),
    ("a", "x" * 40, 0xB81DAC45585C3F33, 7192),
    ("b", "550e8400-e29b-41d4-a716-446655440000", 0xAA64E4093AD4F7AA, 6656),
    ("", "12345678", 0x3669096B1A8775B5, 2125),
    ("日本", "ユーザー42", 0x9CB9338EBCC9746B, 6122),
]
GOLDEN_ARMS = [1, 0, 0, 2, 2, 2, 1, 2, 2, 1, 1, 2]  # choose_arm("exp-homepage", str(i), [50, 30, 20])
GOLDEN_HOLDOUT = [3, 18, 35, 41, 64, 68, 105, 148, 191, 194, 197]  # str(i) < 200 in the default holdout


def reference_hash(salt: str, unit_id: str) -> int:
    """The module docstring's definition, written out plainly, independent of the implementation."""
    return reference_hash_of_bytes(salt, unit_id.encode("utf-8"))


def test_version_is_one() -> None:
    assert ASSIGNMENT_VERSION == 1


@pytest.mark.parametrize(("salt", "unit_id", "expected_hash", "expected_bucket"), GOLDEN)
def test_golden_vectors(salt: str, unit_id: str, expected_hash: int, expected_bucket: int) -> None:
    assert hash_unit(salt, unit_id) == expected_hash
    assert reference_hash(salt, unit_id) == expected_hash
    assert bucket(salt, unit_id) == expected_bucket
    assert int(hash_units(salt, [unit_id])[0]) == expected_hash
    assert int(buckets(salt, [unit_id])[0]) == expected_bucket


def test_golden_arms_and_holdout() -> None:
    assert [choose_arm("exp-homepage", str(i), [50, 30, 20]) for i in range(12)] == GOLDEN_ARMS
    holdout = Holdout()
    assert holdout.share == 0.05
    assert [i for i in range(200) if holdout.contains(str(i))] == GOLDEN_HOLDOUT
    assert np.flatnonzero(holdout.mask([str(i) for i in range(200)])).tolist() == GOLDEN_HOLDOUT


def _ids(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    ids = [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**63, size=n // 2)]
    ids += [f"user-{int(x)}" for x in rng.integers(0, 10**9, size=n // 4)]
    ids += ["é" * int(k) + f"ü{i}" for i, k in enumerate(rng.integers(0, 30, size=n - len(ids) - 5))]
    return [*ids, "", "a\x00b", "trailing\x00", "x" * 600, "🛒"]


def test_batch_and_single_agree_on_every_kind_of_id() -> None:
    ids = _ids(5000, seed=1)
    batch = hash_units("agree", ids)
    assert [int(h) for h in batch] == [hash_unit("agree", u) for u in ids]
    assert [reference_hash("agree", u) for u in ids[:500]] == [int(h) for h in batch[:500]]
    assert buckets("agree", ids).tolist() == [bucket("agree", u) for u in ids]
    assert unit_floats("agree", ids).tolist() == [unit_float("agree", u) for u in ids]
    weights = [0.2, 0.0, 0.5, 0.3]
    assert choose_arms("agree", ids, weights).tolist() == [choose_arm("agree", u, weights) for u in ids]
    # numpy string arrays and bytes arrays give the same answers as lists
    ascii_ids = [u for u in ids if u.isascii()]
    assert hash_units("agree", np.array(ascii_ids)).tolist() == hash_units("agree", ascii_ids).tolist()
    assert hash_units("agree", np.array([u.encode() for u in ascii_ids])).tolist() == [
        hash_unit("agree", u) for u in ascii_ids
    ]


def test_empty_batch() -> None:
    assert buckets("e", []).shape == (0,)


def test_the_same_in_another_process_with_another_hash_seed() -> None:
    code = "from shopkeeper.experiments.assign import bucket; print([bucket('p', str(i)) for i in range(50)])"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == str([bucket("p", str(i)) for i in range(50)])


@pytest.mark.parametrize("kind", ["sequential", "uuid"])
def test_buckets_are_uniform(kind: str) -> None:
    ids = [str(i) for i in range(200_000)] if kind == "sequential" else _ids(100_000, seed=2)
    counts = np.bincount(buckets("uniform", ids), minlength=BUCKETS)
    assert counts.shape == (BUCKETS,)
    assert stats.chisquare(counts).pvalue > 1e-4
    coarse = np.bincount(buckets("uniform", ids) // 100, minlength=100)
    assert stats.chisquare(coarse).pvalue > 1e-4


def test_salts_are_independent() -> None:
    ids = [f"person-{i}" for i in range(100_000)]
    a, b = buckets("first", ids) < 5000, buckets("second", ids) < 5000
    table = np.array([[(a & b).sum(), (a & ~b).sum()], [(~a & b).sum(), (~a & ~b).sum()]])
    assert stats.chi2_contingency(table).pvalue > 1e-4


def test_weighted_arms_follow_the_weights() -> None:
    ids = [f"person-{i}" for i in range(100_000)]
    arms = choose_arms("weights", ids, [70, 20, 10, 0])
    counts = np.bincount(arms, minlength=4)
    assert counts[3] == 0
    assert stats.chisquare(counts[:3], f_exp=np.array([0.7, 0.2, 0.1]) * len(ids)).pvalue > 1e-4


def test_bad_weights_are_refused() -> None:
    for weights in ([], [0, 0], [1, -1], [float("nan"), 1]):
        with pytest.raises(ValueError, match="traffic weights"):
            choose_arm("x", "y", weights)


def test_holdout_share_and_growth() -> None:
    ids = [f"person-{i}" for i in range(100_000)]
    five, ten = Holdout(0.05).mask(ids), Holdout(0.10).mask(ids)
    assert abs(five.mean() - 0.05) < 0.004
    assert abs(ten.mean() - 0.10) < 0.005
    assert not (five & ~ten).any()  # growing the holdout never moves anyone out of it
    assert not Holdout(0.0).mask(ids).any()
    assert Holdout(1.0).mask(ids).all()
    with pytest.raises(ValueError):
        Holdout(1.5)


def test_batch_reduction_is_exact_at_the_edges_of_the_prime() -> None:
    """Raw byte ids whose integer is P, 2P or 2**64 - 1 (mod P: 0, 0, 7): the numpy residues are exact."""
    prime = 2**61 - 1
    raw = [
        prime.to_bytes(8, "little"),
        (2 * prime).to_bytes(8, "little"),
        b"\xff" * 8,
        b"\xff" * 64 + b"\x01",
    ]
    found = hash_units("edge", np.array(raw, dtype=np.bytes_)).tolist()
    empty = hash_unit("edge", "")
    assert found[:2] == [empty, empty]
    seven = hash_unit("edge", "\x07")
    assert found[2] == seven
    # 65 bytes: nine words, the last one rotated by 3 * 8 = 24 bits; compare with Python's big integers.
    assert found[3] == reference_hash_of_bytes("edge", raw[3])


def reference_hash_of_bytes(salt: str, data: bytes) -> int:
    x = int.from_bytes(data.rstrip(b"\x00"), "little")
    seed = int.from_bytes(hashlib.sha256(b"shopkeeper-assign-v1\x00" + salt.encode()).digest()[:8], "little")
    h = (x % (2**61 - 1)) ^ seed
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) % 2**64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) % 2**64
    return h ^ (h >> 33)

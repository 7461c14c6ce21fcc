"""Deterministic assignment: (experiment salt, unit id) -> bucket, the same on every process and machine.

The hash is versioned (`ASSIGNMENT_VERSION`). Version 1 reads the unit id's UTF-8 bytes (trailing NUL bytes
dropped, as numpy's fixed-width bytes can't hold them) as one little-endian integer x, reduces it modulo the
Mersenne prime P = 2**61 - 1, mixes in a seed derived from the salt and finishes with MurmurHash3's `fmix64`
(arithmetic mod 2**64):

    seed = first 8 bytes (little-endian) of sha256(b"shopkeeper-assign-v1\\x00" + salt as UTF-8)
    h = fmix64((x mod P) ^ seed)

In Python, `x mod P` is one big-integer operation, whatever the id's length. In numpy it is computed per
64-bit word w_k of x: since 2**64 = 8 (mod P), x = sum_k (w_k mod P) * 2**(3k mod 61) (mod P), and
multiplying a 61-bit residue by a power of two mod P is a 61-bit rotation. A bucket is
`(h >> 32) * 10_000 >> 32`, in [0, 10000); a unit float is `(h >> 11) / 2**53`, in [0, 1). Python's `hash()`
is never used: it is salted per process. The single-call and the numpy batch functions give the same
numbers, which the golden vectors in the tests pin down.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

ASSIGNMENT_VERSION = 1
BUCKETS = 10_000
DEFAULT_HOLDOUT_SHARE = 0.05
HOLDOUT_SALT = "shopkeeper-holdout"

_MASK = (1 << 64) - 1
_PRIME = (1 << 61) - 1
_F1 = 0xFF51AFD7ED558CCD
_F2 = 0xC4CEB9FE1A85EC53

UnitIds = Sequence[str] | npt.NDArray[np.str_] | npt.NDArray[np.bytes_]


@lru_cache(maxsize=1024)
def salt_seed(salt: str) -> int:
    """The 64-bit seed of an experiment's salt."""
    digest = hashlib.sha256(b"shopkeeper-assign-v1\x00" + salt.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def hash_unit(salt: str, unit_id: str) -> int:
    """The 64-bit assignment hash of one unit id under a salt."""
    h = (int.from_bytes(unit_id.encode("utf-8").rstrip(b"\x00"), "little") % _PRIME) ^ salt_seed(salt)
    h ^= h >> 33
    h = (h * _F1) & _MASK
    h ^= h >> 33
    h = (h * _F2) & _MASK
    return h ^ (h >> 33)


def bucket(salt: str, unit_id: str) -> int:
    """The unit's bucket in [0, 10000) under `salt`."""
    return ((hash_unit(salt, unit_id) >> 32) * BUCKETS) >> 32


def unit_float(salt: str, unit_id: str) -> float:
    """The unit's uniform number in [0, 1) under `salt` (53 bits)."""
    return (hash_unit(salt, unit_id) >> 11) * 2.0**-53


def _as_bytes(unit_ids: UnitIds) -> npt.NDArray[np.bytes_]:
    if isinstance(unit_ids, np.ndarray) and unit_ids.dtype.kind == "S":
        return np.asarray(unit_ids, dtype=np.bytes_)
    try:
        return np.asarray(unit_ids, dtype=np.bytes_)  # fast path: ASCII ids
    except UnicodeEncodeError:
        return np.array([str(u).encode("utf-8") for u in unit_ids], dtype=np.bytes_)


def _fold(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """x (below 2**64) to a value congruent mod P and below 2**61 + 8."""
    return (x & np.uint64(_PRIME)) + (x >> np.uint64(61))


def hash_units(salt: str, unit_ids: UnitIds) -> npt.NDArray[np.uint64]:
    """`hash_unit` for many ids at once, vectorised with numpy."""
    raw = _as_bytes(unit_ids)
    n = raw.shape[0]
    words = (raw.dtype.itemsize + 7) // 8
    padded = np.zeros((n, max(words, 1) * 8), dtype=np.uint8)
    if n and raw.dtype.itemsize:
        padded[:, : raw.dtype.itemsize] = raw.view(np.uint8).reshape(n, raw.dtype.itemsize)
    lanes = padded.view("<u8")
    prime = np.uint64(_PRIME)
    total = np.zeros(n, dtype=np.uint64)
    for k in range(words):
        residue = _fold(_fold(lanes[:, k]))  # below 2**61: a 61-bit residue (P itself stands for 0)
        shift = (3 * k) % 61
        if shift:
            residue = ((residue << np.uint64(shift)) & prime) | (residue >> np.uint64(61 - shift))
        total = _fold(total + residue)
    total = _fold(total)
    total = np.where(total >= prime, total - prime, total)
    h = total ^ np.uint64(salt_seed(salt))
    h ^= h >> np.uint64(33)
    h *= np.uint64(_F1)
    h ^= h >> np.uint64(33)
    h *= np.uint64(_F2)
    h ^= h >> np.uint64(33)
    return h


def buckets(salt: str, unit_ids: UnitIds) -> npt.NDArray[np.int64]:
    """`bucket` for many ids at once."""
    return (((hash_units(salt, unit_ids) >> np.uint64(32)) * np.uint64(BUCKETS)) >> np.uint64(32)).astype(
        np.int64
    )


def unit_floats(salt: str, unit_ids: UnitIds) -> npt.NDArray[np.float64]:
    """`unit_float` for many ids at once."""
    return (hash_units(salt, unit_ids) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _boundaries(weights: Sequence[float]) -> npt.NDArray[np.float64]:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("traffic weights must be a non-empty list of non-negative numbers, not all zero")
    cumulative: npt.NDArray[np.float64] = np.cumsum(w) / w.sum()
    cumulative[-1] = 1.0
    return cumulative


def choose_arm(salt: str, unit_id: str, weights: Sequence[float]) -> int:
    """The index of the unit's arm, drawn with the given traffic weights (any positive scale)."""
    return int(np.searchsorted(_boundaries(weights), unit_float(salt, unit_id), side="right"))


def choose_arms(salt: str, unit_ids: UnitIds, weights: Sequence[float]) -> npt.NDArray[np.int64]:
    """`choose_arm` for many ids at once."""
    return np.searchsorted(_boundaries(weights), unit_floats(salt, unit_ids), side="right").astype(np.int64)


@dataclass(frozen=True)
class Holdout:
    """The universal holdout: a fixed share of people who get the non-personal baseline everywhere.

    A person is held out when their bucket under `salt` is below `share * 10000`, so growing the share
    only adds people and never moves anyone out.
    """

    share: float = DEFAULT_HOLDOUT_SHARE
    salt: str = HOLDOUT_SALT

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"the holdout share must be between 0 and 1, not {self.share}")

    @property
    def threshold(self) -> int:
        return round(self.share * BUCKETS)

    def contains(self, unit_id: str) -> bool:
        """Whether this person is in the holdout."""
        return bucket(self.salt, unit_id) < self.threshold

    def mask(self, unit_ids: UnitIds) -> npt.NDArray[np.bool_]:
        """Which of these people are in the holdout."""
        return buckets(self.salt, unit_ids) < self.threshold

"""Deterministic assignment: (experiment salt, unit id) -> bucket, the same on every process and machine.

The hash is versioned (`ASSIGNMENT_VERSION`). Version 1 is a 64-bit multiply-xorshift hash over the unit
id's UTF-8 bytes, read as little-endian 64-bit words (the last one padded with zero bytes), seeded from
SHA-256 of the salt and finished with MurmurHash3's `fmix64` over the byte length (all arithmetic mod 2**64):

    h = first 8 bytes (little-endian) of sha256(b"shopkeeper-assign-v1\\x00" + salt as UTF-8)
    for each word w:  h = (h ^ w) * 0x87C37B91114253D5;  h ^= h >> 32
    h = fmix64(h ^ byte_length)

Trailing NUL bytes of an id are ignored (numpy's fixed-width bytes can't hold them). A bucket is
`(h >> 32) * 10_000 >> 32`, in [0, 10000); a unit float is `(h >> 11) / 2**53`, in [0, 1). Python's
`hash()` is never used: it is salted per process. The single-call and the numpy batch functions give the
same numbers, which the golden vectors in the tests pin down.
"""

from __future__ import annotations

import hashlib
import struct
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
_C1 = 0x87C37B91114253D5
_F1 = 0xFF51AFD7ED558CCD
_F2 = 0xC4CEB9FE1A85EC53

UnitIds = Sequence[str] | npt.NDArray[np.str_] | npt.NDArray[np.bytes_]


@lru_cache(maxsize=1024)
def salt_seed(salt: str) -> int:
    """The 64-bit seed of an experiment's salt (the hash's starting state)."""
    digest = hashlib.sha256(b"shopkeeper-assign-v1\x00" + salt.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


_WORDS = [struct.Struct(f"<{n}Q") for n in range(65)]


def hash_unit(salt: str, unit_id: str) -> int:
    """The 64-bit assignment hash of one unit id under a salt."""
    data = unit_id.encode("utf-8").rstrip(b"\x00")
    length = len(data)
    words = (length + 7) >> 3
    packed = data.ljust(words * 8, b"\x00")
    mask, c1 = _MASK, _C1
    h = salt_seed(salt)
    for w in _WORDS[words].unpack(packed) if words < 65 else struct.unpack(f"<{words}Q", packed):
        h = ((h ^ w) * c1) & mask
        h ^= h >> 32
    h ^= length
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & mask
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & mask
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


def hash_units(salt: str, unit_ids: UnitIds) -> npt.NDArray[np.uint64]:
    """`hash_unit` for many ids at once, vectorised with numpy."""
    raw = _as_bytes(unit_ids)
    n = raw.shape[0]
    width = max(raw.dtype.itemsize, 1)
    words = (width + 7) // 8
    padded = np.zeros((n, words * 8), dtype=np.uint8)
    if n:
        padded[:, : raw.dtype.itemsize] = raw.view(np.uint8).reshape(n, raw.dtype.itemsize)
    lanes = padded.view("<u8")
    lengths = np.char.str_len(raw).astype(np.uint64) if n else np.zeros(0, dtype=np.uint64)
    n_words = (lengths + np.uint64(7)) >> np.uint64(3)
    h = np.full(n, salt_seed(salt), dtype=np.uint64)
    c1, shift = np.uint64(_C1), np.uint64(32)
    for j in range(words):
        active = n_words > np.uint64(j)
        if not active.any():
            break
        mixed = (h ^ lanes[:, j]) * c1
        mixed ^= mixed >> shift
        h = np.where(active, mixed, h)
    h ^= lengths
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

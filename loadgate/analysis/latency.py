"""Response times as order-preserving integer keys, bucketed for the histogram selection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

FINE_BITS = 12  # at most 4096 buckets over the key range


class Latency:
    """Response times per chunk as order-preserving uint64 keys, and their buckets at the finest level.

    Rows without a response time (NaN) are left out; ``take`` drops the same rows from other arrays.
    """

    def __init__(self, parts: list[np.ndarray], mapper: Callable[..., Any] = map) -> None:
        """``mapper``: ``map``, or a thread pool's, to handle the parts side by side."""
        self.rows = list(
            mapper(lambda v: None if not np.isnan(v.min(initial=0.0)) else np.flatnonzero(~np.isnan(v)), parts)
        )
        self.values = self.take(parts)
        self.signed = any(mapper(lambda v: bool(np.signbit(v).any()), self.values))
        self.keys = list(mapper(self._key, self.values))
        ends = [(int(k.min()), int(k.max())) for k in self.keys if k.size]
        self.lo, self.hi = min((e[0] for e in ends), default=0), max((e[1] for e in ends), default=0)
        self.fine_shift = max(0, (self.hi - self.lo).bit_length() - FINE_BITS)

        def fine(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            bucket = ((key - np.uint64(self.lo)) >> np.uint64(self.fine_shift)).astype(np.uint16)
            return bucket, np.bincount(bucket, minlength=1 << FINE_BITS)

        done = list(mapper(fine, self.keys))
        self.buckets = [d[0] for d in done]
        self.fine_hist = sum((d[1] for d in done), np.zeros(1 << FINE_BITS, np.int64))

    def _key(self, values: np.ndarray) -> np.ndarray:
        key = values.view(np.uint64)
        if self.signed:  # flip negatives (all bits) and positives (sign bit): unsigned order = float order
            key = key ^ (np.uint64(0) - (key >> np.uint64(63)) | np.uint64(1 << 63))
        return key

    def take(self, parts: list[np.ndarray]) -> list[np.ndarray]:
        """Per-row arrays without the rows lacking a response time."""
        return [p if r is None else p[r] for p, r in zip(parts, self.rows)]

    def to_values(self, key: np.ndarray) -> np.ndarray:
        """Floats back from keys."""
        if self.signed:
            key = key ^ (np.uint64(0) - (np.uint64(1) - (key >> np.uint64(63))) | np.uint64(1 << 63))
        return key.view(np.float64)

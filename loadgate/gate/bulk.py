"""Building many small objects at once (a threshold file of 100,000 items, their results) without the
cyclic garbage collector: each of its full collections walks every object alive, so its passes over a
growing heap made parsing 100,000 thresholds 3x slower per threshold than 5,000. Nothing built here
makes cycles, so nothing waits for the collector."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off inside, back as it was after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()

"""Collect garbage less often while building large, long-lived results.

Loading 5,000 manifests or planning against 5,000 live services allocates
hundreds of thousands of objects that all stay alive (positions, models, the
plan). With CPython's default thresholds (700, 10, 10) the collector rescans
them over and over: about a third of the CPU of `validate` + `plan` at that
size (benchmarks/run.py). `fewer_collections` raises the first generation's
threshold for the duration (as mypy does for the same reason) and puts the
previous thresholds back afterwards; nothing is left uncollected, only
collected in larger batches.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Allocations between first-generation collections while a build runs (default 700).
BUILD_THRESHOLD = 50_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Context manager and decorator; nests and may overlap across threads.

    The thresholds in force when the outermost use began come back when the
    last use ends.
    """
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(max(_saved[0], BUILD_THRESHOLD), _saved[1], _saved[2])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)

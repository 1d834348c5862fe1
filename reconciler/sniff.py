"""The first bytes of a file, to judge it by content (a saved plan, a manifest)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_head(path: str | Path, limit: int) -> bytes | None:
    """The first `limit` bytes of a regular file; None for anything else or an unreadable
    file. Never blocks on a FIFO or device."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        return os.read(descriptor, limit)
    except OSError:
        return None
    finally:
        os.close(descriptor)

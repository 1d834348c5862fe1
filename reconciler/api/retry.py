"""Which failures are retried, and how long to wait before the next attempt.

Safe to retry: 429, 502, 503, 504, timeouts and dropped connections, for
operations that are idempotent (GET, PUT, DELETE, sign-in). A POST that
creates or updates is retried only when the server provably did not act on
it: a 429, a 503 that carries Retry-After (the API's maintenance answer), or a
connection that never opened. Any other lost answer is an unknown outcome the
caller must resolve by looking.

Backoff is exponential with "equal jitter" (half fixed, half random) so that
several threads hitting the same fault do not retry in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


@dataclass
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 10.0
    # A Retry-After longer than this is not waited out: the error is raised instead.
    max_retry_after: float = 300.0
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, failures: int) -> float:
        """Delay before the next attempt after `failures` consecutive failures (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(0, failures - 1))
        jitter: float = self.rng.uniform(0, ceiling / 2)
        return ceiling / 2 + jitter


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)

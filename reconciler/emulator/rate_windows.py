"""Rate limits as fixed windows per operation and user, with the `X-RateLimit-*` headers.

Windows are aligned to multiples of `window_seconds` on the emulator's clock.
`X-RateLimit-Reset` is the window's end as Unix epoch seconds (an integer when
whole, else up to three decimals); `Retry-After` is the ceiling of the time left,
at least 1. The caller holds the emulator's lock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from reconciler.emulator.responses import EmulatorResponse, json_response
from reconciler.limits import RATE_LIMITS as API_RATE_LIMITS

# Requests per window (a minute on the live API), per user, from the document.
RATE_LIMITS: Mapping[str, int] = API_RATE_LIMITS

Headers = tuple[tuple[str, str], ...]


def format_epoch(value: float) -> str:
    rounded = round(value, 3)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.3f}".rstrip("0")


class RateWindows:
    """Each (operation, identity)'s count in the current window, and the 429s given."""

    def __init__(self, window_seconds: float, clock: Callable[[], float]) -> None:
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self.window_seconds = window_seconds
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, int]] = {}
        self.rate_limited = 0  # 429 answers given (injected ones included)

    def reset(self) -> None:
        self._buckets.clear()

    def window(self) -> tuple[float, float]:
        """(now, the current window's start)."""
        now = self._clock()
        start = math.floor(now / self.window_seconds) * self.window_seconds
        return now, start

    def limit_headers(
        self, operation: str, identity: str, *, remaining: int | None = None
    ) -> Headers:
        limit = RATE_LIMITS[operation]
        _, start = self.window()
        if remaining is None:
            window_start, count = self._buckets.get((operation, identity), (start, 0))
            remaining = limit - (count if window_start == start else 0)
        return (
            ("x-ratelimit-limit", str(limit)),
            ("x-ratelimit-remaining", str(max(0, remaining))),
            ("x-ratelimit-reset", format_epoch(start + self.window_seconds)),
        )

    def spend(self, operation: str, identity: str) -> EmulatorResponse | None:
        """Count the request in its window; a 429 answer when the budget is spent."""
        now, start = self.window()
        limit = RATE_LIMITS[operation]
        window_start, count = self._buckets.get((operation, identity), (start, 0))
        if window_start != start:
            count = 0
        if count >= limit:
            self.rate_limited += 1
            retry_after = max(1, math.ceil(start + self.window_seconds - now))
            headers = (
                *self.limit_headers(operation, identity, remaining=0),
                ("retry-after", str(retry_after)),
            )
            detail = (
                f"The user has exceeded the rate limit of {limit} requests per minute "
                "for this endpoint."
            )
            return json_response(429, {"detail": detail}, headers)
        self._buckets[(operation, identity)] = (start, count + 1)
        return None

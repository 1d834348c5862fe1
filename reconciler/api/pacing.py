"""Client-side pacing: stay inside each endpoint's rate limit instead of provoking 429s.

One `RateLimiter` per operation, shared by every thread using the client. Two
sources of truth, the server's preferred:

* **Server headers** (`X-RateLimit-Limit`, `-Remaining`, `-Reset`, Reset being
  the window's end as Unix epoch seconds). While a reported window is current,
  the limiter spends the reported remaining budget, less the requests that may
  have reached the server after the reporting one (those still in flight and
  those answered while it was out), and once it is spent waits
  until Reset. Each such estimate is a lower bound of the free budget (when this
  client is the only caller), so the best of them is kept. A 429's `Retry-After` closes the window for everyone until then.
* **A sliding log** of our own sends, seeded with the documented per-minute
  limit, used when the server has said nothing current (first requests, or a
  server that sends no headers). Its window starts at the configured length and
  shrinks to what the headers reveal (the largest `Reset - now` seen), so an
  emulator running a 2-second window is not paced as if it ran 60 seconds.

All times come from one injectable `clock` returning Unix epoch seconds, the
same scale as X-RateLimit-Reset; `sleep` is injectable too, so tests run on a
fake clock.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reconciler.api.errors import RequestCancelled

# Wait a little past the server's Reset: our send time is earlier than the
# server's receive time, and the two clocks are not exactly equal.
RESET_MARGIN_SECONDS = 0.05
# A Reset this close to the known one is the same window (rounding, clock skew);
# a quarter of the window when that is shorter.
SAME_WINDOW_TOLERANCE_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    limit: int | None
    remaining: int | None
    reset_at: float | None  # Unix epoch seconds


def parse_rate_limit_headers(headers: Mapping[str, str]) -> RateLimitHeaders | None:
    """The X-RateLimit-* triple, or None when the response carries none of them."""

    def number(name: str) -> float | None:
        raw = headers.get(name)
        if raw is None:
            return None
        try:
            value = float(raw.strip())
        except ValueError:
            return None
        return value if value >= 0 else None

    limit = number("x-ratelimit-limit")
    remaining = number("x-ratelimit-remaining")
    reset_at = number("x-ratelimit-reset")
    if limit is None and remaining is None and reset_at is None:
        return None
    return RateLimitHeaders(
        limit=int(limit) if limit is not None else None,
        remaining=int(remaining) if remaining is not None else None,
        reset_at=reset_at,
    )


class RateLimiter:
    """A thread-safe pacing gate for one operation."""

    def __init__(
        self,
        name: str,
        limit: int,
        window_seconds: float,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        on_wait: Callable[[str], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        self.name = name
        self._cancelled = cancelled
        self._limit = max(1, limit)
        self._configured_window = window_seconds
        self._learned_window: float | None = None
        self._clock = clock
        self._sleep = sleep
        self._on_wait = on_wait
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._in_flight = 0
        self._released = 0  # answers received so far (tickets are snapshots of it)
        # What the server last told us about its current window.
        self._server_remaining: int | None = None
        self._server_reset_at: float | None = None
        self._announced_until = float("-inf")
        self.waited_seconds = 0.0  # total time callers were held (summed over threads)

    @property
    def window_seconds(self) -> float:
        """The window the sliding log uses: configured, or shorter when headers showed it."""
        if self._learned_window is None:
            return self._configured_window
        return min(self._configured_window, self._learned_window)

    @property
    def limit(self) -> int:
        return self._limit

    def acquire(self) -> int:
        """Block until one request may be sent; count it as sent and in flight.

        Returns a ticket to hand back to `release`. Raises RequestCancelled once
        `cancelled()` says so: a request still waiting for its slot is not sent.
        """
        while True:
            if self._cancelled is not None and self._cancelled():
                raise RequestCancelled(self.name, detail="cancelled while waiting to be sent")
            with self._lock:
                delay = self._delay_locked()
                if delay <= 0:
                    now = self._clock()
                    self._sent.append(now)
                    self._in_flight += 1
                    if self._server_remaining is not None:
                        self._server_remaining -= 1
                    return self._released
                self.waited_seconds += delay
                # Several threads waiting for the same moment: say it once.
                wake_at = self._clock() + delay
                announce = delay >= 1.0 and wake_at > self._announced_until + 1.0
                if announce:
                    self._announced_until = wake_at
            if announce and self._on_wait is not None:
                self._on_wait(f"waiting {delay:.0f}s for the rate limit on {self.name}")
            self._sleep(delay)

    def _delay_locked(self) -> float:
        now = self._clock()
        if self._server_reset_at is not None:
            if now >= self._server_reset_at + RESET_MARGIN_SECONDS:
                # The reported window is over: its budget no longer applies.
                self._server_remaining = None
                self._server_reset_at = None
            elif self._server_remaining is not None:
                if self._server_remaining > 0:
                    return 0.0
                return self._server_reset_at + RESET_MARGIN_SECONDS - now
        window = self.window_seconds
        while self._sent and self._sent[0] <= now - window:
            self._sent.popleft()
        if len(self._sent) < self._limit:
            return 0.0
        return self._sent[0] + window - now + RESET_MARGIN_SECONDS

    def release(
        self,
        ticket: int,
        headers: RateLimitHeaders | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        """The request is answered (or failed): learn from its headers, leave in-flight."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            # Requests answered while this one was out may have reached the server
            # after it: its Remaining does not count them.
            answered_meanwhile = self._released - ticket
            self._released += 1
            now = self._clock()
            if headers is not None:
                self._observe_locked(headers, now, answered_meanwhile)
            if retry_after is not None:
                # A 429 (or 503) says when to come back: nobody sends before then.
                until = now + retry_after
                if self._server_reset_at is None or until > self._server_reset_at:
                    self._server_reset_at = until
                self._server_remaining = 0
                # The caller says this wait itself; do not announce it twice.
                self._announced_until = max(self._announced_until, until + RESET_MARGIN_SECONDS)

    def _observe_locked(
        self, headers: RateLimitHeaders, now: float, answered_meanwhile: int
    ) -> None:
        if headers.limit is not None and headers.limit > 0:
            self._limit = headers.limit
        if headers.remaining is None or headers.reset_at is None:
            return
        if headers.reset_at <= now:
            return  # stale: that window is already over
        span = headers.reset_at - now
        if self._learned_window is None or span > self._learned_window:
            self._learned_window = span
        # Requests still in flight, or answered while this one was out, may have
        # reached the server after it: count them all as not yet counted.
        estimate = headers.remaining - self._in_flight - answered_meanwhile
        known = self._server_reset_at
        tolerance = min(SAME_WINDOW_TOLERANCE_SECONDS, self.window_seconds / 4)
        if known is None or headers.reset_at > known + tolerance:
            # A newer window than the one we knew.
            self._server_reset_at = headers.reset_at
            self._server_remaining = estimate
        elif headers.reset_at >= known - tolerance:
            # Both numbers are lower bounds of the budget still free (the estimate
            # counts every in-flight request as not yet counted; `current` is an
            # older estimate less our sends since), so the larger is the better one.
            current = self._server_remaining
            self._server_remaining = estimate if current is None else max(current, estimate)
            self._server_reset_at = max(known, headers.reset_at)
        # else: an answer about an older window, arriving late: ignore it.

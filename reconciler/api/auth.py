"""The bearer token: one sign-in shared by every thread, reused until it nears expiry.

Sign-in is limited to 5 a minute per user, so the token is cached and only
renewed shortly before `expires_at` (or once after a 401). The token is a
secret: it lives in a private attribute and never appears in a repr.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

# Renew this long before expiry (or a quarter of the lifetime, if that is shorter).
REFRESH_MARGIN_SECONDS = 60.0
# When expires_at is unreadable or already past by our clock (skew), use the token
# this long and rely on the 401-then-refresh path.
FALLBACK_LIFETIME_SECONDS = 300.0


def parse_expires_at(value: object, now: float) -> float:
    """`expires_at` (ISO 8601 date-time) as Unix epoch seconds."""
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            return now + FALLBACK_LIFETIME_SECONDS
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return now + FALLBACK_LIFETIME_SECONDS


class TokenCache:
    """Holds the current token; `get` signs in (once, under a lock) when it is missing or old."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self.sign_ins = 0

    def __repr__(self) -> str:
        return f"TokenCache(signed_in={self._token is not None})"

    def get(self, sign_in: Callable[[], tuple[str, float]]) -> str:
        """A valid token; `sign_in` returns (token, expires_at epoch) and runs at most once at a time."""
        with self._lock:
            now = self._clock()
            if self._token is not None and now < self._refresh_at:
                return self._token
            token, expires_at = sign_in()
            now = self._clock()
            lifetime = expires_at - now
            if lifetime <= 0:
                lifetime = FALLBACK_LIFETIME_SECONDS
            margin = min(REFRESH_MARGIN_SECONDS, lifetime / 4)
            self._token = token
            self._refresh_at = now + lifetime - margin
            self.sign_ins += 1
            return token

    def invalidate(self, token: str) -> None:
        """Forget `token` after a 401, unless another thread already replaced it."""
        with self._lock:
            if self._token == token:
                self._token = None

    def secrets(self) -> list[str]:
        return [self._token] if self._token else []

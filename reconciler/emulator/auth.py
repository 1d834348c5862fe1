"""Sign-in with an API key, bearer tokens, and whose rate budget a request spends.

The caller holds the emulator's lock.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.emulator import models as m
from reconciler.emulator.responses import HttpError, iso

SIGN_IN = "sign-in-with-api-key"


@dataclass(frozen=True, slots=True)
class Credentials:
    """The seed's throwaway API key, its id and the user it signs in as."""

    api_key: str
    api_key_id: str
    user_id: str


@dataclass
class _Token:
    user_id: str
    expires_at: float


class Auth:
    """The tokens issued so far, checked on every call but sign-in."""

    def __init__(
        self, credentials: Credentials, clock: Callable[[], float], token_lifetime: float
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self.token_lifetime = token_lifetime
        self._tokens: dict[str, _Token] = {}

    @property
    def issued(self) -> list[str]:
        return list(self._tokens)

    def revoke(self) -> None:
        self._tokens.clear()

    def identity(self, operation: str, headers: Mapping[str, str]) -> str:
        """Whose budget a request spends: the token's user, the signing-in user, or anonymous."""
        if operation == SIGN_IN:
            return "user:" + headers.get("x-user-id", "")
        token = self._tokens.get(bearer(headers) or "")
        return "user:" + token.user_id if token else "anonymous"

    def authenticate(self, headers: Mapping[str, str]) -> str:
        """The user a bearer token stands for; 401 when it is missing, unknown or expired."""
        token = bearer(headers)
        if token is None:
            raise HttpError(401, "Invalid authorization credentials.")
        record = self._tokens.get(token)
        if record is None:
            raise HttpError(401, "Invalid authorization credentials.")
        if record.expires_at <= self._clock():
            raise HttpError(401, "The authorization token has expired.")
        return record.user_id

    def sign_in(self, headers: Mapping[str, str]) -> tuple[int, Any]:
        missing = [n for n in ("x-api-key", "x-api-key-id", "x-user-id") if n not in headers]
        if missing:
            raise m.RequestInvalid(
                [
                    {
                        "type": "missing",
                        "loc": ["header", name],
                        "msg": "Field required",
                        "input": None,
                    }
                    for name in missing
                ]
            )
        known = self._credentials
        accepted = (
            secrets.compare_digest(headers["x-api-key"], known.api_key)
            and headers["x-api-key-id"] == known.api_key_id
            and headers["x-user-id"] == known.user_id
        )
        if not accepted:
            raise HttpError(
                401, "API key not found, is incorrect, or the requested user is not found."
            )
        expires_at = self._clock() + self.token_lifetime
        token = "emu." + secrets.token_urlsafe(24)
        self._tokens[token] = _Token(known.user_id, expires_at)
        return 200, {"id_token": token, "expires_at": iso(expires_at)}


def bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None

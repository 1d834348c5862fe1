"""Amigo API client: auth, pagination, pacing, retries, errors.

`AmigoClient` and `ApiConfig` are imported lazily: importing the error types
(as the CLI's error handler does) must not pay for httpx at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.api.errors import (
    ApiError,
    AuthenticationError,
    BadRequest,
    ConfigError,
    Conflict,
    NotFound,
    OutcomeUnknown,
    PermissionDenied,
    RateLimited,
    RequestCancelled,
    RequestInvalid,
    ServerError,
    TransportError,
)

if TYPE_CHECKING:
    from reconciler.api.client import AmigoClient
    from reconciler.api.config import ApiConfig

__all__ = [
    "AmigoClient",
    "ApiConfig",
    "ApiError",
    "AuthenticationError",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "NotFound",
    "OutcomeUnknown",
    "PermissionDenied",
    "RateLimited",
    "RequestCancelled",
    "RequestInvalid",
    "ServerError",
    "TransportError",
]


def __getattr__(name: str) -> Any:
    if name == "AmigoClient":
        from reconciler.api.client import AmigoClient

        return AmigoClient
    if name == "ApiConfig":
        from reconciler.api.config import ApiConfig

        return ApiConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

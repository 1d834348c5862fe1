"""Amigo API client: auth, pagination, pacing, retries, errors."""

from reconciler.api.client import AmigoClient, ApiConfig
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
    RequestInvalid,
    ServerError,
    TransportError,
)

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
    "RequestInvalid",
    "ServerError",
    "TransportError",
]

"""API settings for tests that talk to loopback servers with the canary key."""

from __future__ import annotations

from typing import Any

from _reliability import CANARY_API_KEY

from reconciler.api.config import ApiConfig


def canary_config(base_url: str, **extra: Any) -> ApiConfig:
    """Settings signing in with the canary key (the secrets guard watches for it)."""
    return ApiConfig(
        organization="org",
        api_key=CANARY_API_KEY,
        api_key_id="kid",
        user_id="uid",
        base_url=base_url,
        **extra,
    )

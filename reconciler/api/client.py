"""The Amigo API client (skeleton: the interface the rest of the reconciler codes against).

TO BE IMPLEMENTED (issue 3). Signatures here are the contract; keep them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

DEFAULT_BASE_URL = "https://api.amigo.ai"


@dataclass(frozen=True)
class ApiConfig:
    """Connection settings. `api_key` is a secret: never in repr, logs or errors."""

    organization: str
    api_key: str
    api_key_id: str
    user_id: str
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 30.0

    @classmethod
    def from_env(
        cls, overrides: Mapping[str, str | None], env: Mapping[str, str] | None = None
    ) -> ApiConfig:
        """Flags (overrides, keyed by AMIGO_* names) else environment; ConfigError listing every missing name."""
        raise NotImplementedError


class AmigoClient:
    """Thread-safe client; one sign-in per process, reused until near expiry.

    `transport` lets tests and the in-process emulator plug in (httpx.MockTransport).
    `sleep` / `clock` are injectable so pacing and backoff are testable.
    """

    def __init__(
        self,
        config: ApiConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        on_wait: Callable[[str], None] | None = None,  # told "waiting 12s for rate limit on ..."
    ) -> None:
        raise NotImplementedError

    # Requests sent, by operation id ("get-services", "create-service", ...).
    @property
    def request_counts(self) -> Mapping[str, int]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # --- reads -----------------------------------------------------------------
    def list_services(
        self,
        *,
        ids: Sequence[str] = (),
        is_active: bool | None = None,
        tags: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """All pages (limit=20) of `ServiceInstance` dicts."""
        raise NotImplementedError

    def list_agents(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def list_state_machines(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def list_unit_tests(self, service_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Unit tests (not deleted) for these services; one call per 500 (repeated service_id)."""
        raise NotImplementedError

    # --- writes ----------------------------------------------------------------
    def create_service(self, body: Mapping[str, Any], *, service: str) -> str:
        """POST create; returns the new id. Raises OutcomeUnknown if the answer was lost."""
        raise NotImplementedError

    def update_service(self, service_id: str, body: Mapping[str, Any], *, service: str) -> None:
        raise NotImplementedError

    def upsert_version_set(
        self, service_id: str, name: str, version_set: Mapping[str, Any], *, service: str
    ) -> None:
        raise NotImplementedError

    def delete_version_set(self, service_id: str, name: str, *, service: str) -> None:
        raise NotImplementedError

"""Connection settings for the Amigo API, read from flags else the environment.

Kept free of httpx so the CLI can build and check settings without paying for
the HTTP stack at start-up. The API key is a secret: it never appears in a
repr, a log line or an error message.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_BASE_URL = "https://api.amigo.ai"
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_RATE_WINDOW_SECONDS = 60.0
# Added to 2 x timeout for the default attempt deadline: room for connect + TLS.
ATTEMPT_DEADLINE_MARGIN_SECONDS = 5.0

ENV_API_KEY = "AMIGO_API_KEY"
ENV_API_KEY_ID = "AMIGO_API_KEY_ID"
ENV_USER_ID = "AMIGO_USER_ID"
ENV_ORGANIZATION_ID = "AMIGO_ORGANIZATION_ID"
ENV_BASE_URL = "AMIGO_BASE_URL"
# The seed's `x-mongo-cluster-name` header, needed only while an organization is not yet in
# the infra config database: sent on every call when set, never otherwise.
ENV_MONGO_CLUSTER_NAME = "AMIGO_MONGO_CLUSTER_NAME"
MONGO_CLUSTER_HEADER = "x-mongo-cluster-name"
_HEADER_VALUE_RE = re.compile(r"^[!-~]{1,200}$")  # printable ASCII, no space: no header injection

# What signs in. Only the key is a secret (it authenticates; output never shows it, see
# reconciler/redaction.py). The key id and the user id identify: the API answers 401
# without the key, so they may be shown. A manifest may use none of the three
# (`${AMIGO_API_KEY_ID}` has no business in a service definition either); the
# organization id and base URL are settings, not credentials, and may be used.
CREDENTIAL_VARIABLES: tuple[str, ...] = (ENV_API_KEY, ENV_API_KEY_ID, ENV_USER_ID)
SECRET_VARIABLES: tuple[str, ...] = (ENV_API_KEY,)

# How a user supplies each setting: said in the "missing settings" message.
HOW_TO_SET: Mapping[str, str] = {
    ENV_API_KEY: f"export {ENV_API_KEY}=... (environment only, never a flag, "
    "so the key stays out of shell history and process lists)",
    ENV_API_KEY_ID: f"export {ENV_API_KEY_ID}=... or pass --api-key-id",
    ENV_USER_ID: f"export {ENV_USER_ID}=... or pass --user-id",
    ENV_ORGANIZATION_ID: f"export {ENV_ORGANIZATION_ID}=... or pass --organization",
}

# It becomes one path segment: no "/", "?", "#" or whitespace.
_ORGANIZATION_RE = re.compile(r"^[^/?#\s]+$")


def _is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shown(url: str) -> str:
    """The URL as an error message may show it: a user:password@ or a query could hold a secret."""
    text = url.strip()
    cut = re.search(r"[?#]", text)
    if cut:
        text = text[: cut.start()] + "?..."
    scheme, sep, rest = text.partition("://")
    netloc, slash, path = rest.partition("/")
    if sep and "@" in netloc:
        text = f"{scheme}{sep}***@{netloc.rpartition('@')[2]}{slash}{path}"
    return text if len(text) <= 200 else text[:200] + "..."


def check_base_url(url: str, source: str = f"{ENV_BASE_URL} / --base-url") -> str:
    """The base URL without a trailing slash, or ConfigError saying what would be valid.

    Plain http is refused unless the host is loopback: a bearer token and an API
    key must never cross a network in clear text. `source` names where the URL came
    from (the variable and flag, or reconciler.yaml's key) in the messages.
    """
    from reconciler.api.errors import ConfigError

    shown = _shown(url)
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ConfigError(
            f"{source} {shown!r} is not a valid URL ({exc}); expected e.g. https://api.amigo.ai"
        ) from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(
            f"{source} {shown!r} is not an http(s) URL with a host; "
            "expected e.g. https://api.amigo.ai"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"{source} must not carry credentials (user:password@); "
            f"use {ENV_API_KEY}, {ENV_API_KEY_ID} and {ENV_USER_ID}"
        )
    if parts.query or parts.fragment:
        raise ConfigError(
            f"{source} {shown!r} must not have a query or fragment; "
            "expected e.g. https://api.amigo.ai"
        )
    if parts.scheme == "http" and not _is_loopback_host(host):
        raise ConfigError(
            f"{source} {shown!r} uses plain http to a non-loopback host; "
            "use https (plain http is allowed only for localhost, 127.0.0.0/8 and ::1)"
        )
    return url.strip().rstrip("/")


@dataclass(frozen=True)
class ApiConfig:
    """Connection settings. `api_key` is a secret: never in repr, logs or errors."""

    organization: str
    api_key: str = field(repr=False)
    api_key_id: str
    user_id: str
    base_url: str = DEFAULT_BASE_URL
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    # The rate-limit window the documented per-minute limits apply to. The client
    # also learns the real window from X-RateLimit-Reset; this is the starting point.
    rate_window_seconds: float = DEFAULT_RATE_WINDOW_SECONDS
    # Wall-clock bound on one attempt (connect, send, every byte of the answer), however
    # the server paces its bytes. None: 2 x timeout + 5 s (65 s with the default timeout).
    attempt_deadline: float | None = None
    # Sent as the x-mongo-cluster-name header on every call when set (None: never sent).
    mongo_cluster_name: str | None = None

    @property
    def attempt_deadline_seconds(self) -> float:
        """The deadline each attempt gets: `attempt_deadline`, else 2 x timeout + 5 s."""
        if self.attempt_deadline is not None:
            return self.attempt_deadline
        return 2 * self.timeout + ATTEMPT_DEADLINE_MARGIN_SECONDS

    def __post_init__(self) -> None:
        from reconciler.api.errors import ConfigError

        if not _ORGANIZATION_RE.match(self.organization):
            raise ConfigError(
                f"{ENV_ORGANIZATION_ID} / --organization {self.organization!r} is not an "
                "organization id (one non-empty word without '/', '?', '#' or spaces)"
            )
        if not (self.timeout > 0):
            raise ConfigError(f"timeout must be a positive number of seconds, not {self.timeout}")
        if self.attempt_deadline is not None and not (0 < self.attempt_deadline < float("inf")):
            raise ConfigError(
                "attempt_deadline must be a positive, finite number of seconds, "
                f"not {self.attempt_deadline}"
            )
        if not (self.rate_window_seconds > 0):
            raise ConfigError(
                f"rate_window_seconds must be positive, not {self.rate_window_seconds}"
            )
        object.__setattr__(self, "base_url", check_base_url(self.base_url))
        if self.mongo_cluster_name is not None and not _HEADER_VALUE_RE.match(
            self.mongo_cluster_name
        ):
            raise ConfigError(
                f"{ENV_MONGO_CLUSTER_NAME} / --mongo-cluster must be a cluster name "
                "(1-200 printable ASCII characters, no spaces)"
            )

    @classmethod
    def from_env(
        cls, overrides: Mapping[str, str | None], env: Mapping[str, str] | None = None
    ) -> ApiConfig:
        """Flags (overrides, keyed by AMIGO_* names) else environment; ConfigError listing every missing name."""
        from reconciler.api.errors import ConfigError

        source: Mapping[str, str] = os.environ if env is None else env

        def setting(name: str) -> str | None:
            value = overrides.get(name)
            if value is None or not value.strip():
                value = source.get(name)
            if value is None or not value.strip():
                return None
            return value.strip()

        required = [ENV_API_KEY, ENV_API_KEY_ID, ENV_USER_ID, ENV_ORGANIZATION_ID]
        values = {name: setting(name) for name in required}
        missing = [name for name in required if values[name] is None]
        if missing:
            lines = [f"  {name}: {HOW_TO_SET[name]}" for name in missing]
            raise ConfigError(
                "missing Amigo API settings ("
                + ", ".join(missing)
                + "):\n"
                + "\n".join(lines)
                + "\n  (or pass --emulator SEED_FILE to run against the local emulator)"
            )
        return cls(
            organization=values[ENV_ORGANIZATION_ID] or "",
            api_key=values[ENV_API_KEY] or "",
            api_key_id=values[ENV_API_KEY_ID] or "",
            user_id=values[ENV_USER_ID] or "",
            base_url=setting(ENV_BASE_URL) or DEFAULT_BASE_URL,
            mongo_cluster_name=setting(ENV_MONGO_CLUSTER_NAME),
        )

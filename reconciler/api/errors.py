"""API failures, one type per class of failure.

Every error carries the operation, the service it concerned, the HTTP status and
the API's own `detail`, so a user reads one line that says what failed and why.
Credentials never appear in these messages.
"""

from __future__ import annotations


class ApiError(Exception):
    """An API call failed. `status` is None when no HTTP answer came (transport)."""

    hint: str = ""
    outcome: str = " failed"  # how the message says what became of the call

    def __init__(
        self,
        operation: str,
        *,
        status: int | None = None,
        detail: str | None = None,
        service: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.operation = operation
        self.status = status
        self.detail = detail
        self.service = service
        if hint is not None:
            self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = [self.operation]
        if self.service:
            parts.append(f"for service {self.service!r}")
        head = " ".join(parts) + self.outcome
        if self.status is not None:
            head += f": HTTP {self.status}"
        if self.detail:
            head += f": {self.detail}"
        if self.hint:
            head += f" ({self.hint})"
        return head


class ConfigError(Exception):
    """Settings missing or invalid (flags / AMIGO_* environment variables)."""


class AuthenticationError(ApiError):
    """401: the API key, key id or user id was not accepted."""


class PermissionDenied(ApiError):
    """403: the user lacks a permission; `hint` names the one the docs list."""


class NotFound(ApiError):
    """404: organization, service, agent, state machine or version set does not exist."""


class Conflict(ApiError):
    """409: an active service with that name already exists."""


class BadRequest(ApiError):
    """400: the API refused the request on a business rule (unit-test block, versions, edge...)."""


class RequestInvalid(ApiError):
    """422: the request broke the API's schema: a bug in the reconciler or an unvalidated input."""


class RateLimited(ApiError):
    """429 that persisted through the retry budget."""


class ServerError(ApiError):
    """5xx that persisted through the retry budget."""


class TransportError(ApiError):
    """No answer: connection refused or dropped, timeout. For a GET/PUT/DELETE it was retried."""


class MalformedAnswer(ApiError):
    """A success answer lacks a field the reconciler relies on, or has it in the wrong type."""

    hint = (
        "the API, or a proxy in front of it, answered outside its documented shape; "
        "nothing was done on the strength of this answer: run again, and report it to "
        "the API's operators if it persists"
    )


class OutcomeUnknown(ApiError):
    """A non-idempotent POST may or may not have been applied (answer lost).

    The caller must look before re-sending (e.g. find the service by name and
    ownership tag after a create).
    """

    outcome = ": outcome unknown"  # never "failed": the write may have taken effect


class RequestCancelled(ApiError):
    """The apply was cancelled (Ctrl-C) while this call waited to send: nothing was sent."""


class DeadlineExceeded(RequestCancelled):
    """A wait (rate limit, retry) would run past the caller's overall deadline
    (`AmigoClient.deadline`, e.g. `verify --timeout`): the call was not sent again."""

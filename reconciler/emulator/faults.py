"""Injected faults: what the next calls of an operation (for one service, if named) suffer.

The caller holds the emulator's lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from reconciler.emulator.rate_windows import RATE_LIMITS
from reconciler.emulator.responses import EmulatorResponse, json_response


class Fault(StrEnum):
    """What an injected fault does to a matching request."""

    STATUS_429 = "status_429"  # answer 429 with Retry-After, without acting
    STATUS_500 = "status_500"  # answer 500 without acting
    STATUS_502 = "status_502"  # answer 502 (a gateway's HTML page) without acting
    STATUS_503 = "status_503"  # answer 503 without Retry-After, without acting
    STATUS_503_RETRY_AFTER = "status_503_retry_after"  # 503 with Retry-After, without acting
    DROP_BEFORE = "drop_before"  # close the connection without acting or answering
    DROP_AFTER = "drop_after"  # act, then close the connection without answering
    SLOW = "slow"  # act, then answer only after `slow_seconds`
    # The server is still working after the client gave up: nothing happens for
    # `slow_seconds`, then the request is acted on (even if the client has
    # disconnected meanwhile) and answered. A look-up made in between finds nothing.
    COMMIT_LATE = "commit_late"


@dataclass
class _FaultRule:
    operation_id: str
    fault: Fault
    remaining: int
    service_name: str | None


class Faults:
    """The faults still to happen, taken in the order they were injected."""

    def __init__(self) -> None:
        self._rules: list[_FaultRule] = []

    def add(self, operation_id: str, fault: Fault, times: int, service_name: str | None) -> None:
        self._rules.append(_FaultRule(operation_id, Fault(fault), times, service_name))

    def clear(self) -> None:
        self._rules.clear()

    @property
    def pending(self) -> int:
        return sum(rule.remaining for rule in self._rules)

    def take(self, operation: str, service_name: Callable[[], str | None]) -> Fault | None:
        """The fault this call suffers, if any (`service_name` is asked only when it matters)."""
        for rule in self._rules:
            if rule.operation_id != operation or rule.remaining <= 0:
                continue
            if rule.service_name is not None and rule.service_name != service_name():
                continue
            rule.remaining -= 1
            if rule.remaining == 0:
                self._rules.remove(rule)
            return rule.fault
        return None


def status_fault_response(
    operation: str, fault: Fault, retry_after: int, limit_headers: tuple[tuple[str, str], ...]
) -> EmulatorResponse:
    """The answer of a `status_*` fault, given without acting on the request."""
    if fault is Fault.STATUS_429:
        retry = (("retry-after", str(retry_after)),)
        detail = f"rate limit of {RATE_LIMITS[operation]} requests per minute exceeded"
        return json_response(429, {"detail": detail}, (*limit_headers, *retry))
    if fault is Fault.STATUS_500:
        return json_response(500, {"detail": "Internal Server Error"})
    if fault is Fault.STATUS_502:
        page = (
            b"<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"
        )
        return EmulatorResponse(502, (("content-type", "text/html"),), page)
    maintenance = {"detail": "The service is going through temporary maintenance."}
    if fault is Fault.STATUS_503_RETRY_AFTER:
        retry = (("retry-after", str(retry_after)),)
        return json_response(503, maintenance, retry)
    return json_response(503, maintenance)

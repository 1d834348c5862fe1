"""What the emulator answers: the response type, JSON answers, refusals and their errors."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

INTERPRETATION_HEADER = "x-emulator-interpretation"


@dataclass(frozen=True, slots=True)
class EmulatorResponse:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    drop: bool = False  # close the connection instead of answering
    delay: float = 0.0  # answer only after this many seconds
    interpretation: str | None = None  # a refusal resting only on this reading (see docs)
    # Run after `delay` to act and produce the real answer (Fault.COMMIT_LATE); the
    # server runs it whether or not the client is still connected.
    deferred: Callable[[], EmulatorResponse] | None = field(default=None, repr=False)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True, slots=True)
class Refusal:
    """One 4xx answer of an operation's own checks (422 / 404 / 400 / 409), for a rehearsal.

    `interpretation` is the id of the emulator's reading of an ambiguous rule when
    the refusal rests only on it (docs/emulator.md), else None: the documented
    rules refuse the request.
    """

    operation_id: str
    status: int
    detail: Any
    interpretation: str | None
    service_id: str | None


class HttpError(Exception):
    """An operation's rules refuse the request with this status and detail."""

    def __init__(self, status: int, detail: Any, interpretation: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.interpretation = interpretation
        super().__init__(f"{status}: {detail}")


_JSON = (("content-type", "application/json"),)


def json_response(
    status: int,
    payload: Any,
    headers: Iterable[tuple[str, str]] = (),
    interpretation: str | None = None,
) -> EmulatorResponse:
    body = b"" if status == 204 else json.dumps(payload, separators=(",", ":")).encode()
    base = () if status == 204 else _JSON
    extra = ((INTERPRETATION_HEADER, interpretation),) if interpretation else ()
    return EmulatorResponse(status, (*base, *headers, *extra), body, interpretation=interpretation)


def iso(epoch: float) -> str:
    """A timestamp as the API writes it: ISO 8601, milliseconds, `Z`."""
    moment = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

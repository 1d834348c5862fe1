"""Turn an HTTP answer the client will not retry into the matching `ApiError`.

The API answers FastAPI-style `{"detail": ...}`: a string, or for 422 a list of
validation errors (`loc`, `msg`). Both become one readable line. The offending
`input` values of validation errors are never echoed: they could hold a secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from reconciler.api.errors import (
    ApiError,
    AuthenticationError,
    BadRequest,
    Conflict,
    NotFound,
    PermissionDenied,
    RateLimited,
    RequestInvalid,
    ServerError,
)
from reconciler.api.operations import OPERATIONS, SIGN_IN

MAX_DETAIL_CHARS = 500

_ERROR_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: RequestInvalid,
    429: RateLimited,
}


def _render_validation_error(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    loc = item.get("loc")
    where = ".".join(str(part) for part in loc) if isinstance(loc, list) else ""
    msg = str(item.get("msg", item.get("type", "invalid")))
    return f"{where}: {msg}" if where else msg


def render_detail(payload: Any, text: str = "") -> str | None:
    """The API's `detail` as one line (lists of validation errors joined by '; ')."""
    detail: Any = payload.get("detail") if isinstance(payload, dict) else None
    if detail is None:
        if isinstance(payload, dict) and isinstance(payload.get("message"), str):
            detail = payload["message"]
        elif text.strip() and not text.lstrip().startswith(("<", "{", "[")):
            detail = text.strip()
    if detail is None:
        return None
    if isinstance(detail, str):
        rendered = detail
    elif isinstance(detail, list):
        rendered = "; ".join(_render_validation_error(item) for item in detail)
    else:
        rendered = json.dumps(detail, sort_keys=True, default=str)
    rendered = " ".join(rendered.split())
    if len(rendered) > MAX_DETAIL_CHARS:
        rendered = rendered[: MAX_DETAIL_CHARS - 3] + "..."
    return rendered


def redact(text: str | None, secrets: Iterable[str]) -> str | None:
    """Replace every secret found in `text` (defence in depth: an echoing server)."""
    if text is None:
        return None
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, "***")
    return text


# Request-body fields and the manifest field each comes from (update-service and
# create-service take a service's fields; the version-set PUT wraps one set).
_MANIFEST_FIELD = {
    "name": "metadata.name",
    "release_version_set": "spec.version_sets.release",
    "version_set": "spec.version_sets.<set>",
}


def _manifest_field(loc: Any) -> str | None:
    """The manifest field a request-body error location points at, or None (not the body)."""
    if not isinstance(loc, list) or len(loc) < 2 or loc[0] != "body":
        return None
    head, *rest = (str(part) for part in loc[1:])
    base = _MANIFEST_FIELD.get(head, f"spec.{head}")
    return ".".join([base, *rest])


def user_fields(payload: Any) -> tuple[list[str], bool]:
    """(manifest fields a 422's validation errors point at, whether other errors remain).

    A value the API refused in the request body came from the manifest; a missing
    body field, or an error in the path or query, is the reconciler's own doing.
    """
    detail = payload.get("detail") if isinstance(payload, dict) else None
    if not isinstance(detail, list):
        return [], True
    fields: list[str] = []
    others = False
    for item in detail:
        where = _manifest_field(item.get("loc")) if isinstance(item, dict) else None
        if where is None or item.get("type") == "missing":
            others = True
        else:
            fields.append(where)
    return list(dict.fromkeys(fields)), others


def _hint(operation_id: str, status: int, payload: Any = None) -> str | None:
    op = OPERATIONS.get(operation_id)
    if status == 403 and op is not None:
        return f"the user needs the permission {op.permission}"
    if status == 401:
        if operation_id == SIGN_IN:
            return "check AMIGO_API_KEY, AMIGO_API_KEY_ID and AMIGO_USER_ID"
        return "the token was refused even after signing in again"
    if status == 422:
        fields, others = user_fields(payload)
        bug = "the request broke the API's schema; this is a reconciler bug, please report it"
        if not fields:
            return bug
        mine = (
            "the API refused the value the manifest gives "
            + ", ".join(fields)
            + ": correct it there (the API's message says what it accepts)"
        )
        return mine + ("; the other errors: " + bug if others else "")
    if status == 404 and operation_id == SIGN_IN:
        return (
            "check the organization id: --organization, AMIGO_ORGANIZATION_ID, or with "
            "--env the environment's `organization` in reconciler.yaml"
        )
    return None


def error_for_status(
    operation_id: str,
    status: int,
    detail: str | None,
    *,
    service: str | None,
    error_type: type[ApiError] | None = None,
    payload: Any = None,
) -> ApiError:
    """The exception for a final (not retried) HTTP error answer (`payload`: its JSON)."""
    cls = error_type or _ERROR_BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return cls(
        operation_id,
        status=status,
        detail=detail,
        service=service,
        hint=_hint(operation_id, status, payload),
    )

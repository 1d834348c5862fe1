"""Which operation a method and path name, as the API's FastAPI router would route them."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.emulator.responses import EmulatorResponse, json_response
from reconciler.emulator.simulation import SIMULATION_ROUTES

ROUTES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("POST", ("v1", "{organization}", "user", "signin_with_api_key"), "sign-in-with-api-key"),
    ("GET", ("v1", "{organization}", "organization", "agent"), "get-agents"),
    (
        "GET",
        ("v1", "{organization}", "organization", "service_hierarchical_state_machine"),
        "get-service-hierarchical-state-machines",
    ),
    ("GET", ("v1", "{organization}", "simulation", "unit_test", ""), "get-simulation-unit-tests"),
    *SIMULATION_ROUTES,
    ("GET", ("v1", "{organization}", "service", ""), "get-services"),
    ("POST", ("v1", "{organization}", "service", ""), "create-service"),
    ("POST", ("v1", "{organization}", "service", "{service_id}", ""), "update-service"),
    (
        "PUT",
        (
            "v1",
            "{organization}",
            "service",
            "{service_id}",
            "version_sets",
            "{version_set_name}",
            "",
        ),
        "upsert-service-version-set",
    ),
    (
        "DELETE",
        (
            "v1",
            "{organization}",
            "service",
            "{service_id}",
            "version_sets",
            "{version_set_name}",
            "",
        ),
        "delete-service-version-set",
    ),
)

OPERATION_IDS: tuple[str, ...] = tuple(route[2] for route in ROUTES)


def match_route(method: str, segments: Sequence[str]) -> tuple[str | None, dict[str, str], bool]:
    """(operation id, path params, path matched for some other method)."""
    path_matched = False
    for route_method, template, operation in ROUTES:
        if len(template) != len(segments):
            continue
        params: dict[str, str] = {}
        for part, segment in zip(template, segments, strict=True):
            if part.startswith("{"):
                if not segment:
                    break
                params[part[1:-1]] = segment
            elif part != segment:
                break
        else:
            if route_method == method:
                return operation, params, True
            path_matched = True
    return None, {}, path_matched


def unrouted(method: str, path: str, segments: list[str], path_known: bool) -> EmulatorResponse:
    """The answer to a request no operation takes: 405, a 307 to the other spelling, or 404."""
    if path_known:
        return json_response(405, {"detail": "Method Not Allowed"})
    # FastAPI (redirect_slashes) redirects to the other spelling when that one exists.
    other = segments[:-1] if segments and segments[-1] == "" else [*segments, ""]
    _, _, other_known = match_route(method, other)
    if other_known:
        location = path[:-1] if path.endswith("/") else path + "/"
        return EmulatorResponse(307, (("location", location),))
    return json_response(404, {"detail": "Not Found"})

"""The API operations the reconciler uses, as the OpenAPI document describes them.

One table holds, per operation id: method, documented rate limit (requests a
minute), the permission a 403 is about, and whether a lost answer is safe to
re-send. Everything else (pacing, retries, error hints, counts) reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.limits import RATE_LIMITS

SIGN_IN = "sign-in-with-api-key"
GET_SERVICES = "get-services"
CREATE_SERVICE = "create-service"
UPDATE_SERVICE = "update-service"
UPSERT_VERSION_SET = "upsert-service-version-set"
DELETE_VERSION_SET = "delete-service-version-set"
GET_AGENTS = "get-agents"
GET_STATE_MACHINES = "get-service-hierarchical-state-machines"
GET_UNIT_TESTS = "get-simulation-unit-tests"
GET_UNIT_TEST_SETS = "get-simulation-unit-test-sets"
GET_UNIT_TEST_SET_RUNS = "get-simulation-unit-test-set-runs"
CREATE_UNIT_TEST_SET_RUN = "create-simulation-unit-test-set-run"


@dataclass(frozen=True, slots=True)
class Operation:
    id: str
    method: str
    limit_per_window: int  # the documented "N requests per minute"
    permission: str  # what the docs list under "Permissions" (named in 403 messages)
    # True when re-sending after a lost answer cannot do harm (GET, PUT, DELETE).
    idempotent: bool


OPERATIONS: dict[str, Operation] = {
    op.id: op
    for op in (
        Operation(
            SIGN_IN, "POST", RATE_LIMITS[SIGN_IN], "a valid API key for this user", idempotent=True
        ),
        Operation(
            GET_SERVICES, "GET", RATE_LIMITS[GET_SERVICES], "Service:GetService", idempotent=True
        ),
        Operation(
            CREATE_SERVICE,
            "POST",
            RATE_LIMITS[CREATE_SERVICE],
            "Service:CreateService (and Service:CreateVersionSet for its edge and release "
            "version sets)",
            idempotent=False,
        ),
        Operation(
            UPDATE_SERVICE,
            "POST",
            RATE_LIMITS[UPDATE_SERVICE],
            "Service:UpdateService",
            idempotent=False,
        ),
        Operation(
            UPSERT_VERSION_SET,
            "PUT",
            RATE_LIMITS[UPSERT_VERSION_SET],
            "Service:CreateVersionSet (new version set) or Service:UpdateVersionSet (existing one)",
            idempotent=True,
        ),
        Operation(
            DELETE_VERSION_SET,
            "DELETE",
            RATE_LIMITS[DELETE_VERSION_SET],
            "Service:DeleteVersionSet",
            idempotent=True,
        ),
        Operation(
            GET_AGENTS, "GET", RATE_LIMITS[GET_AGENTS], "Organization:GetAgent", idempotent=True
        ),
        Operation(
            GET_STATE_MACHINES,
            "GET",
            RATE_LIMITS[GET_STATE_MACHINES],
            "Organization:GetServiceHierarchicalStateMachine",
            idempotent=True,
        ),
        Operation(
            GET_UNIT_TESTS,
            "GET",
            RATE_LIMITS[GET_UNIT_TESTS],
            "Simulation:GetSimulationUnitTest",
            idempotent=True,
        ),
        Operation(
            GET_UNIT_TEST_SETS,
            "GET",
            RATE_LIMITS[GET_UNIT_TEST_SETS],
            "Simulation:GetSimulationUnitTestSet",
            idempotent=True,
        ),
        Operation(
            GET_UNIT_TEST_SET_RUNS,
            "GET",
            RATE_LIMITS[GET_UNIT_TEST_SET_RUNS],
            "Simulation:GetSimulationUnitTestSetRun",
            idempotent=True,
        ),
        Operation(
            CREATE_UNIT_TEST_SET_RUN,
            "POST",
            RATE_LIMITS[CREATE_UNIT_TEST_SET_RUN],
            "Simulation:CreateSimulationUnitTestSetRun",
            idempotent=False,
        ),
    )
}

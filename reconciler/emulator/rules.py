"""The operations' own rules: what each documented endpoint checks, changes and answers.

Requests reaching here are routed, authenticated, within their rate limit and
free of refused parameters (core.py); these handlers parse the body and query
(models.py: the API's 422s), then apply the documented business rules
(404 / 400 / 409) to the organization's state (state.py). The caller holds the
emulator's lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from reconciler.emulator import interpretations as interp
from reconciler.emulator import models as m
from reconciler.emulator.responses import HttpError
from reconciler.emulator.seed import EDGE, RELEASE, ServiceRecord, UnitTestRecord, VersionedRecord
from reconciler.emulator.simulation import HttpProblem, Simulations
from reconciler.emulator.state import OrgState, edge, service_instance, versioned_instance

Handler = Callable[[Mapping[str, str], Sequence[tuple[str, str]], bytes, str], tuple[int, Any]]

_LAX_REFUSED_TYPES = frozenset({"string_type"})


def lax_only(detail: Sequence[Mapping[str, Any]]) -> bool:
    """Every problem is a number / boolean sent for a string field of the body.

    pydantic v2 (lax) refuses those; a laxer API (pydantic v1 coerced them) would
    not, so such a refusal rests on the emulator's `lax-scalars` reading.
    """
    return bool(detail) and all(
        item.get("type") in _LAX_REFUSED_TYPES
        and list(item.get("loc", ()))[:1] == ["body"]
        and isinstance(item.get("input"), int | float | bool)
        for item in detail
    )


def paginate(items: list[Any], offset: int, limit: int) -> tuple[list[Any], bool, int | None]:
    if offset < 0:
        raise m.query_error(
            "continuation_token",
            "continuation_token must not be negative",
            offset,
            interpretation=interp.CONTINUATION_OFFSET,
        )
    page = items[offset : offset + limit]
    has_more = offset + limit < len(items)
    return page, has_more, (offset + limit if has_more else None)


def version_problem(
    version_set: m.VersionSetIn, agent: VersionedRecord, sm: VersionedRecord
) -> str | None:
    """Why a version set's numbers do not exist for its agent / state machine, or None."""
    for number, owner, what in (
        (version_set.agent_version_number, agent, "agent"),
        (version_set.service_hierarchical_state_machine_version_number, sm, "state machine"),
    ):
        if number is None:
            continue
        if owner.latest_version is None or not 1 <= number <= owner.latest_version:
            return (
                f"Version {number} does not belong to the {what} {owner.id} "
                f"(latest version: {owner.latest_version})."
            )
    return None


class Rules:
    """The documented operations over one organization's state."""

    def __init__(self, state: OrgState, simulations: Simulations) -> None:
        self.state = state
        self.simulations = simulations
        sims = simulations
        self.handlers: Mapping[str, Handler] = {
            "get-services": self.get_services,
            "create-service": self.create_service,
            "update-service": self.update_service,
            "upsert-service-version-set": self.upsert_version_set,
            "delete-service-version-set": self.delete_version_set,
            "get-agents": self.get_agents,
            "get-service-hierarchical-state-machines": self.get_state_machines,
            "get-simulation-unit-tests": self.get_unit_tests,
            "get-simulation-unit-test-sets": lambda p, q, b, u: self.simulate(
                lambda: sims.get_sets(q)
            ),
            "get-simulation-unit-test-set-runs": lambda p, q, b, u: self.simulate(
                lambda: sims.get_runs(q)
            ),
            "create-simulation-unit-test-set-run": lambda p, q, b, u: self.simulate(
                lambda: sims.create_run(b, u)
            ),
        }

    def resolve(
        self, agent_id: str, sm_id: str, status: int
    ) -> tuple[VersionedRecord, VersionedRecord]:
        agent = self.state.agents.get(agent_id)
        if agent is None:
            raise HttpError(status, f"Agent {agent_id} not found.")
        sm = self.state.state_machines.get(sm_id)
        if sm is None:
            raise HttpError(status, f"Service hierarchical state machine {sm_id} not found.")
        return agent, sm

    def service_or_404(self, params: Mapping[str, str]) -> ServiceRecord:
        service_id = m.parse_object_id_path("service_id", params["service_id"])
        service = self.state.services.get(service_id)
        if service is None:
            raise HttpError(404, f"Service {service_id} not found.")
        return service

    def check_llms(self, service: ServiceRecord) -> None:
        """Activation with a deprecated LLM preferred by any version set is a 400."""
        used = sorted(
            (set_name, key, cfg["llm_name"])
            for set_name, version_set in service.version_sets.items()
            for key, cfg in version_set.get("llm_model_preferences", {}).items()
            if cfg.get("llm_name") in self.state.deprecated_llms
        )
        if not used:
            return
        in_release = [u for u in used if u[0] == RELEASE]
        set_name, key, llm = (in_release or used)[0]
        raise HttpError(
            400,
            f"Service {service.id} cannot be activated: version set {set_name!r} uses the "
            f"deprecated LLM {llm} (for {key!r}).",
            None if in_release else interp.DEPRECATED_LLM_ANY_SET,
        )

    def unit_test_instance(self, t: UnitTestRecord) -> dict[str, Any]:
        return {
            "id": t.id,
            "org_id": self.state.organization,
            "created_at": t.created_at,
            "updated_at": t.updated_at,
            "name": t.name,
            "description": t.description,
            "service_id": t.service_id,
            "service_version_set_name": t.version_set,
            "persona_id": t.persona_id,
            "scenario_id": t.scenario_id,
            "max_interactions": 10,
            "success_criterions": self.simulations.success_criteria(t),
            "is_deleted": t.is_deleted,
            "tags": [{"key": k, "value": v} for k, v in t.tags.items()],
            "creator": dict(t.creator),
            "updated_by": dict(t.creator),
        }

    def get_services(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        q = m.parse_query(m.GetServicesQuery, query)
        wanted_tags = tag_filters("tags", q.tags)
        order = sort_keys(q.sort_by, ("name", "is_active"))
        services = list(self.state.services.values())
        if q.id:
            wanted = set(q.id)
            services = [s for s in services if s.id in wanted]
        if q.is_active is not None:
            services = [s for s in services if s.is_active == q.is_active]
        for key, value in wanted_tags:
            services = [s for s in services if tag_matches(s.tags, key, value)]
        for name, descending in reversed(order):
            services.sort(key=lambda s, n=name: getattr(s, n), reverse=descending)  # type: ignore[misc]
        page, has_more, token = paginate(services, q.continuation_token, q.limit)
        filter_values = None
        if q.continuation_token == 0:
            tags = {
                f"{k}:{'' if v is None else v}"
                for s in self.state.services.values()
                for k, v in s.tags.items()
            }
            filter_values = {"tags": sorted(tags)}
        return 200, {
            "services": [service_instance(s) for s in page],
            "has_more": has_more,
            "continuation_token": token,
            "filter_values": filter_values,
        }

    def create_service(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        request = m.parse_body(m.CreateServiceRequest, body)
        agent, sm = self.resolve(
            request.agent_id, request.service_hierarchical_state_machine_id, 404
        )
        for owner, what in ((agent, "agent"), (sm, "state machine")):
            if owner.latest_version is None:
                raise HttpError(400, f"The {what} {owner.id} doesn't have any versions.")
        if request.release_version_set is not None:
            problem = version_problem(request.release_version_set, agent, sm)
            if problem:
                raise HttpError(400, problem)
        if request.is_active and self.state.active_named(request.name, exclude=None):
            raise HttpError(409, f"An active service named {request.name!r} already exists.")
        release = (
            request.release_version_set.to_stored()
            if request.release_version_set is not None
            else edge()
        )
        who = {"org_id": self.state.organization, "user_id": user}
        ident = self.state.new_id("services", self.state.services)
        self.state.services[ident] = ServiceRecord(
            id=ident,
            name=request.name,
            description=request.description,
            is_active=request.is_active,
            agent_id=agent.id,
            state_machine_id=sm.id,
            tags=dict(request.tags),
            keyterms=list(request.keyterms),
            version_sets={EDGE: edge(), RELEASE: release},
            creator=dict(who),
            updated_by=dict(who),
        )
        return 201, {"id": ident}

    def update_service(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        service_id = m.parse_object_id_path("service_id", params["service_id"])
        request = m.parse_body(m.UpdateServiceRequest, body)
        service = self.service_or_404({"service_id": service_id})
        name = request.name if request.name is not None else service.name
        active = request.is_active if request.is_active is not None else service.is_active
        agent_id = request.agent_id or service.agent_id
        sm_id = request.service_hierarchical_state_machine_id or service.state_machine_id
        if (
            request.agent_id is not None
            or request.service_hierarchical_state_machine_id is not None
        ):
            self.resolve(agent_id, sm_id, 400)
        activating = active and not service.is_active
        if active and (
            activating or agent_id != service.agent_id or sm_id != service.state_machine_id
        ):
            agent, sm = self.resolve(agent_id, sm_id, 400)
            for owner, what in ((agent, "agent"), (sm, "state machine")):
                if owner.deprecated:
                    raise HttpError(
                        400,
                        f"An active service cannot use the deprecated {what} {owner.id}.",
                        # Documented for an activation; for a move it is the emulator's reading.
                        None if activating else interp.DEPRECATED_ON_MOVE,
                    )
                if owner.latest_version is None:
                    raise HttpError(400, f"The {what} {owner.id} doesn't have any versions.")
        if activating:
            self.check_llms(service)
        if active and (activating or name != service.name):
            other = self.state.active_named(name, exclude=service.id)
            if other is not None:
                raise HttpError(
                    409, f"An active service named {name!r} already exists ({other.id})."
                )
        if service.is_active and request.is_active is False:
            pinned = self.state.pinned(service.id)
            if pinned:
                raise HttpError(
                    400,
                    f"Service {service.id} is used in simulation unit test {pinned[0].id} "
                    f"({pinned[0].name!r}) and cannot be deactivated.",
                )
        service.name = name
        if request.description is not None:
            service.description = request.description
        service.is_active = active
        service.agent_id = agent_id
        service.state_machine_id = sm_id
        if request.tags is not None:
            service.tags = dict(request.tags)
        if request.keyterms is not None:
            service.keyterms = list(request.keyterms)
        service.updated_by = {"org_id": self.state.organization, "user_id": user}
        return 200, None

    def upsert_version_set(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        service_id = m.parse_object_id_path("service_id", params["service_id"])
        name = m.parse_version_set_name_path(params["version_set_name"])
        request = m.parse_body(m.UpsertVersionSetRequest, body)
        service = self.service_or_404({"service_id": service_id})
        if name == EDGE:
            raise HttpError(400, "The `edge` version set cannot be updated.")
        agent, sm = self.resolve(service.agent_id, service.state_machine_id, 400)
        problem = version_problem(request.version_set, agent, sm)
        if problem:
            raise HttpError(400, problem)
        service.version_sets[name] = request.version_set.to_stored()
        service.updated_by = {"org_id": self.state.organization, "user_id": user}
        return 204, None

    def delete_version_set(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        service = self.service_or_404(params)
        name = params["version_set_name"]
        if name in (EDGE, RELEASE):
            raise HttpError(400, f"The `{name}` version set cannot be deleted.")
        if name not in service.version_sets:
            raise HttpError(404, f"Version set {name!r} not found on service {service.id}.")
        pinned = self.state.pinned(service.id, name)
        if pinned:
            raise HttpError(
                400,
                f"Version set {name!r} is used in simulation unit test {pinned[0].id} "
                f"({pinned[0].name!r}).",
            )
        del service.version_sets[name]
        return 204, None

    def get_versioned(
        self,
        query: Sequence[tuple[str, str]],
        model: type[m.GetAgentsQuery] | type[m.GetStateMachinesQuery],
        records: Iterable[VersionedRecord],
        key: str,
    ) -> tuple[int, Any]:
        q = m.parse_query(model, query)
        items = list(records)
        if q.id:
            wanted = set(q.id)
            items = [r for r in items if r.id in wanted]
        if q.deprecated is not None:
            items = [r for r in items if r.deprecated == q.deprecated]
        page, has_more, token = paginate(items, q.continuation_token, q.limit)
        return 200, {
            key: [versioned_instance(r) for r in page],
            "has_more": has_more,
            "continuation_token": token,
        }

    def get_agents(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        return self.get_versioned(query, m.GetAgentsQuery, self.state.agents.values(), "agents")

    def get_state_machines(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        return self.get_versioned(
            query,
            m.GetStateMachinesQuery,
            self.state.state_machines.values(),
            "service_hierarchical_state_machines",
        )

    def get_unit_tests(
        self, params: Mapping[str, str], query: Sequence[tuple[str, str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        q = m.parse_query(m.GetUnitTestsQuery, query)
        tests = list(self.state.unit_tests.values())
        if q.id:
            wanted = set(q.id)
            tests = [t for t in tests if t.id in wanted]
        if q.service_id:
            services = set(q.service_id)
            tests = [t for t in tests if t.service_id in services]
        if q.is_deleted is not None:
            tests = [t for t in tests if t.is_deleted == q.is_deleted]
        for values, attribute in ((q.persona_id, "persona_id"), (q.scenario_id, "scenario_id")):
            if values:
                wanted = set(values)
                tests = [t for t in tests if getattr(t, attribute) in wanted]
        if q.metric_id:
            metrics = set(q.metric_id)
            tests = [t for t in tests if metrics & self.simulations.metric_ids(t)]
        if q.creator:
            creators = creator_filters(q.creator)
            tests = [t for t in tests if (t.creator["org_id"], t.creator["user_id"]) in creators]
        for key, value in tag_filters("tag", q.tag):
            tests = [t for t in tests if tag_matches(t.tags, key, value)]
        for name, descending in reversed(sort_keys(q.sort_by, ("updated_at",))):
            tests.sort(key=lambda t, n=name: getattr(t, n), reverse=descending)  # type: ignore[misc]
        page, has_more, token = paginate(tests, q.continuation_token, q.limit)
        filter_values = None
        if q.continuation_token == 0:
            creators = {(t.creator["org_id"], t.creator["user_id"]) for t in tests}
            filter_values = {
                "creators": [{"org_id": o, "user_id": u} for o, u in sorted(creators)],
                "tags": sorted({k for t in tests for k in t.tags}),
                "service_ids": sorted({t.service_id for t in tests}),
                "persona_ids": sorted({t.persona_id for t in tests}),
                "scenario_ids": sorted({t.scenario_id for t in tests}),
                "metric_ids": sorted({i for t in tests for i in self.simulations.metric_ids(t)}),
            }
        return 200, {
            "simulation_unit_tests": [self.unit_test_instance(t) for t in page],
            "has_more": has_more,
            "continuation_token": token,
            "filter_values": filter_values,
        }

    def simulate(self, call: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
        try:
            return call()
        except HttpProblem as exc:
            raise HttpError(exc.status, exc.detail) from None


def creator_filters(raw_values: Sequence[str]) -> set[tuple[str, str]]:
    """The documented `org_id,user_id` creator syntax, or a 422."""
    creators = set()
    for raw in raw_values:
        org_id, sep, user_id = raw.partition(",")
        if not sep or not org_id or not user_id or "," in user_id:
            raise m.query_error(
                "creator", "Each creator must be of the format org_id,user_id.", raw
            )
        creators.add((org_id, user_id))
    return creators


def tag_filters(parameter: str, raw_values: Sequence[str]) -> list[tuple[str, str]]:
    """The documented `key:value` syntax, or a 422 naming the parameter."""
    filters = []
    for raw in raw_values:
        key, sep, value = raw.partition(":")
        if not sep or not key:
            raise m.query_error(parameter, "Tags must be specified as key:value.", raw)
        filters.append((key, value))
    return filters


def sort_keys(raw_values: Sequence[str], fields: Sequence[str]) -> list[tuple[str, bool]]:
    """`[+|-]field` as documented: one optional sign, then a supported field; else 422.

    `--name` is the sign `-` and the field `-name`, which no endpoint supports.
    """
    keys = []
    for raw in raw_values:
        sign = raw[:1] if raw[:1] in ("+", "-") else ""
        name = raw[len(sign) :]
        if name not in fields:
            supported = " and ".join(fields)
            raise m.query_error(
                "sort_by",
                f"Supported sort fields are {supported}, each optionally preceded by + or -.",
                raw,
            )
        keys.append((name, sign == "-"))
    return keys


def tag_matches(tags: Mapping[str, str | None], key: str, value: str) -> bool:
    """The documented `key:value` filter: `*` any value, empty matches a None value."""
    if key not in tags:
        return False
    if value == "*":
        return True
    if value == "":
        return tags[key] is None
    return tags[key] == value

"""Live state -> an emulator seed: a pure function, so an organization can be copied to a laptop.

`seed_from_live` takes what the reconciler reads from the API (the normalized
`LiveService`, `Agent`, `UnitTest` of model.py) and returns the seed document
(plain data in the format `seed.py` loads) plus warnings. It does no I/O, so
`reconciler export --seed` and a future plan rehearsal (which seeds an
in-memory emulator from the live state the planner already read) share it.

Choices, so the seed reloads as the same organization (the round trip):

- Every id is kept (agents, state machines, services, unit tests), so a plan
  against the copy names the same ids as against the original.
- Agents, state machines and the services a unit test names are referred to by
  name where that name is unique (and is not some record's id), else by id.
- `edge` is never written (the emulator makes it); `release` is written unless
  it equals what the emulator would make (latest versions, no preferences).
  Null version numbers (latest) and empty `params` are left out.
- No secret is written: the credentials are fixed throwaway emulator values.
- The API does not say which LLMs are deprecated; the caller may pass them.
  A stored LLM name outside the LLMType enum is declared deprecated, with a
  warning (interpretation `llm-outside-enum-is-deprecated`).
- An agent or state machine that a service uses but that is not in the given
  catalog (it was not read) gets a placeholder, with a warning: named by its
  id, not deprecated, its latest version the highest any version set pins.
- A unit test of a service that is not given, or of a version set the service
  lacks, is left out with a warning.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from reconciler.diagnostics import Diagnostic, Severity
from reconciler.emulator.interpretations import RETIRED_LLM
from reconciler.emulator.models import LLMType
from reconciler.model import EDGE, RELEASE, Agent, LiveService, UnitTest

# Throwaway values the emulator accepts; never the organization's own credentials.
EXPORT_CREDENTIALS: Mapping[str, str] = {
    "api_key": "emulator-key-not-a-secret",
    "api_key_id": "emulator-key-id",
    "user_id": "emulator-user",
}
_LLM_NAMES = frozenset(item.value for item in LLMType)


@dataclass(frozen=True, slots=True)
class SeedExport:
    document: dict[str, Any]  # the seed, as `load_seed` takes it (a mapping) or YAML writes it
    warnings: tuple[Diagnostic, ...] = ()


def seed_from_live(
    organization: str,
    services: Sequence[LiveService],
    agents: Sequence[Agent],
    state_machines: Sequence[Agent],
    unit_tests: Sequence[UnitTest] = (),
    *,
    deprecated_llms: Iterable[str] = (),
) -> SeedExport:
    """The seed document of this organization's live state (see the module's choices)."""
    warnings: list[Diagnostic] = []

    def warn(message: str, service: str | None = None) -> None:
        warnings.append(Diagnostic(message, Severity.WARNING, service=service))

    agent_list = _with_placeholders("agent", agents, services, "agent_id", warn)
    sm_list = _with_placeholders(
        "state machine", state_machines, services, "service_hierarchical_state_machine_id", warn
    )
    deprecated = list(dict.fromkeys(deprecated_llms))
    for service in services:
        for set_name, version_set in service.version_sets.items():
            for cfg in version_set.llm_model_preferences.values():
                if cfg.llm_name in _LLM_NAMES or cfg.llm_name in deprecated:
                    continue
                deprecated.append(cfg.llm_name)
                warn(
                    f"version set {set_name!r} prefers {cfg.llm_name!r}, which the API's LLMType "
                    f"list does not name: the seed declares it deprecated ({RETIRED_LLM})",
                    service.name,
                )

    agent_refs = _references(agent_list)
    sm_refs = _references(sm_list)
    document: dict[str, Any] = {
        "organization": organization,
        "credentials": dict(EXPORT_CREDENTIALS),
    }
    if deprecated:
        document["deprecated_llms"] = deprecated
    document["agents"] = [_versioned(a) for a in agent_list]
    document["state_machines"] = [_versioned(s) for s in sm_list]
    document["services"] = [_service(s, agent_refs, sm_refs) for s in services]

    by_id = {s.id: s for s in services}
    service_refs = _references(services)
    tests = []
    for test in unit_tests:
        owner = by_id.get(test.service_id)
        if owner is None:
            warn(
                f"unit test {test.name!r} ({test.id}) runs on service {test.service_id}, "
                "which is not in the copy: left out"
            )
            continue
        if test.version_set not in owner.version_sets:
            warn(
                f"unit test {test.name!r} ({test.id}) pins version set {test.version_set!r}, "
                "which the service does not have: left out",
                owner.name,
            )
            continue
        entry: dict[str, Any] = {
            "name": test.name,
            "id": test.id,
            "service": service_refs[owner.id],
        }
        if test.version_set != RELEASE:
            entry["version_set"] = test.version_set
        tests.append(entry)
    document["unit_tests"] = tests
    return SeedExport(document, tuple(warnings))


def _with_placeholders(
    what: str,
    catalog: Sequence[Agent],
    services: Sequence[LiveService],
    id_field: str,
    warn: Any,
) -> list[Agent]:
    known = {a.id for a in catalog}
    version_field = (
        "agent_version_number"
        if what == "agent"
        else "service_hierarchical_state_machine_version_number"
    )
    missing: dict[str, int] = {}
    for service in services:
        ref = getattr(service, id_field)
        if ref in known:
            continue
        pins = [getattr(vs, version_field) or 1 for vs in service.version_sets.values()]
        missing[ref] = max([missing.get(ref, 1), *pins])
    placeholders = []
    for ref, latest in missing.items():
        warn(
            f"{what} {ref} is used but was not read: seeded as a placeholder named by its id "
            f"(not deprecated, latest version {latest})"
        )
        placeholders.append(Agent(id=ref, name=ref, deprecated=False, latest_version=latest))
    return [*catalog, *placeholders]


def _references(records: Sequence[Agent] | Sequence[LiveService]) -> dict[str, str]:
    """id -> how the seed refers to it: the name when unique and not anyone's id, else the id."""
    counts = Counter(r.name for r in records)
    ids = {r.id for r in records}
    return {
        r.id: r.name
        if counts[r.name] == 1 and r.name not in ids and r.name == r.name.strip()
        else r.id
        for r in records
    }


def _versioned(record: Agent) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": record.name,
        "id": record.id,
        "latest_version": record.latest_version,
    }
    if record.deprecated:
        entry["deprecated"] = True
    return entry


def _service(
    service: LiveService, agent_refs: Mapping[str, str], sm_refs: Mapping[str, str]
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": service.name,
        "id": service.id,
        "description": service.description,
    }
    if not service.is_active:
        entry["is_active"] = False
    entry["agent"] = agent_refs[service.agent_id]
    entry["service_hierarchical_state_machine"] = sm_refs[
        service.service_hierarchical_state_machine_id
    ]
    entry["tags"] = dict(service.tags)
    entry["keyterms"] = list(service.keyterms)
    sets: dict[str, Any] = {}
    for name in sorted(service.version_sets, key=lambda n: (n != RELEASE, n)):
        if name == EDGE:
            continue
        written = service.version_sets[name].to_compact()
        if name == RELEASE and not written:
            continue  # the emulator makes release a copy of edge when the seed leaves it out
        sets[name] = written
    if sets:
        entry["version_sets"] = sets
    return entry


class _SeedDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # the same dict twice is written twice
        return True


def dump_seed(document: Mapping[str, Any], *, header: str = "") -> str:
    """The seed as YAML text (keys in the document's order), after an optional comment header."""
    body = yaml.dump(
        dict(document),
        Dumper=_SeedDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1_000_000,
    )
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comment + body

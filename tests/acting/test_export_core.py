"""The pure exporter: live services -> manifest documents (shape, identity, names, YAML)."""

from __future__ import annotations

import random
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.diagnostics import Severity, UserError
from reconciler.export import (
    MAX_SLUG_LENGTH,
    dump_document,
    export_manifests,
    file_names,
    join_documents,
    slugify,
)
from reconciler.model import Agent, LiveService

AGENT_ID = "a1" * 12
AGENT2_ID = "a2" * 12
SM_ID = "b1" * 12
SM2_ID = "b2" * 12
AGENTS = [Agent(AGENT_ID, "Concierge", False, 4), Agent(AGENT2_ID, "Helper", False, 2)]
MACHINES = [Agent(SM_ID, "Onboarding flow", False, 5), Agent(SM2_ID, "Other", False, 1)]


def version_set(
    agent: int | None = None, sm: int | None = None, prefs: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "agent_version_number": agent,
        "service_hierarchical_state_machine_version_number": sm,
        "llm_model_preferences": prefs or {},
    }


def api_service(
    name: str,
    id_: str,
    *,
    active: bool = True,
    tags: dict[str, str | None] | None = None,
    keyterms: list[str] | None = None,
    version_sets: dict[str, Any] | None = None,
    agent_id: str = AGENT_ID,
    sm_id: str = SM_ID,
    description: str = "A service",
) -> LiveService:
    sets = {"edge": version_set(), "release": version_set()}
    sets.update(version_sets or {})
    return LiveService.from_api(
        {
            "id": id_,
            "name": name,
            "description": description,
            "is_active": active,
            "agent_id": agent_id,
            "service_hierarchical_state_machine_id": sm_id,
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
            "keyterms": keyterms or [],
            "version_sets": sets,
            "creator": {},
            "updated_by": {},
        }
    )


def docs(result: Any) -> list[dict[str, Any]]:
    return [yaml.safe_load(f.body) for f in result.files]


def test_document_shape_and_key_order() -> None:
    service = api_service(
        "Meet & Greet",
        "c" * 24,
        tags={"team": "growth", "tier": None, "managed_by": "amigo_reconciler"},
        keyterms=["meet and greet", "amigo"],
        version_sets={
            "release": version_set(
                3, 5, {"conversation": {"llm_name": "m1", "params": {"temperature": 0.2}}}
            ),
            "canary": version_set(4),
            "alpha": version_set(prefs={"x": {"llm_name": "m2", "params": {}}}),
        },
    )
    result = export_manifests([service], AGENTS, MACHINES)
    (file,) = result.files
    assert file.name == "meet-greet.yaml"
    assert file.text == file.body  # no schema ref given: no modeline
    document = yaml.safe_load(file.body)
    assert list(document) == ["apiVersion", "kind", "metadata", "spec"]
    assert document["apiVersion"] == "amigo.ai/v1"
    assert document["kind"] == "Service"
    assert document["metadata"] == {"name": "Meet & Greet"}
    spec = document["spec"]
    assert list(spec) == [
        "description",
        "is_active",
        "agent",
        "service_hierarchical_state_machine",
        "tags",
        "keyterms",
        "version_sets",
    ]
    assert spec["is_active"] is True
    assert spec["agent"] == "Concierge"
    assert spec["service_hierarchical_state_machine"] == "Onboarding flow"
    assert spec["tags"] == {"team": "growth", "tier": None}  # ownership tag left out
    assert "tier: null" in file.body
    assert spec["keyterms"] == ["meet and greet", "amigo"]  # live order kept
    assert list(spec["version_sets"]) == ["release", "alpha", "canary"]  # edge never
    assert spec["version_sets"]["release"] == {
        "agent_version_number": 3,
        "service_hierarchical_state_machine_version_number": 5,
        "llm_model_preferences": {
            "conversation": {"llm_name": "m1", "params": {"temperature": 0.2}}
        },
    }
    # null (latest) version numbers and empty params are omitted: same meaning on load
    assert spec["version_sets"]["canary"] == {"agent_version_number": 4}
    assert spec["version_sets"]["alpha"] == {"llm_model_preferences": {"x": {"llm_name": "m2"}}}
    assert result.warnings == ()


def test_inactive_service_writes_is_active_false_and_empty_tags_stay_explicit() -> None:
    service = api_service("Old", "d" * 24, active=False)
    (document,) = docs(export_manifests([service], AGENTS, MACHINES))
    assert document["spec"]["is_active"] is False
    assert document["spec"]["tags"] == {}  # no tags live: declared empty, not unmanaged
    assert document["spec"]["keyterms"] == []
    assert document["spec"]["version_sets"] == {"release": {}}


def test_agent_and_state_machine_by_id_when_name_is_ambiguous_or_unknown() -> None:
    agents = [*AGENTS, Agent("a3" * 12, "Concierge", True, 1)]  # a second "Concierge"
    service = api_service("S", "e" * 24, sm_id="f" * 24)  # state machine not in the list
    (document,) = docs(export_manifests([service], agents, MACHINES))
    spec = document["spec"]
    assert spec["agent_id"] == AGENT_ID and "agent" not in spec
    assert spec["service_hierarchical_state_machine_id"] == "f" * 24
    assert "service_hierarchical_state_machine" not in spec
    assert list(spec)[2:4] == ["agent_id", "service_hierarchical_state_machine_id"]


def test_id_pinned_only_where_several_services_share_a_name() -> None:
    services = [
        api_service("Dup", "1" * 24),
        api_service("Dup", "0" * 24, active=False),
        api_service("Dup", "2" * 24, active=False),
        api_service("Solo", "3" * 24, active=False),
    ]
    result = export_manifests(services, AGENTS, MACHINES)
    by_id = {f.service_id: yaml.safe_load(f.body) for f in result.files}
    for id_ in ("0" * 24, "1" * 24, "2" * 24):
        assert by_id[id_]["metadata"] == {"name": "Dup", "id": id_}
    assert by_id["3" * 24]["metadata"] == {"name": "Solo"}
    # colliding file names are suffixed with the first 6 characters of the id, sorted
    assert [f.name for f in result.files] == [
        "dup-000000.yaml",
        "dup-111111.yaml",
        "dup-222222.yaml",
        "solo.yaml",
    ]


def test_active_only_and_targets_filter_but_pins_still_see_every_service() -> None:
    services = [
        api_service("Dup", "1" * 24),
        api_service("Dup", "0" * 24, active=False),
        api_service("Other", "3" * 24),
        api_service("Gone", "4" * 24, active=False),
    ]
    result = export_manifests(services, AGENTS, MACHINES, active_only=True)
    assert [(f.name, f.service) for f in result.files] == [
        ("dup.yaml", "Dup"),
        ("other.yaml", "Other"),
    ]
    assert yaml.safe_load(result.files[0].body)["metadata"]["id"] == "1" * 24
    result = export_manifests(services, AGENTS, MACHINES, targets=["Gone", "Other"])
    assert [f.service for f in result.files] == ["Gone", "Other"]


def test_unknown_target_is_an_error_naming_it() -> None:
    with pytest.raises(UserError) as info:
        export_manifests([api_service("A", "1" * 24)], AGENTS, MACHINES, targets=["Nope"])
    (diag,) = info.value.diagnostics
    assert diag.field == "--target"
    assert "'Nope'" in diag.message and "'A'" in diag.message


def test_unrepresentable_tags_and_keyterms_are_left_out_with_a_warning() -> None:
    service = api_service(
        "S",
        "1" * 24,
        tags={"team-name": "x", "ok": "y"},
        keyterms=["Upper Case"],
        version_sets={"bad name!": version_set(1), "good": version_set(2)},
    )
    result = export_manifests([service], AGENTS, MACHINES)
    (document,) = docs(result)
    assert "tags" not in document["spec"]  # unmanaged: the live tags stay
    assert "keyterms" not in document["spec"]
    assert list(document["spec"]["version_sets"]) == ["release", "good"]
    fields = [w.field for w in result.warnings]
    assert fields == ["spec.tags", "spec.keyterms", "spec.version_sets.bad name!"]
    assert all(w.severity is Severity.WARNING and w.service == "S" for w in result.warnings)
    assert "'team-name'" in result.warnings[0].message
    assert "'Upper Case'" in result.warnings[1].message
    assert "--prune" in result.warnings[2].message


def test_too_many_tags_are_left_out() -> None:
    tags: dict[str, str | None] = {f"k{i}": None for i in range(21)}
    result = export_manifests([api_service("S", "1" * 24, tags=tags)], AGENTS, MACHINES)
    assert "tags" not in docs(result)[0]["spec"]
    assert "21 tags" in result.warnings[0].message


def test_twenty_tags_warn_that_adoption_would_exceed_the_limit() -> None:
    tags: dict[str, str | None] = {f"k{i:02d}": None for i in range(20)}
    result = export_manifests([api_service("S", "1" * 24, tags=tags)], AGENTS, MACHINES)
    assert docs(result)[0]["spec"]["tags"] == tags  # still exported as they are
    (warning,) = result.warnings
    assert warning.field == "spec.tags" and "21" in warning.message
    owned = {**dict(list(tags.items())[:19]), "managed_by": "amigo_reconciler"}
    result = export_manifests([api_service("S", "1" * 24, tags=owned)], AGENTS, MACHINES)
    assert result.warnings == ()


def test_foreign_value_of_the_ownership_tag_is_dropped_with_a_warning() -> None:
    service = api_service("S", "1" * 24, tags={"managed_by": "terraform", "a": "b"})
    result = export_manifests([service], AGENTS, MACHINES)
    assert docs(result)[0]["spec"]["tags"] == {"a": "b"}
    assert "terraform" in result.warnings[0].message


def test_dollar_brace_is_escaped_so_the_loader_reads_it_literally() -> None:
    service = api_service("Cost ${X}", "1" * 24, description="uses ${HOME} and $$")
    (document,) = docs(export_manifests([service], AGENTS, MACHINES))
    assert document["metadata"]["name"] == "Cost $${X}"
    assert document["spec"]["description"] == "uses $${HOME} and $$"


def test_output_is_deterministic_whatever_the_input_order() -> None:
    services = [
        api_service(f"svc {i % 7}", f"{i:024x}", tags={"b": "1", "a": None, "c": "x"})
        for i in range(30)
    ]
    first = export_manifests(services, AGENTS, MACHINES, schema_ref="s.json")
    shuffled = services[:]
    random.Random(4).shuffle(shuffled)
    agents = AGENTS[::-1]
    second = export_manifests(shuffled, agents, MACHINES[::-1], schema_ref="s.json")
    assert first == second
    assert [f.name for f in first.files] == sorted(f.name for f in first.files)
    assert len({f.name for f in first.files}) == 30


def test_modeline_and_stream() -> None:
    services = [api_service("A", "1" * 24), api_service("B", "2" * 24)]
    result = export_manifests(services, AGENTS, MACHINES, schema_ref="../schemas/x.json")
    assert result.files[0].text.startswith("# yaml-language-server: $schema=../schemas/x.json\n")
    stream = join_documents(result.files, "x.json")
    assert stream.startswith("# yaml-language-server: $schema=x.json\napiVersion:")
    loaded = list(yaml.safe_load_all(stream))
    assert [d["metadata"]["name"] for d in loaded] == ["A", "B"]
    assert stream.count("\n---\n") == 1


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Meet & Greet", "meet-greet"),
        ("  --Hello__World--  ", "hello-world"),
        ("Café Olé", "cafe-ole"),
        ("日本語", "service"),
        ("", "service"),
        ("CON", "con-service"),
        ("nul", "nul-service"),
        ("Aux", "aux-service"),
        ("com1", "com1-service"),
        ("LPT9", "lpt9-service"),
        ("console", "console"),
        ("../../etc/passwd", "etc-passwd"),
        ('a/b\\c:d*e?f"g<h>i|j', "a-b-c-d-e-f-g-h-i-j"),
    ],
)
def test_slugs_are_safe_file_names(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_slug_length_is_capped_without_a_trailing_dash() -> None:
    slug = slugify("x" * 59 + " yyyy")
    assert slug == "x" * 59
    assert len(slugify("word " * 100)) <= MAX_SLUG_LENGTH


def test_collisions_across_case_and_with_suffixed_names_stay_unique() -> None:
    services = [
        api_service("Alpha", "abcdef" + "1" * 18),
        api_service("alpha", "abcdef" + "2" * 18),  # same first 6 id chars too
        api_service("ALPHA!", "012345" + "0" * 18),
        api_service("alpha-012345", "9" * 24),  # its plain slug equals a suffixed one
    ]
    names = file_names(services)
    assert len(set(names.values())) == 4
    assert names["9" * 24] == "alpha-012345.yaml"
    assert names["012345" + "0" * 18] == "alpha-" + "012345" + "0" * 18 + ".yaml"
    assert names["abcdef" + "1" * 18] == "alpha-" + "abcdef" + "1" * 18 + ".yaml"


TRICKY = [
    "yes",
    "No",
    "on",
    "off",
    "y",
    "n",
    "1.0",
    "1e3",
    "0x1F",
    "0o17",
    "1_000",
    "12:30",
    "2024-01-01",
    "null",
    "~",
    "true",
    ".inf",
    "-.nan",
    "*star",
    "&anchor",
    "!tag",
    "%percent",
    "@at",
    "`tick",
    "key: value",
    "a #comment",
    "- dash",
    "? question",
    "[list]",
    "{map}",
    "'single'",
    '"double"',
    " leading",
    "trailing ",
    "two\nlines",
    "trailing newline\n",
    "tab\tinside",
    "ünïcödé ✓",
    "<<",
    "=",
    "",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_round_trip_through_yaml(text: str) -> None:
    plain = text.strip() == text and text  # names and descriptions are stripped on load
    name = text if plain else "x"
    prefs = {"conversation": {"llm_name": "m", "params": {"p": text, "list": [text]}}}
    service = api_service(
        name,
        "1" * 24,
        description=name,
        agent_id="f" * 24,
        version_sets={"release": version_set(prefs=prefs)},
    )
    result = export_manifests([service], [Agent("f" * 24, name, False, 1)], MACHINES)
    (document,) = docs(result)
    assert result.warnings == ()
    assert document["metadata"]["name"] == name
    assert document["spec"]["description"] == name
    assert document["spec"]["agent"] == name
    params = document["spec"]["version_sets"]["release"]["llm_model_preferences"]
    assert params["conversation"]["params"] == {"list": [text], "p": text}


def test_surrounding_whitespace_is_stripped_with_a_warning_and_the_id_pinned() -> None:
    service = api_service(" Padded ", "1" * 24, description="text\n")
    result = export_manifests([service], AGENTS, MACHINES)
    (document,) = docs(result)
    assert document["metadata"] == {"name": "Padded", "id": "1" * 24}
    assert document["spec"]["description"] == "text"
    assert [w.field for w in result.warnings] == ["metadata.name", "spec.description"]
    assert "renames" in result.warnings[0].message


def test_blank_description_is_an_error_naming_service_and_field() -> None:
    with pytest.raises(UserError) as info:
        export_manifests([api_service("S", "1" * 24, description="  ")], AGENTS, MACHINES)
    (diag,) = info.value.diagnostics
    assert diag.severity is Severity.ERROR
    assert (diag.service, diag.field) == ("S", "spec.description")
    assert "1" * 24 in diag.message


def test_version_set_a_manifest_cannot_hold_is_left_out_with_a_warning() -> None:
    service = api_service(
        "S",
        "1" * 24,
        version_sets={
            "zero": version_set(0),
            "padded": version_set(prefs={" conversation": {"llm_name": "m", "params": {}}}),
            "x" * 41: version_set(),
            "ok": version_set(1),
        },
    )
    result = export_manifests([service], AGENTS, MACHINES)
    assert list(docs(result)[0]["spec"]["version_sets"]) == ["release", "ok"]
    assert sorted(w.field or "" for w in result.warnings) == sorted(
        f"spec.version_sets.{n}" for n in ("zero", "padded", "x" * 41)
    )


def test_dollar_brace_in_param_values_is_escaped_but_keys_are_not() -> None:
    prefs = {"c": {"llm_name": "m", "params": {"${K}": "${V}", "n": {"${K2}": ["${V2}"]}}}}
    service = api_service("S", "1" * 24, version_sets={"release": version_set(prefs=prefs)})
    (document,) = docs(export_manifests([service], AGENTS, MACHINES))
    params = document["spec"]["version_sets"]["release"]["llm_model_preferences"]["c"]["params"]
    assert params == {"${K}": "$${V}", "n": {"${K2}": ["$${V2}"]}}


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_string_round_trips(text: str) -> None:
    # YAML cannot carry every code point (e.g. lone surrogates, some C0 controls
    # without escapes): the dumper must either round-trip or refuse, never alter.
    try:
        dumped = dump_document({"k": text, text: [text]})
    except yaml.YAMLError:
        return
    assert yaml.safe_load(dumped) == {"k": text, text: [text]}


def test_a_pinned_id_the_manifest_model_refuses_is_an_error_not_a_file() -> None:
    # Two live services share a name, so ids are pinned; one id is not a 24-hex id,
    # which a manifest's metadata.id cannot hold: the document would not load.
    services = [api_service("Dup", "1" * 24), api_service("Dup", "not-an-object-id")]
    with pytest.raises(UserError) as info:
        export_manifests(services, AGENTS, MACHINES)
    (diag,) = info.value.diagnostics
    assert diag.severity is Severity.ERROR
    assert (diag.service, diag.field) == ("Dup", "metadata.id")
    assert "not-an-object-id" in diag.message


def test_a_reference_id_the_manifest_model_refuses_is_an_error_naming_the_field() -> None:
    service = api_service("S", "1" * 24, agent_id="agent-7")  # no agent of that id: by id
    with pytest.raises(UserError) as info:
        export_manifests([service], AGENTS, MACHINES)
    (diag,) = info.value.diagnostics
    assert (diag.service, diag.field) == ("S", "spec.agent_id")


_TAG_TEXT = st.text(alphabet="ab_ -$1é\t", max_size=4)


@settings(max_examples=60, deadline=None)
@given(
    tags=st.dictionaries(_TAG_TEXT, st.none() | _TAG_TEXT, max_size=3),
    keyterms=st.lists(st.text(alphabet="ab -A", max_size=8), max_size=3),
    set_name=st.text(alphabet="aZ_-. ", min_size=1, max_size=3),
    interaction=st.text(alphabet="c ", min_size=1, max_size=2),
)
def test_what_export_writes_loads_back_as_the_live_value_or_is_left_out_with_a_warning(
    tags: dict[str, str | None], keyterms: list[str], set_name: str, interaction: str
) -> None:
    """The manifests' loader, not export, decides what a manifest can hold."""
    import tempfile
    from pathlib import Path

    from reconciler.manifests import load_manifests

    prefs = {interaction: {"llm_name": "openai_gpt-5.1-2025-11-13", "params": {}}}
    service = api_service(
        "S",
        "1" * 24,
        tags=tags,
        keyterms=keyterms,
        version_sets={} if set_name == "edge" else {set_name: version_set(prefs=prefs)},
    )
    result = export_manifests([service], AGENTS, MACHINES)
    (file,) = result.files
    warned = {w.field for w in result.warnings}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / file.name
        path.write_text(file.text, encoding="utf-8")
        (loaded,) = load_manifests([path]).services
    spec = yaml.safe_load(file.body)["spec"]
    if "tags" in spec:
        assert loaded.tags == service.tags
    else:
        assert "spec.tags" in warned
    if "keyterms" in spec:
        assert loaded.keyterms == service.keyterms
    else:
        assert "spec.keyterms" in warned
    expected_sets = {n: v for n, v in service.version_sets.items() if n in spec["version_sets"]}
    assert dict(loaded.version_sets) == expected_sets
    for name in set(service.version_sets) - {"edge"} - set(spec["version_sets"]):
        assert f"spec.version_sets.{name}" in warned


def test_names_the_manifest_would_strip_are_left_out_with_a_warning() -> None:
    # The manifest model strips surrounding whitespace: "canary " would load as "canary".
    service = api_service(
        "S", "1" * 24, tags={" team": "x"}, version_sets={"canary ": version_set(1)}
    )
    result = export_manifests([service], AGENTS, MACHINES)
    (document,) = docs(result)
    assert "tags" not in document["spec"]
    assert list(document["spec"]["version_sets"]) == ["release"]
    assert [w.field for w in result.warnings] == ["spec.tags", "spec.version_sets.canary "]
    assert "' team'" in result.warnings[0].message

"""Field-level differences: maps key by key, lists whole, version sets leaf by leaf."""

from __future__ import annotations

from reconciler.diff import Change, changed_fields, diff_service, diff_values, diff_version_set
from reconciler.model import LLMConfig, VersionSet


def test_tags_compare_as_maps() -> None:
    changes = diff_values(
        {"tags": {"team": "a", "gone": "x", "tier": None}},
        {"tags": {"team": "b", "new": "y", "tier": None}},
    )
    assert changes == (
        Change("tags.gone", "x", None),
        Change("tags.new", None, "y"),
        Change("tags.team", "a", "b"),
    )


def test_keyterms_compare_as_ordered_lists() -> None:
    assert diff_values({"keyterms": ["a", "b"]}, {"keyterms": ["b", "a"]}) == (
        Change("keyterms", ["a", "b"], ["b", "a"]),
    )
    assert diff_values({"keyterms": ("a",)}, {"keyterms": ["a"]}) == ()


def test_service_changes_follow_field_order() -> None:
    live = {"name": "a", "description": "x", "tags": {"k": "1"}}
    want = {"name": "b", "description": "y", "tags": {"k": "2"}}
    assert [c.path for c in diff_service(live, want)] == ["name", "description", "tags.k"]
    assert changed_fields(live, want) == ["name", "description", "tags"]
    assert changed_fields(live, dict(live)) == []


def test_version_set_leaves() -> None:
    old = VersionSet(3, None, {"conversation": LLMConfig("m1", {"temperature": 0.3})})
    new = VersionSet(4, None, {"conversation": LLMConfig("m1", {"temperature": 0.2})})
    assert diff_version_set(old, new) == (
        Change("agent_version_number", 3, 4),
        Change("llm_model_preferences.conversation.params.temperature", 0.3, 0.2),
    )
    assert diff_version_set(old, old) == ()


def test_new_and_removed_resources_show_their_leaves() -> None:
    created = diff_version_set(None, VersionSet(2))
    assert Change("agent_version_number", None, 2) in created
    removed = diff_version_set(VersionSet(2), None)
    assert Change("agent_version_number", 2, None) in removed

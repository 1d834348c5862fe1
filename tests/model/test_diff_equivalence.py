"""diff_values walks the two values itself (deepdiff cost half of planning 5,000 services);
it must report exactly the paths deepdiff's tree view gives, truncated at list indexes.

The reference turns off deepdiff's `threshold_to_diff_deeper` heuristic (deepdiff 8
reports two maps sharing under a third of their keys as one changed blob, e.g.
`tags: {a: x} -> {b: y}`, or an empty path at the top): the documented convention
is maps compared key by key, always.
"""

from __future__ import annotations

from typing import Any

from deepdiff import DeepDiff
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.diff import Change, diff_values

KEYS = st.sampled_from(["team", "tier", "agent_version_number", "params", "conversation", "x"])
# Integers stay clear of 0 and 1: deepdiff compares list items with ==, so it misses
# False -> 0 inside a list, which diff_values (rightly, for JSON) reports; type changes
# have their own test below.
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(2, 5),
    st.sampled_from([0.2, 0.3, 1.0]),
    st.sampled_from(["a", "b", ""]),
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=8,
)
MAPS = st.dictionaries(KEYS, VALUES, min_size=1, max_size=4)


def _lookup(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def deepdiff_reference(old: dict[str, Any], new: dict[str, Any]) -> tuple[Change, ...]:
    """The former implementation: deepdiff's tree view, paths cut at the first list index."""
    tree = DeepDiff(old, new, view="tree", verbose_level=2, threshold_to_diff_deeper=0)
    paths: set[tuple[str, ...]] = set()
    for reports in tree.values():
        for report in reports:
            parts: list[str] = []
            for part in report.path(output_format="list"):
                if isinstance(part, int):
                    break
                parts.append(str(part))
            paths.add(tuple(parts))
    changes = [Change(".".join(p), _lookup(old, p), _lookup(new, p)) for p in paths]
    return tuple(sorted(changes, key=lambda c: c.path))


@settings(max_examples=150, deadline=None)
@given(MAPS, MAPS)
def test_same_paths_as_deepdiff(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert diff_values(old, new) == deepdiff_reference(old, new)


@settings(max_examples=40, deadline=None)
@given(MAPS)
def test_no_changes_between_equal_values(value: dict[str, Any]) -> None:
    assert diff_values(value, value) == ()


def test_type_changes_count_as_changes() -> None:
    assert diff_values({"n": 1}, {"n": 1.0}) == (Change("n", 1, 1.0),)
    assert diff_values({"n": 1}, {"n": True}) == (Change("n", 1, True),)
    assert diff_values({"k": [1]}, {"k": [1.0]}) == (Change("k", [1], [1.0]),)
    assert diff_values({"k": [False]}, {"k": [0]}) == (Change("k", [False], [0]),)
    assert diff_values({"p": None}, {"p": {"t": 1}}) == (Change("p", None, {"t": 1}),)


def test_maps_with_no_common_keys_still_compare_key_by_key() -> None:
    assert diff_values({"tags": {"a": "x"}}, {"tags": {"b": "y"}}) == (
        Change("tags.a", "x", None),
        Change("tags.b", None, "y"),
    )

"""The layers of reconciler/ hold: no module imports a higher layer, no import cycle,
and the CLI reaches the core only through the workflow.

Every import counts: module level, inside functions (lazy) and under TYPE_CHECKING.
docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from support.paths import PACKAGE

# Lowest first. A module may import its own layer or lower ones. An entry names a
# module or a package (everything under it); "reconciler" itself is only __init__.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "base",
        (
            "reconciler",
            "reconciler.limits",
            "reconciler.diagnostics",
            "reconciler.yaml_diagnostics",
            "reconciler.gcpause",
            "reconciler.fit",
            "reconciler.sniff",
        ),
    ),
    ("model", ("reconciler.model", "reconciler.declared")),
    (
        "adapters",
        (
            "reconciler.api",
            "reconciler.emulator",
            "reconciler.manifests",
            "reconciler.manifest_files",
            "reconciler.project",
            "reconciler.redaction",
        ),
    ),
    (
        "stages",
        (
            "reconciler.identity",
            "reconciler.diff",
            "reconciler.live",
            "reconciler.schema",
            "reconciler.promote",
        ),
    ),
    ("plan", ("reconciler.plan",)),
    ("planning", ("reconciler.planner", "reconciler.planfile")),
    (
        "acting",
        (
            "reconciler.applier",
            "reconciler.convergence",
            "reconciler.policy",
            "reconciler.verify",
            "reconciler.rollback",
            "reconciler.export",
            "reconciler.rehearsal",
        ),
    ),
    (
        "rendering",
        ("reconciler.render", "reconciler.render_verify", "reconciler.report", "reconciler.show"),
    ),
    ("workflow", ("reconciler.workflow", "reconciler.connect")),
    ("integration", ("reconciler.github",)),
    ("cli", ("reconciler.cli", "reconciler.launcher", "reconciler.__main__")),
)

# What a command module may import at run time: the workflow, presentation, and the
# stand-alone tools that are commands of their own (schema, promote, the emulator).
CLI_MAY_IMPORT = (
    "reconciler",
    "reconciler.cli",
    "reconciler.workflow",
    "reconciler.connect",
    "reconciler.github",
    "reconciler.render",
    "reconciler.render_verify",
    "reconciler.report",
    "reconciler.show",
    "reconciler.policy.render",
    "reconciler.redaction",
    "reconciler.diagnostics",
    "reconciler.api.errors",  # the errors handle_errors turns into one line
    "reconciler.schema",
    "reconciler.promote",
    "reconciler.emulator",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _under(name: str, entry: str) -> bool:
    if entry == "reconciler":
        return name == "reconciler"
    return name == entry or name.startswith(entry + ".")


def layer_of(name: str) -> int:
    """Index in LAYERS of the most specific entry covering `name`."""
    best = max(
        (
            (len(entry), index)
            for index, (_, entries) in enumerate(LAYERS)
            for entry in entries
            if _under(name, entry)
        ),
        default=None,
    )
    if best is None:
        raise AssertionError(f"{name} is in no layer: add it to LAYERS (and docs/architecture.md)")
    return best[1]


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:`."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            for child in node.body:
                inside |= {id(n) for n in ast.walk(child)}
    return inside


def imports_of(name: str, *, runtime_only: bool = False) -> set[str]:
    """The reconciler modules `name` imports anywhere in its source."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree) if runtime_only else set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "reconciler"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "reconciler":
                continue
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names} & MODULES.keys()
    return {m for m in found if m in MODULES and m != name}


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        layer_of(name)


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{name} ({LAYERS[layer_of(name)][0]}) imports {dep} ({LAYERS[layer_of(dep)][0]})"
        for name in MODULES
        for dep in sorted(imports_of(name))
        if layer_of(dep) > layer_of(name)
    ]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def _unit(name: str) -> str:
    """A package counts as one unit (its own modules may import its __init__)."""
    parts = name.split(".")
    package = ".".join(parts[:2])
    return package if package in MODULES and MODULES[package].name == "__init__.py" else name


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle in `graph`, as the path that closes it, or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for name in MODULES:
        unit = _unit(name)
        graph.setdefault(unit, set()).update(
            _unit(dep) for dep in imports_of(name) if _unit(dep) != unit
        )
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _under(n, "reconciler.cli")))
def test_commands_reach_the_core_only_through_the_workflow(name: str) -> None:
    stray = sorted(
        dep
        for dep in imports_of(name, runtime_only=True)
        if not any(_under(dep, allowed) for allowed in CLI_MAY_IMPORT)
    )
    assert not stray, f"{name} imports stages directly (go through reconciler.workflow): {stray}"


def test_the_planner_knows_no_client() -> None:
    source = MODULES["reconciler.planner"].read_text(encoding="utf-8")
    assert "AmigoClient" not in source and "reconciler.api" not in source
    assert not any(_under(dep, "reconciler.api") for dep in imports_of("reconciler.planner"))


def test_no_issue_banners_in_code() -> None:
    """Code says what it does, not which issue delivered it."""
    import re

    banner = re.compile(r"#.*\(issue \d+")
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in MODULES.values()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if banner.search(line)
    ]
    assert not found, found

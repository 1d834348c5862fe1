"""Promote a version set's contents to another set by editing manifests in place.

Promotion is a reviewed change to the manifests, not an API call: the target
set (e.g. `release`) is made equal to the source set (e.g. `canary`) with the
smallest text edits at the positions the loader records
(`manifests.index_documents`). The YAML is never re-dumped: comments, key
order, quoting, line endings and every byte outside the target set stay as
they were. Values are copied as the source's own text (so `${VAR}` references
stay references). A set reached through an anchor, alias or merge key is
refused rather than guessed at. Before anything is written, the edited text is
loaded again with the normal loader and must show the target set equal to the
source with nothing else changed; otherwise nothing is written.
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.diagnostics import Diagnostic, SourcePos, UserError, did_you_mean
from reconciler.manifests import index_documents, load_manifests
from reconciler.model import EDGE, DesiredService, DesiredState

_FLOW_UNSAFE = frozenset(",[]{}#")


class NothingToPromote(UserError):
    """Every named service already has the target set equal to the source set."""


class PromotionUsage(UserError):
    """The arguments contradict each other (the CLI turns this into a usage error, exit 64)."""


PINNED_FIELDS = ("agent_version_number", "service_hierarchical_state_machine_version_number")


class UnpinnedSource(UserError):
    """A source set leaves a version number unpinned ("latest"): the promoted set would
    float to whatever is newest when applied, not serve what was verified."""

    def __init__(self, diagnostics: list[Diagnostic], unpinned: Mapping[str, tuple[str, ...]]):
        super().__init__(diagnostics)
        self.unpinned = dict(unpinned)  # service -> the unpinned fields of its source set


@dataclass(frozen=True, slots=True)
class FileChange:
    """One manifest file's text before and after promotion."""

    path: str
    before: str
    after: str
    services: tuple[str, ...]

    def diff(self) -> str:
        """A unified diff, as `git diff` would show it (line endings normalized for display)."""
        lines = difflib.unified_diff(
            self.before.replace("\r\n", "\n").splitlines(keepends=True),
            self.after.replace("\r\n", "\n").splitlines(keepends=True),
            fromfile=self.path if os.path.isabs(self.path) else f"a/{self.path}",
            tofile=self.path if os.path.isabs(self.path) else f"b/{self.path}",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@dataclass(frozen=True, slots=True)
class Promotion:
    """What `promote` would write: changed files, promoted services, and those already equal."""

    source: str
    target: str
    changes: tuple[FileChange, ...]
    promoted: tuple[str, ...]
    unchanged: tuple[str, ...]


def plan_promotion(
    paths: Sequence[str | Path],
    services: Sequence[str],
    *,
    source: str,
    target: str,
    all_services: bool = False,
    env: Mapping[str, str] | None = None,
    select: Callable[[DesiredState], DesiredState] | None = None,
    require_pinned: bool = True,
) -> Promotion:
    """Compute the edits (nothing written); UserError names whatever is refused and why.

    `select`: keep only the services of one environment (`workflow.select_services`
    for --env), so a service declared once per environment (`metadata.environments`)
    is promoted in the document of that environment only.
    `require_pinned`: refuse a source set that leaves a version number unpinned
    (UnpinnedSource); only the text-editing tests turn it off.
    """
    if target.casefold() == EDGE:
        # The API's set names are case-sensitive: '--to EDGE' would create a new set named
        # EDGE beside edge, which is never what someone typing it means.
        cased = (
            f" ('{target}' is not 'edge' to the API, whose set names are case-sensitive: it "
            "would be a new set beside edge, easily mistaken for it)"
            if target != EDGE
            else ""
        )
        raise UserError(
            f"cannot promote to '{EDGE}': the API keeps it at the latest versions and it is "
            f"never declared in manifests{cased}; promote to a declared set such as 'release'"
        )
    if source == target:
        raise PromotionUsage(
            f"--from and --to are both '{source}'; name two different version sets"
        )
    if all_services and services:
        raise PromotionUsage("give service names or --all, not both")
    if not all_services and not services:
        raise PromotionUsage("name the services to promote, or pass --all for every service")
    desired = load_manifests(paths, env)
    if select is not None:
        desired = select(desired)
    chosen = _choose(desired.services, services, source, all_services)
    promoted: list[DesiredService] = []
    unchanged: list[str] = []
    for service in chosen:
        if service.version_sets.get(target) == service.version_sets[source]:
            unchanged.append(service.name)
        else:
            promoted.append(service)
    if require_pinned:
        _refuse_unpinned(promoted, source, target)
    if not promoted:
        names = ", ".join(f"'{n}'" for n in unchanged)
        raise NothingToPromote(
            f"nothing to promote: '{target}' already equals '{source}' for {names}"
        )
    by_file: dict[str, list[DesiredService]] = {}
    for service in promoted:
        by_file.setdefault(service.source.file, []).append(service)
    changes = tuple(
        _promote_file(file, group, source, target, env) for file, group in sorted(by_file.items())
    )
    return Promotion(
        source=source,
        target=target,
        changes=changes,
        promoted=tuple(s.name for s in promoted),
        unchanged=tuple(unchanged),
    )


def _refuse_unpinned(services: Sequence[DesiredService], source: str, target: str) -> None:
    """UnpinnedSource naming each service whose source set leaves a version number unpinned."""
    problems: list[Diagnostic] = []
    unpinned: dict[str, tuple[str, ...]] = {}
    for service in services:
        sets = service.version_sets[source]
        fields = tuple(f for f in PINNED_FIELDS if getattr(sets, f) is None)
        if not fields:
            continue
        unpinned[service.name] = fields
        problems.append(
            Diagnostic(
                f"'{service.name}': '{source}' leaves {' and '.join(fields)} unpinned (latest), "
                f"so '{target}' would float to whatever version is newest when applied, not "
                f"serve what was verified; pin {'them' if len(fields) > 1 else 'it'} in "
                f"'{source}' (the version numbers it was verified with, e.g. from `reconciler "
                "export`) and promote again",
                pos=service.pos(f"spec.version_sets.{source}"),
                service=service.name,
            )
        )
    if problems:
        raise UnpinnedSource(problems, unpinned)


def write_promotion(promotion: Promotion) -> None:
    """Write each changed file atomically (a reader sees the old or the new text, never half)."""
    for change in promotion.changes:
        path = Path(change.path)
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(change.after.encode("utf-8"))
            shutil.copymode(path, name)
            os.replace(name, path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise


def _choose(
    services: Sequence[DesiredService], names: Sequence[str], source: str, all_services: bool
) -> list[DesiredService]:
    if all_services:
        chosen = [s for s in services if source in s.version_sets]
        if not chosen:
            raise UserError(f"no service declares the version set '{source}'")
        return chosen
    problems: list[Diagnostic] = []
    chosen = []
    known = sorted({s.name for s in services})
    for name in dict.fromkeys(names):
        matches = [s for s in services if s.name == name]
        if not matches:
            hint = did_you_mean(name, known) or f"; known: {', '.join(known)}"
            problems.append(Diagnostic(f"no service named '{name}' in the manifests{hint}"))
            continue
        if len(matches) > 1:
            where = ", ".join(str(s.source) for s in matches)
            scoped = all(s.environments is not None for s in matches)
            hint = "; pass --env to promote it in one environment" if scoped else ""
            problems.append(
                Diagnostic(
                    f"{len(matches)} manifests declare a service named '{name}' ({where}){hint}"
                )
            )
            continue
        service = matches[0]
        if source not in service.version_sets:
            declared = ", ".join(sorted(service.version_sets)) or "none"
            hint = did_you_mean(source, sorted(service.version_sets))
            problems.append(
                Diagnostic(
                    f"service '{name}' declares no version set '{source}' "
                    f"(declared: {declared}){hint}",
                    pos=service.pos("spec.version_sets"),
                )
            )
            continue
        chosen.append(service)
    if problems:
        raise UserError(problems)
    return chosen


def _promote_file(
    file: str,
    services: Sequence[DesiredService],
    source: str,
    target: str,
    env: Mapping[str, str] | None,
) -> FileChange:
    with open(file, "rb") as handle:
        before = handle.read().decode("utf-8")
    documents = index_documents(file, before, env)
    wanted = {(s.source.line, s.source.column) for s in services}
    edits: list[tuple[int, int, str]] = []
    for document in documents:
        mark = document.root.start_mark
        if (mark.line + 1, mark.column + 1) in wanted:
            edits.extend(
                _Editor(file, before, document.root).promote(document.index, source, target)
            )
    after = _apply(before, edits)
    promoted = [(s.source.line, s.source.column) for s in services]
    _self_check(file, before, after, promoted, source, target, env)
    return FileChange(file, before, after, tuple(s.name for s in services))


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    ordered = sorted(edits, key=lambda e: (e[0], e[1]))
    for (_, end, _), (start, _, _) in itertools.pairwise(ordered):
        if start < end:  # pragma: no cover - the editor never overlaps its own edits
            raise AssertionError("overlapping edits")
    for start, end, replacement in reversed(ordered):
        text = text[:start] + replacement + text[end:]
    return text


def _project(service: DesiredService) -> tuple[Any, ...]:
    return (service.id, service.declared(), dict(service.version_sets))


def _self_check(
    file: str,
    before: str,
    after: str,
    promoted: Sequence[tuple[int, int]],
    source: str,
    target: str,
    env: Mapping[str, str] | None,
) -> None:
    """Load the edited text with the normal loader: only the target sets may have changed.

    `promoted`: the (line, column) of each promoted document, not its name: one service
    declared once per environment has several documents and only one is promoted."""
    with tempfile.TemporaryDirectory(prefix="reconciler-promote-") as tmp:
        copy = Path(tmp) / Path(file).name
        copy.write_bytes(after.encode("utf-8"))
        try:
            loaded = load_manifests([copy], env).services
        except UserError as exc:
            raise UserError(
                f"{file}: refusing to write: the edited file would not load "
                f"({exc.diagnostics[0].message}); the file is left as it was, please report this"
            ) from None
    original = load_manifests([file], env).services
    expected = []
    for service in original:
        projected = _project(service)
        if (service.source.line, service.source.column) in promoted:
            sets = dict(service.version_sets)
            sets[target] = sets[source]
            projected = (*projected[:-1], sets)
        expected.append(projected)
    if [_project(s) for s in loaded] != expected:
        raise UserError(
            f"{file}: refusing to write: after the edit the manifests would not have "
            f"'{target}' equal to '{source}' with everything else unchanged; the file is "
            "left as it was, please report this"
        )


def _constructed(node: Node) -> Any:
    return SafeConstructor().construct_object(node, deep=True)


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types (so `true` is not `1` and `'4'` is not `4`)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


_OWN_KEYS = frozenset({"verify"})  # per-set settings that promotion does not copy


def _without(value: Any, keys: frozenset[str]) -> Any:
    if keys and isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in keys}
    return value


class _Refused(Exception):
    pass


class _Editor:
    """Minimal text edits inside one document that make the target set equal to the source."""

    def __init__(self, file: str, text: str, root: Node) -> None:
        self.file = file
        self.text = text
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.uses: dict[int, int] = {}
        self._count(root)
        self.anchors = [
            token.start_mark.index
            for token in yaml.scan(text, Loader=yaml.SafeLoader)
            if isinstance(token, yaml.AnchorToken | yaml.AliasToken)
        ]

    def _count(self, node: Node) -> None:
        seen = self.uses.get(id(node), 0)
        self.uses[id(node)] = seen + 1
        if seen:
            return
        if isinstance(node, MappingNode):
            for key, value in node.value:
                self._count(key)
                self._count(value)
        elif isinstance(node, SequenceNode):
            for item in node.value:
                self._count(item)

    def _refuse(self, node: Node, message: str) -> UserError:
        mark = node.start_mark
        return UserError(
            Diagnostic(message, pos=SourcePos(self.file, mark.line + 1, mark.column + 1))
        )

    def promote(
        self, index: Mapping[str, tuple[Node | None, Node]], source: str, target: str
    ) -> list[tuple[int, int, str]]:
        sets_key, sets = index["spec.version_sets"]
        source_key, source_node = index[f"spec.version_sets.{source}"]
        assert sets_key is not None and source_key is not None
        how = "; write the set out in full (no anchors, aliases or '<<' merge keys) to promote it"
        if not isinstance(sets, MappingNode) or not self._plain_subtree(sets_key, sets, deep=False):
            raise self._refuse(
                sets_key, f"'version_sets' is shared through an anchor or alias{how}"
            )
        if not self._direct_child(sets, source_key) or not self._plain_subtree(
            source_key, source_node
        ):
            raise self._refuse(
                source_key,
                f"the '{source}' version set uses an anchor, alias or merge key, so its text "
                f"cannot be copied safely{how}",
            )
        entry = index.get(f"spec.version_sets.{target}")
        try:
            if entry is None:
                return self._add(
                    [],
                    sets,
                    source_key,
                    source_node,
                    target,
                    source_flow=bool(sets.flow_style),
                    skip=_OWN_KEYS,
                )
            target_key, target_node = entry
            assert target_key is not None
            if not self._direct_child(sets, target_key) or not self._plain_subtree(
                target_key, target_node
            ):
                raise self._refuse(
                    target_key,
                    f"the '{target}' version set uses an anchor, alias or merge key, so it "
                    f"cannot be edited safely{how}",
                )
            edits: list[tuple[int, int, str]] = []
            flow = bool(sets.flow_style)
            self._sync(
                edits, target_key, target_node, source_key, source_node, flow, flow, top=True
            )
            return edits
        except _Refused as exc:
            node = entry[0] if entry is not None and entry[0] is not None else sets_key
            raise self._refuse(
                node, f"cannot edit the '{target}' version set safely: {exc}"
            ) from None

    # --- checks ------------------------------------------------------------------

    @staticmethod
    def _direct_child(mapping: MappingNode, key: Node) -> bool:
        return any(k is key for k, _ in mapping.value)

    def _plain_subtree(self, key: Node, node: Node, *, deep: bool = True) -> bool:
        """No node of it used twice (alias, merge) and no anchor token inside its text."""
        if node.start_mark.index < key.end_mark.index or self.uses.get(id(node), 0) > 1:
            return False
        if not deep:
            return True
        stack = [node]
        while stack:
            current = stack.pop()
            if self.uses.get(id(current), 0) > 1:
                return False
            if isinstance(current, MappingNode):
                for k, v in current.value:
                    if v.start_mark.index < k.end_mark.index:
                        return False
                    stack.extend((k, v))
            elif isinstance(current, SequenceNode):
                stack.extend(current.value)
        start, end = key.start_mark.index, self._end(node)
        return not any(start <= at < end for at in self.anchors)

    # --- positions ---------------------------------------------------------------

    def _end(self, node: Node) -> int:
        """Where a value's own text ends (a block collection ends with its last value)."""
        if isinstance(node, MappingNode | SequenceNode) and not node.flow_style and node.value:
            last = node.value[-1]
            return self._end(last[1] if isinstance(node, MappingNode) else last)
        return int(node.end_mark.index)

    def _line_start(self, index: int) -> int:
        return self.text.rfind("\n", 0, index) + 1

    def _entry_end(self, value: Node) -> int:
        """Just past the line break that ends an entry's last line (or the end of the text)."""
        end = self._end(value)
        if end and self.text[end - 1] == "\n":
            return end
        found = self.text.find("\n", end)
        return len(self.text) if found < 0 else found + 1

    def _colon(self, key: Node) -> int:
        found = self.text.find(":", key.end_mark.index)
        if found < 0:  # pragma: no cover - a mapping key is always followed by ':'
            raise _Refused("no ':' after a key")
        return found

    def _key_text(self, key: Node) -> str:
        return self.text[key.start_mark.index : key.end_mark.index]

    # --- text of source values -------------------------------------------------------

    def _flow_text(self, node: Node) -> str:
        """The value as flow-context text: its own text when that is safe, else JSON."""
        own = self.text[node.start_mark.index : node.end_mark.index]
        single = "\n" not in own and "\r" not in own
        if isinstance(node, MappingNode | SequenceNode) and node.flow_style and single:
            return own
        quoted_or_safe = getattr(node, "style", None) in ("'", '"') or not (_FLOW_UNSAFE & set(own))
        if isinstance(node, ScalarNode) and single and quoted_or_safe:
            return own
        return json.dumps(_constructed(node), ensure_ascii=False)

    def _block_value_text(self, key: Node, value: Node, column: int, in_flow: bool) -> str:
        """What follows `key:` for a copy of this entry placed at `column` in a block mapping."""
        if in_flow:
            return " " + self._flow_text(value)
        own = self.text[self._colon(key) + 1 : self._end(value)]
        return self._reindent(own, column - key.start_mark.column)

    def _reindent(self, text: str, delta: int) -> str:
        if delta == 0:
            return text
        lines = text.split("\n")
        for i in range(1, len(lines)):
            line = lines[i]
            body = line.lstrip(" ")
            if body.strip():
                lines[i] = " " * max(0, len(line) - len(body) + delta) + body
        return "\n".join(lines)

    # --- edits -----------------------------------------------------------------------

    def _sync(
        self,
        edits: list[tuple[int, int, str]],
        target_key: Node,
        target: Node,
        source_key: Node,
        source: Node,
        target_in_flow: bool,
        source_in_flow: bool = False,
        *,
        top: bool = False,
    ) -> None:
        """Edits that make `target` (the value of `target_key`) equal to `source`.

        At the top (a version set) the `verify` key is each set's own and left alone.
        """
        skip = _OWN_KEYS if top else frozenset()
        if _same(_without(_constructed(target), skip), _without(_constructed(source), skip)):
            return
        if isinstance(target, MappingNode) and isinstance(source, MappingNode) and source.value:
            if target.flow_style and (target_in_flow or source.flow_style):
                edits.append(self._rebuild_flow(target, source, skip))
                return
            if target.flow_style:  # `{}` or `{...}` in a block: take the source's block text
                replacement = self._block_value_text(
                    source_key, source, target_key.start_mark.column, source_in_flow
                )
                edits.append((self._colon(target_key) + 1, self._end(target), replacement))
                return
            self._sync_block(edits, target, source, skip)
            return
        if (
            isinstance(target, ScalarNode)
            and isinstance(source, ScalarNode)
            and "\n" not in self.text[source.start_mark.index : source.end_mark.index]
            and "\n" not in self.text[target.start_mark.index : target.end_mark.index]
        ):
            text = (
                self._flow_text(source)
                if target_in_flow
                else self.text[source.start_mark.index : source.end_mark.index]
            )
            edits.append((target.start_mark.index, target.end_mark.index, text))
            return
        if target_in_flow:
            edits.append((target.start_mark.index, target.end_mark.index, self._flow_text(source)))
            return
        colon = self._colon(target_key)
        replacement = self._block_value_text(
            source_key, source, target_key.start_mark.column, source_in_flow
        )
        if isinstance(source, MappingNode) and not source.value:
            replacement = " {}"
        edits.append((colon + 1, self._end(target), replacement))

    def _sync_block(
        self,
        edits: list[tuple[int, int, str]],
        target: MappingNode,
        source: MappingNode,
        skip: frozenset[str],
    ) -> None:
        by_key = {_constructed(k): (k, v) for k, v in target.value}
        source_keys = set(skip)
        added: list[tuple[Node, Node]] = []
        for key, value in source.value:
            name = _constructed(key)
            if name in skip:
                continue
            source_keys.add(name)
            if name in by_key:
                t_key, t_value = by_key[name]
                self._sync(edits, t_key, t_value, key, value, False, bool(source.flow_style))
            else:
                added.append((key, value))
        for name, (key, value) in by_key.items():
            if name not in source_keys:
                start = self._line_start(key.start_mark.index)
                if self.text[start : key.start_mark.index].strip(" "):
                    raise _Refused(f"the key '{name}' does not start its own line")
                edits.append((start, self._entry_end(value), ""))
        if added:
            self._add(
                edits, target, *added[0], None, more=added[1:], source_flow=bool(source.flow_style)
            )

    def _add(
        self,
        edits: list[tuple[int, int, str]],
        mapping: MappingNode,
        key: Node,
        value: Node,
        rename: str | None,
        *,
        source_flow: bool,
        more: Sequence[tuple[Node, Node]] = (),
        skip: frozenset[str] = frozenset(),
    ) -> list[tuple[int, int, str]]:
        """Add entries (copies of source entries, the first renamed if asked) to a mapping.

        Keys in `skip` are left out of copied mapping values (a set's own `verify`).
        """
        entries = [(key, value, rename), *((k, v, None) for k, v in more)]
        if mapping.flow_style or not mapping.value:
            end = mapping.end_mark.index
            if self.text[end - 1 : end] != "}":
                raise _Refused("a flow mapping that does not end with '}'")
            inner = self.text[mapping.start_mark.index + 1 : end - 1]
            parts = [
                f"{rename or self._key_text(k)}: "
                + (self._flow_without(v, skip) if self._drops(v, skip) else self._flow_text(v))
                for k, v, rename in entries
            ]
            separator = ", " if inner.strip() else ""
            tail = inner.rstrip()
            edits.append(
                (mapping.start_mark.index + 1 + len(tail), end - 1, separator + ", ".join(parts))
            )
            return edits
        first_key = mapping.value[0][0]
        column = first_key.start_mark.column
        if self.text[
            self._line_start(first_key.start_mark.index) : first_key.start_mark.index
        ].strip(" "):
            raise _Refused("its first key does not start its own line")
        at = self._entry_end(mapping.value[-1][1])
        lead = "" if at == 0 or self.text[at - 1] == "\n" else self.newline
        lines = []
        for k, v, name in entries:
            value_text = (
                self._block_without(k, v, column, source_flow, skip)
                if self._drops(v, skip)
                else self._block_value_text(k, v, column, source_flow)
            )
            lines.append(" " * column + (name or self._key_text(k)) + ":" + value_text)
        block = lead + self.newline.join(lines) + self.newline
        edits.append((at, at, block))
        return edits

    @staticmethod
    def _drops(value: Node, skip: frozenset[str]) -> TypeGuard[MappingNode]:
        return (
            bool(skip)
            and isinstance(value, MappingNode)
            and any(_constructed(k) in skip for k, _ in value.value)
        )

    def _flow_without(self, value: MappingNode, skip: frozenset[str]) -> str:
        parts = [
            f"{self._key_text(k)}: {self._flow_text(v)}"
            for k, v in value.value
            if _constructed(k) not in skip
        ]
        return "{" + ", ".join(parts) + "}"

    def _block_without(
        self, key: Node, value: MappingNode, column: int, source_flow: bool, skip: frozenset[str]
    ) -> str:
        """A copy of a block mapping value without the `skip` entries, placed at `column`."""
        kept = [(k, v) for k, v in value.value if _constructed(k) not in skip]
        if not kept:
            return " {}"
        own_lines = all(
            not self.text[self._line_start(k.start_mark.index) : k.start_mark.index].strip(" ")
            for k, _ in kept
        )
        if source_flow or value.flow_style or not own_lines:
            return " " + self._flow_without(value, skip)
        body = "".join(
            self.text[self._line_start(k.start_mark.index) : self._entry_end(v)] for k, v in kept
        )
        return self._reindent(self.newline + body.rstrip("\r\n"), column - key.start_mark.column)

    def _rebuild_flow(
        self, target: MappingNode, source: MappingNode, skip: frozenset[str]
    ) -> tuple[int, int, str]:
        """A flow mapping that changes shape is rewritten whole (it is one short span)."""
        by_key = {_constructed(k): (k, v) for k, v in target.value}
        parts = [
            self.text[k.start_mark.index : v.end_mark.index]
            for k, v in target.value
            if _constructed(k) in skip
        ]
        for key, value in source.value:
            name = _constructed(key)
            if name in skip:
                continue
            if name in by_key:
                t_key, t_value = by_key[name]
                if _same(_constructed(t_value), _constructed(value)):
                    parts.append(self.text[t_key.start_mark.index : t_value.end_mark.index])
                    continue
                parts.append(f"{self._key_text(t_key)}: {self._flow_text(value)}")
            else:
                parts.append(f"{self._key_text(key)}: {self._flow_text(value)}")
        return target.start_mark.index, target.end_mark.index, "{" + ", ".join(parts) + "}"

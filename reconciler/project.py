"""The project file, `reconciler.yaml`: the environments one manifest tree is applied to.

Found with `find_project` (`--config FILE`, else the first `reconciler.yaml` in the
common parent directory of the manifest paths — the current directory when none are
given — or above it, up to the repository root: the first directory holding `.git`).
Validated like a manifest: every problem is a Diagnostic at file:line:column, unknown
keys get a "did you mean". The documented shape is schemas/project.schema.json.

It holds names, never secrets: the `credentials` of an environment are the *names*
of the variables holding them, and a value that looks like a key is refused.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.diagnostics import (
    Diagnostic,
    Severity,
    SourcePos,
    UsageProblem,
    UserError,
    close_matches,
)

PROJECT_FILE = "reconciler.yaml"
ALL = "all"  # `--env all`: every environment, one report
MAX_PROJECT_BYTES = 1_000_000

# credentials key -> the AMIGO_* setting it fills (and its default variable name)
CREDENTIALS: Mapping[str, str] = {
    "api_key": "AMIGO_API_KEY",
    "api_key_id": "AMIGO_API_KEY_ID",
    "user_id": "AMIGO_USER_ID",
}
# Keys an environment (and the top level, as defaults) may set.
SETTINGS = (
    "organization",
    "base_url",
    "credentials",
    "variables",
    "prune",
    "paths",
    "policy",
    "policy_timeout",
    "mongo_cluster",
)
TOP_LEVEL = ("version", "environments", *SETTINGS)

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRETISH_NAME_RE = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD)", re.IGNORECASE)
_SECRET_PREFIXES = ("sk-", "ghp_", "gho_", "github_pat_", "xoxb-", "AKIA", "eyJ")


@dataclass(frozen=True)
class Environment:
    """One environment with the top-level defaults filled in."""

    name: str
    organization: str | None = None
    base_url: str | None = None
    credentials: Mapping[str, str] = field(default_factory=dict)  # key -> variable *name*
    variables: Mapping[str, str] = field(default_factory=dict)
    prune: bool = False
    paths: tuple[str, ...] = ()  # as written: relative to the project file's directory
    policy: tuple[str, ...] = ()  # likewise
    policy_timeout: float | None = None  # seconds; --policy-timeout overrides it
    mongo_cluster: str | None = None
    source: SourcePos | None = None

    def summary(self) -> dict[str, Any]:
        """What `reconciler environments --format json` lists (no values of credentials)."""
        return {
            "name": self.name,
            "organization": self.organization,
            "base_url": self.base_url,
            "credentials": dict(self.credentials),
            "prune": self.prune,
            "paths": list(self.paths),
            "policy": list(self.policy),
            "policy_timeout": self.policy_timeout,
            "mongo_cluster": self.mongo_cluster,
        }


@dataclass(frozen=True)
class Project:
    """The parsed project file: its top-level defaults and its environments, in file order."""

    path: str
    defaults: Environment
    environments: tuple[Environment, ...]
    # Not errors, said once when the file is loaded (e.g. a credential named GITHUB_TOKEN).
    warnings: tuple[Diagnostic, ...] = ()

    @property
    def root(self) -> Path:
        """The directory the `paths` and `policy` entries are relative to."""
        return Path(self.path).parent

    def resolve(self, paths: Sequence[str]) -> tuple[str, ...]:
        return tuple(os.path.normpath(self.root / p) for p in paths)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(env.name for env in self.environments)

    def environment(self, name: str) -> Environment:
        """The environment called `name`; UserError with a "did you mean" and the list."""
        for env in self.environments:
            if env.name == name:
                return env
        close = close_matches(name, self.names, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        known = ", ".join(self.names) or "(none)"
        raise UsageProblem(
            f"--env {name!r}: no such environment in {self.path}; {hint}known: {known}"
        )


# --- finding -----------------------------------------------------------------------


def find_project(config: str | None, paths: Sequence[str], cwd: Path | None = None) -> Path | None:
    """`config` if given (it must exist), else the nearest `reconciler.yaml` (module doc)."""
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise UserError(f"--config {config}: no such file")
        return path
    return _shown(_nearest(paths, (cwd or Path.cwd()).resolve()))


def _shown(found: Path | None) -> Path | None:
    """Relative to the current directory when under it, so messages name short paths."""
    if found is None:
        return None
    try:
        return found.relative_to(Path.cwd().resolve())
    except ValueError:
        return found


def _nearest(paths: Sequence[str], here: Path) -> Path | None:
    starts = [(here / p).resolve() for p in paths] or [here]
    dirs = [p if p.is_dir() else p.parent for p in starts]
    common = Path(os.path.commonpath([str(d) for d in dirs]))
    for directory in (common, *common.parents):
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            return candidate
        if (directory / ".git").exists():
            return None
    return None


# --- loading -----------------------------------------------------------------------


def _pos(display: str, node: Node) -> SourcePos:
    return SourcePos(display, node.start_mark.line + 1, node.start_mark.column + 1)


def _did_you_mean(word: str, candidates: Sequence[str]) -> str:
    close = close_matches(word, candidates)
    return f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(candidates)}"


def _looks_like_secret(value: str) -> bool:
    """A value someone pasted a key into: a known key prefix, or long and random-looking."""
    text = value.strip()
    if text.startswith(_SECRET_PREFIXES):
        return True
    if len(text) < 32 or " " in text or "/" in text:
        return False
    counts = {c: text.count(c) for c in set(text)}
    entropy = -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
    has_digit = any(c.isdigit() for c in text)
    has_alpha = any(c.isalpha() for c in text)
    return entropy > 4.0 and has_digit and has_alpha


# Variables a shell or CI runner sets itself: never an Amigo credential.
_RUNNER_VARIABLES = frozenset(
    [
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "PWD",
        "TMPDIR",
        "LANG",
        "CI",
        "HOSTNAME",
        "ACTIONS_RUNTIME_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
    ]
)
_RUNNER_PREFIXES = ("GITHUB_", "RUNNER_", "ACTIONS_")


class _Reader:
    def __init__(self, display: str) -> None:
        self.display = display
        self.diagnostics: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []

    def error(self, node: Node, message: str) -> None:
        self.diagnostics.append(Diagnostic(message, pos=_pos(self.display, node)))

    def mapping(
        self, node: Node, where: str, *, check_again: Callable[[str, Node], object] | None = None
    ) -> list[tuple[str, Node, Node]]:
        """The string-keyed entries; a key given twice is an error, and its second value is
        still passed to `check_again` so every mistake in the file is reported at once."""
        if not isinstance(node, MappingNode):
            self.error(node, f"{where} must be a mapping")
            return []
        seen: set[str] = set()
        items: list[tuple[str, Node, Node]] = []
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.error(key, f"{where}: keys must be plain strings")
                continue
            if key.value in seen:
                self.error(key, f"{where}: {key.value!r} is given twice")
                if check_again is not None:
                    check_again(key.value, value)
                continue
            seen.add(key.value)
            items.append((key.value, key, value))
        return items

    def string(self, node: Node, where: str) -> str | None:
        if not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:str":
            self.error(node, f"{where} must be a string")
            return None
        if not node.value.strip():
            self.error(node, f"{where} must not be empty")
            return None
        return str(node.value)

    def strings(self, node: Node, where: str) -> tuple[str, ...]:
        if isinstance(node, ScalarNode):  # one path may be written without a list
            one = self.string(node, where)
            return (one,) if one is not None else ()
        if not isinstance(node, SequenceNode):
            self.error(node, f"{where} must be a list of strings")
            return ()
        found = (self.string(item, f"{where}[{i}]") for i, item in enumerate(node.value))
        return tuple(s for s in found if s is not None)

    def settings(self, node: Node, where: str, allowed: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, key_node, value in self.mapping(node, where):
            here = f"{where}.{key}" if where else key
            if key not in allowed:
                self.error(key_node, f"unknown key {here!r}{_did_you_mean(key, allowed)}")
            elif key in ("organization", "base_url", "mongo_cluster"):
                text = self.string(value, here)
                if text is not None and key == "mongo_cluster" and not _header_safe(text):
                    self.error(value, f"{here} must be printable ASCII without spaces")
                    text = None
                if text is not None and key == "base_url" and not self.base_url(value, text, here):
                    text = None
                if text is not None:
                    out[key] = text
            elif key == "prune":
                if not (isinstance(value, ScalarNode) and value.tag == "tag:yaml.org,2002:bool"):
                    self.error(value, f"{here} must be true or false")
                else:
                    out[key] = value.value.lower() in ("true", "yes", "on")
            elif key in ("paths", "policy"):
                out[key] = self.strings(value, here)
            elif key == "policy_timeout":
                seconds = _seconds(value)
                if seconds is None:
                    self.error(value, f"{here} must be a number of seconds greater than 0")
                else:
                    out[key] = seconds
            elif key == "credentials":
                out[key] = self.credentials(value, here)
            elif key == "variables":
                out[key] = self.variables(value, here)
            elif key == "version" and not (isinstance(value, ScalarNode) and value.value == "1"):
                self.error(value, f"{here} must be 1 (the only project file version)")
        return out

    def base_url(self, node: Node, text: str, where: str) -> bool:
        """The API's rules for a base URL, at the line: userinfo or a query is never echoed."""
        from reconciler.api.config import check_base_url
        from reconciler.api.errors import ConfigError

        try:
            check_base_url(text, source=where)
        except ConfigError as exc:
            self.error(node, str(exc))
            return False
        return True

    def credentials(self, node: Node, where: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, key_node, value in self.mapping(node, where):
            here = f"{where}.{key}"
            if key not in CREDENTIALS:
                self.error(key_node, f"unknown key {here!r}{_did_you_mean(key, list(CREDENTIALS))}")
                continue
            name = self.string(value, here)
            if name is None:
                continue
            if not _VARIABLE_RE.match(name) or _looks_like_secret(name):
                # Never echo it: it may be the secret itself.
                self.error(
                    value,
                    f"{here} must name the environment variable holding it (e.g. "
                    f"STAGING_{CREDENTIALS[key]}), not give its value: secrets never go in "
                    f"{PROJECT_FILE}",
                )
                continue
            if name in _RUNNER_VARIABLES or name.startswith(_RUNNER_PREFIXES):
                self.warnings.append(
                    Diagnostic(
                        f"{here} names {name}, a variable the shell or CI runner sets itself: "
                        "its value would be sent to the Amigo API as the credential (a GitHub "
                        "token leaving GitHub); name the variable that holds the Amigo one",
                        pos=_pos(self.display, value),
                        severity=Severity.WARNING,
                    )
                )
            out[key] = name
        return out

    def variables(self, node: Node, where: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, key_node, value in self.mapping(node, where):
            here = f"{where}.{key}"
            if not _VARIABLE_RE.match(key):
                self.error(key_node, f"{here}: a variable name is letters, digits and _")
                continue
            if key in CREDENTIALS.values() or _SECRETISH_NAME_RE.search(key):
                self.error(
                    key_node,
                    f"{here}: a variable named like a secret does not belong in {PROJECT_FILE} "
                    "(secrets stay in the CI's secret store)",
                )
                continue
            if not isinstance(value, ScalarNode) or value.tag.endswith(":null"):
                self.error(value, f"{here} must be a string, number or boolean")
                continue
            if _looks_like_secret(value.value):
                self.error(
                    value,
                    f"{here}: this value looks like a secret (a key or token); secrets never "
                    f"go in {PROJECT_FILE}",
                )
                continue
            out[key] = str(value.value)
        return out


def _seconds(node: Node) -> float | None:
    """A positive int or float scalar (not a string, not a bool), else None."""
    if not isinstance(node, ScalarNode) or node.tag not in (
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
    ):
        return None
    try:
        value = float(node.value)
    except ValueError:
        return None
    return value if 0 < value < float("inf") else None


def _header_safe(text: str) -> bool:
    return all(33 <= ord(c) < 127 for c in text)


def load_project(path: str | Path) -> Project:
    """Parse and validate the project file; UserError with every problem at file:line:column."""
    file = Path(path)
    display = str(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise UserError(f"{display}: cannot read the project file ({exc.strerror})") from None
    if len(data) > MAX_PROJECT_BYTES:
        raise UserError(f"{display}: the project file is larger than {MAX_PROJECT_BYTES} bytes")
    try:
        root = yaml.compose(data, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        pos = SourcePos(display, mark.line + 1, mark.column + 1) if mark else None
        raise UserError([Diagnostic(f"invalid YAML: {exc.problem}", pos=pos)]) from None
    except yaml.YAMLError as exc:
        raise UserError(f"{display}: invalid YAML ({exc})") from None
    if root is None:
        raise UserError(f"{display}: the project file is empty; it needs `environments:`")
    reader = _Reader(display)
    top = reader.settings(root, "", TOP_LEVEL)
    defaults = Environment(name="", **top)
    environments: list[Environment] = []
    env_node = next(
        (
            v
            for k, v in (root.value if isinstance(root, MappingNode) else ())
            if k.value == "environments"
        ),
        None,
    )
    if env_node is None:
        reader.error(root, "the project file needs `environments:` (a mapping of name -> settings)")
    else:

        def settings_of_duplicate(name: str, value: Node) -> object:
            return reader.settings(value, f"environments.{name}", SETTINGS)

        entries = reader.mapping(env_node, "environments", check_again=settings_of_duplicate)
        for name, key_node, value in entries:
            if name == ALL or not _NAME_RE.match(name):
                reader.error(
                    key_node,
                    f"environment name {name!r}: lower-case letters, digits, - and _ "
                    f"(starting with a letter or digit), and not {ALL!r}",
                )
                continue
            own = reader.settings(value, f"environments.{name}", SETTINGS)
            merged = {**top, **own}
            merged["credentials"] = {**top.get("credentials", {}), **own.get("credentials", {})}
            merged["variables"] = {**top.get("variables", {}), **own.get("variables", {})}
            environments.append(Environment(name=name, source=_pos(display, key_node), **merged))
            if not merged.get("organization"):
                reader.error(key_node, f"environment {name!r} needs an organization")
        if not environments and not reader.diagnostics:
            reader.error(env_node, "`environments:` lists no environment")
    if reader.diagnostics:
        raise UserError(reader.diagnostics)
    return Project(display, defaults, tuple(environments), tuple(reader.warnings))


# --- a selection: what one command run takes from the project file ------------------

ENV_MONGO_CLUSTER = "AMIGO_MONGO_CLUSTER_NAME"
# Where an environment's plan goes: (variable, flag, Environment field). A stray variable
# that disagrees with the file is refused; a flag overrides it, shown on the plan.
_BOUNDARY = (
    ("AMIGO_ORGANIZATION_ID", "--organization", "organization"),
    ("AMIGO_BASE_URL", "--base-url", "base_url"),
)


def _same_form(key: str, text: str | None) -> str | None:
    """A value as compared: base URLs without a trailing slash."""
    if text is None:
        return None
    text = text.strip()
    return text.rstrip("/") if key == "AMIGO_BASE_URL" else text


@dataclass(frozen=True)
class Selection:
    """The project file (if any) and the environment chosen with --env (if any).

    Precedence, everywhere: a flag, then an AMIGO_* variable, then the environment's
    setting, then the top-level default. Credentials are read from the variables the
    environment names (AMIGO_API_KEY, AMIGO_API_KEY_ID, AMIGO_USER_ID by default).
    """

    project: Project | None = None
    environment: Environment | None = None

    @property
    def name(self) -> str | None:
        return self.environment.name if self.environment is not None else None

    @property
    def _settings(self) -> Environment | None:
        if self.environment is not None:
            return self.environment
        return self.project.defaults if self.project is not None else None

    def variables(self, process: Mapping[str, str]) -> dict[str, str]:
        """What fills `${VAR}`.

        With --env, the environment's `variables` (over the top level's) win over the
        process environment, which fills only the names the file leaves unset: a stray
        variable in a shell or runner never changes what an environment's plan says.
        Without --env, as before: the process environment over the top-level defaults.
        """
        own = self._settings
        declared = own.variables if own is not None else {}
        if self.environment is not None:
            return {**process, **declared}
        return {**declared, **process}

    def overrides(self, flags: Mapping[str, str | None]) -> tuple[str, ...]:
        """What a flag given explicitly changes from the environment's file values, said
        the way every rendering of the plan shows it."""
        env = self.environment
        if env is None or self.project is None:
            return ()
        notes = []
        for key, flag, setting in _BOUNDARY:
            mine = _same_form(key, getattr(env, setting))
            given = flags.get(key)
            if given and mine and _same_form(key, given) != mine:
                notes.append(
                    f"{setting} {given} (from {flag}, overriding {self.project.path}: {mine})"
                )
        return tuple(notes)

    def _refuse_stray(self, flags: Mapping[str, str | None], process: Mapping[str, str]) -> None:
        """The organization is the safety boundary: with --env, an AMIGO_* variable that
        disagrees with the file's value is refused, never silently preferred (a flag,
        given explicitly, may override; `overrides` says so)."""
        env = self.environment
        if env is None or self.project is None:
            return
        for key, flag, setting in _BOUNDARY:
            mine = getattr(env, setting)
            stray = process.get(key, "").strip()
            if flags.get(key) or not mine or not stray:
                continue
            if _same_form(key, stray) != _same_form(key, mine):
                raise UserError(
                    f"environment {env.name!r}: {key}={stray!r} (from the process "
                    f"environment) differs from {setting} {mine!r} (from {self.project.path}, "
                    f"environment {env.name!r}); unset {key} (the file names the "
                    f"{setting} with --env), or pass {flag} {stray} to override it explicitly"
                )

    def manifest_paths(self, given: Sequence[str]) -> tuple[str, ...]:
        """The PATHs given, else the environment's `paths` (UserError if neither)."""
        if given:
            return tuple(given)
        own = self._settings
        if own is not None and own.paths and self.project is not None:
            return self.project.resolve(own.paths)
        if self.name:
            raise UserError(
                f"Missing argument 'PATHS...': environment {self.name!r} sets no `paths`; "
                "name files or directories of manifests"
            )
        raise UserError(
            "Missing argument 'PATHS...': name files or directories of manifests "
            "(or --env NAME, for an environment of reconciler.yaml that sets `paths`)"
        )

    def prune(self, flag: bool) -> bool:
        own = self._settings
        return flag or (own.prune if own is not None else False)

    def policy(self, given: Sequence[str]) -> tuple[str, ...]:
        """--policy if given, else the environment's `policy` paths."""
        if given:
            return tuple(given)
        own = self._settings
        if own is None or self.project is None:
            return ()
        return self.project.resolve(own.policy)

    def policy_timeout(self, flag: float | None) -> float | None:
        """--policy-timeout if given, else the environment's `policy_timeout` (None: default)."""
        if flag is not None:
            return flag
        own = self._settings
        return own.policy_timeout if own is not None else None

    def mongo_cluster(self, flag: str | None, process: Mapping[str, str]) -> str | None:
        """--mongo-cluster, else AMIGO_MONGO_CLUSTER_NAME, else the environment's (None: unset)."""
        if flag:
            return flag
        if process.get(ENV_MONGO_CLUSTER, "").strip():
            return process[ENV_MONGO_CLUSTER].strip()
        return self.environment.mongo_cluster if self.environment is not None else None

    def settings(
        self, flags: Mapping[str, str | None], process: Mapping[str, str]
    ) -> dict[str, str | None]:
        """The AMIGO_* settings for the client: flag, else variable, else the file."""
        out = dict(flags)
        env = self.environment
        if env is None:
            return out
        self._refuse_stray(out, process)
        own = {
            "AMIGO_ORGANIZATION_ID": env.organization,
            "AMIGO_BASE_URL": env.base_url,
            ENV_MONGO_CLUSTER: env.mongo_cluster,
        }
        for key, value in own.items():
            if not out.get(key) and not process.get(key, "").strip():
                out[key] = value
        missing: list[str] = []
        for key, setting in CREDENTIALS.items():
            name = env.credentials.get(key, setting)
            if out.get(setting):
                continue  # a flag (--api-key-id, --user-id)
            value = process.get(name, "").strip()
            if not value:
                missing.append(f"{name} (environment {env.name!r}: credentials.{key})")
            out[setting] = value or None
        if missing:
            raise UserError(
                f"environment {env.name!r}: not set: {', '.join(missing)}; export them "
                "(in CI: from the GitHub environment's secrets), or pass --emulator"
            )
        return out

"""`${VAR}` filling: values from the environment, never the reconciler's own credentials.

A manifest may say `${TEAM}` or `${TEAM:-default}`; `$${` is a literal `${`. The
reconciler's credential variables, and any value that holds the API key, are
refused: a filled value is sent to the API and shown in plans, comments and
plan files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.api.config import ENV_API_KEY
from reconciler.redaction import CREDENTIAL_VARIABLES, SECRET_VARIABLES

_ENV_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class VariableProblem:
    """What is wrong with a reference; `offset` into the text, None for the whole value."""

    offset: int | None
    message: str


def fill(
    text: str,
    env: Mapping[str, str],
    api_key: str | None,
    filled_names: list[str],
    *,
    reported: bool = False,
) -> tuple[str, list[VariableProblem]]:
    """Replace `${VAR}` / `${VAR:-default}` from `env`; `$${` is a literal `${`.

    Returns the filled text and the problems; a reference with a problem stays as
    written. `filled_names` collects `NAME=value` of every filled reference (the
    loader's digest covers them). `reported`: the value already has an error, so
    no second one for a filled value that holds the API key.
    """
    problems: list[VariableProblem] = []

    def report(offset: int | None, message: str) -> None:
        problems.append(VariableProblem(offset, message))

    out: list[str] = []
    last = 0
    for match in _ENV_REFERENCE.finditer(text):
        out.append(text[last : match.start()])
        last = match.end()
        token = match.group(0)
        if token == "$${":
            out.append("${")
            continue
        inner = match.group(1)
        if inner is None:
            report(
                match.start(),
                "'${' without a closing '}'; write '$${' for a literal '${'",
            )
            out.append(token)
            continue
        name, sep, default = inner.partition(":-")
        if not _ENV_NAME.match(name):
            report(
                match.start(),
                f"'{token}' is not a variable reference: use ${{NAME}} or "
                "${NAME:-default} (NAME of letters, digits and '_'); write '$${' for a literal '${'",
            )
            out.append(token)
            continue
        if "${" in default:
            report(
                match.start() + len("${") + len(name) + len(":-") + default.index("${"),
                f"the default of ${{{name}:-...}} holds '${{': nested references are "
                f"not expanded, and a default may not contain '${{'; set {name}, or "
                "write the default as plain text",
            )
            out.append(token)
            continue
        if name in CREDENTIAL_VARIABLES:
            what = "API key, a secret" if name in SECRET_VARIABLES else "credentials"
            report(
                match.start(),
                f"${{{name}}} is the reconciler's own {what}; a manifest may not use it "
                "(its value would be sent to the API and shown in plans, comments and "
                "plan files); remove the reference",
            )
            out.append(token)
            continue
        value = env.get(name)
        from_default = False
        if value is None or (sep and value == ""):
            from_default = True
            if not sep:
                report(
                    match.start(),
                    f"environment variable {name} is not set; set it, or give a default: "
                    f"${{{name}:-value}}",
                )
                out.append(token)
                continue
            value = default
        if api_key is not None and api_key in value and from_default:
            report(
                match.start() + len("${") + len(name) + len(":-"),
                f"the default of ${{{name}:-...}} holds the API key ({ENV_API_KEY}), "
                "written literally in the manifest; a manifest may not hold it (it would "
                "be sent to the API and shown in plans): remove it from the file, and "
                "rotate the key, as the file may already be in a repository",
            )
            out.append(token)
            continue
        if api_key is not None and api_key in value:
            report(
                match.start(),
                f"the value of ${{{name}}} holds the API key ({ENV_API_KEY}); a manifest "
                "may not use it (it would be sent to the API and shown in plans); "
                f"use another variable, or unset {name}",
            )
            out.append(token)
            continue
        filled_names.append(f"{name}={value}")
        out.append(value)
    out.append(text[last:])
    filled = "".join(out)
    if api_key is not None and not (reported or problems) and api_key in filled:
        report(
            None,
            f"the filled value holds the API key ({ENV_API_KEY}); a manifest may not "
            "use it (it would be sent to the API and shown in plans)",
        )
        return text, problems
    return filled, problems

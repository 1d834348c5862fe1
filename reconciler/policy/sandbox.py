"""Policy evaluation in a child process: a policy cannot crash, hang or exhaust the reconciler.

Rego is a full language: a recursive function overflows the engine's stack
(SIGSEGV, no message), and a comprehension over `numbers.range(1, 1e8)` runs for
minutes and takes gigabytes. The engine runs in `python -I -m
reconciler.policy.worker` under an address-space and CPU limit, with a
wall-clock timeout; a death, timeout or limit is one `PolicyError` naming the
policy files, raised before anything is written.

Protocol: stdin is one JSON header line (`op`, `modules`, `namespaces`) then the
input document as JSON text; stdout is one JSON object (`findings`, `tests`,
`ok` or `error`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.diagnostics import Diagnostic, SourcePos, UserError
from reconciler.policy.engine import EngineMissing, Module, PolicyError, ensure_engine

DEFAULT_TIMEOUT = 30.0
DEFAULT_MEMORY_MB = 2048


@dataclass(frozen=True, slots=True)
class Limits:
    """How long (wall clock, seconds) and how much memory (MiB) one policy evaluation may take."""

    timeout: float = DEFAULT_TIMEOUT
    memory_mb: int = DEFAULT_MEMORY_MB


class Policies(tuple[Module, ...]):
    """Loaded policy modules with the limits their evaluation runs under."""

    limits: Limits

    def __new__(cls, modules: Sequence[Module], limits: Limits | None = None) -> Policies:
        self = super().__new__(cls, modules)
        self.limits = limits or Limits()
        return self


def limits_of(modules: Sequence[Module]) -> Limits:
    return modules.limits if isinstance(modules, Policies) else Limits()


def _files(modules: Sequence[Module]) -> str:
    names = [m.path for m in modules]
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def worker_command(limits: Limits) -> list[str]:
    """The child's command line: this interpreter, isolated (no cwd, PYTHON* or user site).

    The child sets its own resource limits first thing (no preexec_fn: not safe
    when the parent has threads).
    """
    cpu = int(limits.timeout) + 2
    return [
        sys.executable, "-I", "-m", "reconciler.policy.worker",
        str(limits.memory_mb), str(cpu),
    ]  # fmt: skip


def run(
    op: str,
    modules: Sequence[Module],
    *,
    input_text: str = "null",
    namespaces: Sequence[str] = (),
    limits: Limits | None = None,
) -> dict[str, Any]:
    """Run `op` in the worker; its JSON answer, or PolicyError saying what went wrong."""
    ensure_engine()  # "how to install it" here, not a child's failure
    limits = limits or limits_of(modules)
    header = {
        "op": op,
        "modules": [{"path": m.path, "text": m.text} for m in modules],
        "namespaces": list(namespaces),
    }
    payload = (json.dumps(header) + "\n" + input_text).encode("utf-8")
    command = worker_command(limits)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")}
    what = f"policy evaluation ({_files(modules)})"
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
    except OSError as exc:
        raise PolicyError(f"{what} could not start: {exc.strerror or exc}") from None
    try:
        out, err = proc.communicate(payload, timeout=limits.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise PolicyError(
            f"{what} exceeded {limits.timeout:g} s (a runaway rule or comprehension? "
            "raise --policy-timeout if the policies are just slow)"
        ) from None
    except BaseException:  # Ctrl-C: the child goes too
        proc.kill()
        proc.wait()
        raise
    stderr = err.decode("utf-8", "replace")
    try:
        answer = json.loads(out) if out else None
    except ValueError:
        answer = None
    if isinstance(answer, dict) and proc.returncode == 0:
        if "error" in answer:
            raise _error(answer["error"])
        return answer
    raise PolicyError(_death(what, proc.returncode, stderr, limits))


def _error(error: dict[str, Any]) -> UserError:
    if error.get("missing"):
        return EngineMissing(str(error["message"]))
    pos = error.get("pos")
    where = SourcePos(str(pos[0]), int(pos[1]), int(pos[2])) if pos else None
    return PolicyError(Diagnostic(str(error["message"]), pos=where))


def _death(what: str, code: int | None, stderr: str, limits: Limits) -> str:
    if "memory allocation" in stderr or "MemoryError" in stderr:
        return f"{what} exceeded its memory limit ({limits.memory_mb} MiB)"
    if code is not None and code < 0:
        sig = -code
        if sig in (signal.SIGXCPU, signal.SIGKILL):
            return f"{what} exceeded {limits.timeout:g} s of CPU"
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        hint = " (a recursive rule or function?)" if sig == signal.SIGSEGV else ""
        return f"{what} crashed with {name}{hint}"
    last = [line for line in stderr.splitlines() if line.strip()][-1:] or ["no output"]
    return f"{what} failed (exit {code}): {last[0][:200]}"

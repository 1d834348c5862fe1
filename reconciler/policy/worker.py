"""The policy sandbox's child process (`python -I -m reconciler.policy.worker`).

Reads the request reconciler.policy.sandbox writes (a JSON header line, then the
input document) and answers with one JSON object on stdout. Any failure the
engine reports becomes `{"error": ...}`; a crash or limit kills the process and
the parent says so.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from reconciler.policy import compile_here, evaluate_here, run_tests_here
from reconciler.policy.engine import EngineMissing, Module, PolicyError


def _answer(request: dict[str, Any], input_text: str) -> dict[str, Any]:
    modules = [Module(str(m["path"]), str(m["text"])) for m in request["modules"]]
    op = request["op"]
    if op == "compile":
        compile_here(modules)
        return {"ok": True}
    if op == "evaluate":
        return {"findings": evaluate_here(modules, input_text, request["namespaces"])}
    if op == "tests":
        return {"tests": run_tests_here(modules)}
    raise ValueError(f"unknown operation {op!r}")


def _limit(memory_mb: int, cpu_seconds: int) -> None:
    """Address space and CPU time, before anything is read (argv from the parent)."""
    try:
        import resource
    except ImportError:  # not POSIX: the parent's wall-clock timeout still holds
        return
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main() -> int:
    if len(sys.argv) == 3:
        _limit(int(sys.argv[1]), int(sys.argv[2]))
    data = sys.stdin.buffer.read()
    head, _, rest = data.partition(b"\n")
    try:
        answer = _answer(json.loads(head), rest.decode("utf-8") or "null")
    except EngineMissing as exc:
        answer = {"error": {"message": exc.diagnostics[0].message, "missing": True}}
    except PolicyError as exc:
        diag = exc.diagnostics[0]
        pos = [diag.pos.file, diag.pos.line, diag.pos.column] if diag.pos else None
        answer = {"error": {"message": diag.message, "pos": pos}}
    except MemoryError:
        sys.stderr.write("MemoryError\n")
        return 3
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())

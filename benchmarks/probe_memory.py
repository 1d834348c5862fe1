"""Peak memory of planning, measured in a fresh process (run by run.py, not by hand).

    python benchmarks/probe_memory.py MANIFEST_DIR SNAPSHOT_JSON

Loads and validates the manifests, reads the live snapshot (what the API
returned: services, agents, state machines) and plans against it, then prints
one JSON line: the process's peak resident set (VmHWM) after the imports
alone and at the end, and the operation count (so a plan that silently did
nothing cannot pass).
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path


def _peak_mib() -> float:
    """This process's peak resident set.

    Linux: VmHWM from /proc/self/status. Not ru_maxrss: Linux carries that
    across fork and exec, so a child of a big parent (run.py holding an
    emulator of 5,000 services) would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def main(manifest_dir: str, snapshot_path: str) -> None:
    from reconciler.live import references_from_api, services_from_api
    from reconciler.manifests import load_manifests
    from reconciler.model import LiveState
    from reconciler.planner import plan_against

    after_imports = _peak_mib()
    desired = load_manifests([manifest_dir])
    snapshot = json.loads(Path(snapshot_path).read_text(encoding="utf-8"))
    live = LiveState(
        services=services_from_api(snapshot["services"]),
        agents=references_from_api(snapshot["agents"]),
        state_machines=references_from_api(snapshot["state_machines"]),
    )
    organization = snapshot["organization"]
    del snapshot
    plan = plan_against(desired, live, organization=organization, base_url="http://localhost")
    print(
        json.dumps(
            {
                "after_imports_mib": round(after_imports, 1),
                "peak_mib": round(_peak_mib(), 1),
                "services": len(desired.services),
                "operations": len(plan.operations),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

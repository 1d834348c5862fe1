"""The rate-limit floor of a set of dependent API calls: the least wall time any client could reach.

The emulator (like the API it stands for) counts each endpoint's requests in
fixed windows: `limit` requests per endpoint per window, the windows aligned to
multiples of the window length. A perfect client, with requests that take no
time at all, sends in each window every operation that is ready (all it depends
on done) while the endpoint has budget left; an operation done early in a
window frees its dependents in that same window. `windows_needed` plays that
client out. Starting right at a window boundary, the last operation then goes
out at the start of window k, so the floor is (k - 1) windows; real requests
take time, so the measured figure can only be above it.

Operations are (endpoint, depends_on) pairs; the order given is the order
ready work is taken in. For the shapes here (creates, then upserts depending on
them; independent updates and upserts) taking ready work in that order loses
nothing: every endpoint is either saturated in a window or has sent all it
could by then.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler.limits import RATE_LIMITS

# Requests per window of each endpoint (the documented per-minute limits).
LIMITS: Mapping[str, int] = RATE_LIMITS


@dataclass(frozen=True)
class Call:
    endpoint: str
    depends_on: tuple[int, ...] = ()  # indexes of earlier calls


def windows_needed(calls: Sequence[Call], limits: Mapping[str, int] = LIMITS) -> int:
    """Windows a zero-latency client needs to send `calls` (0 for no calls)."""
    unmet = [len(call.depends_on) for call in calls]
    dependents: list[list[int]] = [[] for _ in calls]
    for index, call in enumerate(calls):
        for dependency in call.depends_on:
            dependents[dependency].append(index)
    ready: dict[str, list[int]] = {endpoint: [] for endpoint in limits}
    for index, call in enumerate(calls):
        if not unmet[index]:
            heapq.heappush(ready[call.endpoint], index)
    left = len(calls)
    windows = 0
    while left:
        windows += 1
        budget = dict(limits)
        sent = 0
        progress = True
        while progress:
            progress = False
            for endpoint, queue in ready.items():
                while queue and budget[endpoint]:
                    index = heapq.heappop(queue)
                    budget[endpoint] -= 1
                    left -= 1
                    sent += 1
                    progress = True
                    for dependent in dependents[index]:
                        unmet[dependent] -= 1
                        if not unmet[dependent]:
                            heapq.heappush(ready[calls[dependent].endpoint], dependent)
        if not sent:
            raise ValueError("calls depend on each other in a cycle")
    return windows


def busiest_endpoint_windows(calls: Sequence[Call], limits: Mapping[str, int] = LIMITS) -> int:
    """max over endpoints of ceil(calls / limit): the bound ignoring dependencies."""
    per: dict[str, int] = {}
    for call in calls:
        per[call.endpoint] = per.get(call.endpoint, 0) + 1
    return max((math.ceil(n / limits[e]) for e, n in per.items()), default=0)


def floor_seconds(windows: int, window_seconds: float) -> float:
    """Wall time of `windows` windows when starting at a window boundary."""
    return max(0, windows - 1) * window_seconds

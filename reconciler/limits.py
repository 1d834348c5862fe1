"""The API's field limits, in one place.

Taken from the request schemas of create-service, update-service and
upsert-service-version-set in the OpenAPI document (the project never reads the
document at runtime; `tests/base/test_limits.py` checks these against it). The
manifest validator (and through it the exporter), the planner and the emulator all
enforce the same rules, so they share these values rather than keeping copies.
"""

from __future__ import annotations

ID_PATTERN = r"^[a-f0-9]{24}$"
TAG_PATTERN = r"^[\w\s]+$"  # tag keys and values
KEYTERM_PATTERN = r"^[a-z-]+( [a-z-]+){0,2}$"
VERSION_SET_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
VERSION_SET_NAME_MAX = 40
MAX_TAGS = 20
MAX_KEYTERMS = 20

# The API's `LLMType` enum. It grows with new models, so the manifest validator
# only warns about a name outside it; the emulator, like the API, refuses one.
LLM_NAMES: tuple[str, ...] = (
    "azure_gpt-4.1-2025-04-14",
    "openai_gpt-4.1-2025-04-14",
    "azure_gpt-4.1-mini-2025-04-14",
    "openai_gpt-4.1-mini-2025-04-14",
    "azure_gpt-5-nano-2025-08-07",
    "azure_gpt-5.1-2025-11-13",
    "openai_gpt-5.1-2025-11-13",
    "azure_gpt-5.2-2025-12-11",
    "openai_gpt-5-nano-2025-08-07",
    "openai_gpt-5.2-2025-12-11",
    "google_claude-sonnet-4-5@20250929",
    "aws_claude-sonnet-4-5-20250929",
    "google_gemini-2.5-pro",
    "google_gemini-2.5-flash",
)

# Documented rate limits: requests a minute, per user, by OpenAPI operation id. The
# client paces itself by them, the emulator enforces them, the benchmarks' floors use them.
RATE_LIMITS: dict[str, int] = {
    "sign-in-with-api-key": 5,
    "get-services": 50,
    "create-service": 20,
    "update-service": 20,
    "upsert-service-version-set": 30,
    "delete-service-version-set": 30,
    "get-agents": 20,
    "get-service-hierarchical-state-machines": 20,
    "get-simulation-unit-tests": 200,
    "get-simulation-unit-test-sets": 50,
    "get-simulation-unit-test-set-runs": 50,
    "create-simulation-unit-test-set-run": 20,
}

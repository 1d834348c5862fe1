"""A local Amigo API emulator that follows the documented rules of the API contract.

It serves the endpoints the reconciler uses (sign-in, services, version sets,
agents, state machines, simulation unit tests) over an in-memory organization
read from a seed YAML, with the API's validation (422), business rules
(404 / 400 / 409), auth (401), per-endpoint rate limits with `X-RateLimit-*`
headers (429 + `Retry-After`) and injectable faults. Every documented
parameter is honoured or refused (`parameters.py`); where the document is
ambiguous the emulator's reading has an id (`interpretations.py`) that its
refusals carry. docs/emulator.md describes the seed format and both tables.
The emulator imports nothing of the client (`reconciler.api`): it is an
independent reading of the API, and `reconciler.connect.emulator_config`
builds a client's settings from its credentials.

    seed = "examples/emulator-seed.yaml"
    emulator = Emulator.from_seed(seed, observers=[print])   # observers see every exchange
    client = AmigoClient(emulator_config(emulator), transport=emulator.transport())
    with emulator.serve() as server:           # or over real HTTP on 127.0.0.1
        ...server.base_url...
"""

from reconciler.emulator.core import (
    OPERATION_IDS,
    RATE_LIMITS,
    Emulator,
    EmulatorResponse,
    Exchange,
    Fault,
    Observer,
    Refusal,
)
from reconciler.emulator.seed import Seed, load_seed
from reconciler.emulator.seed_writer import SeedExport, seed_from_live
from reconciler.emulator.server import EmulatorServer

__all__ = [
    "OPERATION_IDS",
    "RATE_LIMITS",
    "Emulator",
    "EmulatorResponse",
    "EmulatorServer",
    "Exchange",
    "Fault",
    "Observer",
    "Refusal",
    "Seed",
    "SeedExport",
    "load_seed",
    "seed_from_live",
]

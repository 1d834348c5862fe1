"""The emulator stands alone: no import of the client, observers given to each instance."""

from __future__ import annotations

import ast

from _reliability import realistic_seed
from support.cli import emulator_client
from support.paths import PACKAGE

from reconciler.connect import open_client
from reconciler.emulator import Emulator, Exchange

EMULATOR = PACKAGE / "emulator"


def test_the_emulator_imports_nothing_of_the_client() -> None:
    """An independent reading of the API: `reconciler.api` is the thing it checks."""
    found = []
    for path in sorted(EMULATOR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            found += [f"{path.name}: {n}" for n in names if n.startswith("reconciler.api")]
    assert found == []


def test_observers_belong_to_the_emulator_they_were_given_to() -> None:
    watched: list[Exchange] = []
    seen = Emulator.from_seed(realistic_seed(), observers=[watched.append])
    unseen = Emulator.from_seed(realistic_seed())
    for emulator in (unseen, seen):
        with emulator_client(emulator) as client:
            client.list_services()
    assert watched and {e.operation_id for e in watched} == {
        "sign-in-with-api-key",
        "get-services",
    }
    assert all(e.response.status == 200 for e in watched)


def test_a_client_holds_no_reference_to_its_emulator() -> None:
    """`--emulator` keeps the emulator alive through the transport, not a client attribute."""
    seed = EMULATOR.parent.parent / "examples" / "emulator-seed.yaml"
    with open_client({}, emulator_seed=str(seed)) as client:
        assert not any(isinstance(value, Emulator) for value in vars(client).values())
        assert client.list_services() is not None  # the emulator still answers

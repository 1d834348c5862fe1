"""Fuzzing manifests: `validate` and `plan` never crash, whatever the input.

Inputs: mutations of the shipped examples (`examples/services/*.yaml`: byte
flips, truncation, key renames, type swaps, deep nesting, huge numbers,
unicode) and hypothesis-generated documents and raw bytes. For each, through
click's CliRunner with `catch_exceptions=False` (and a sample as a real
process): the exit code is 0 or 1, nothing prints a traceback or an "internal
error", and a failure says what is wrong on stderr.

The default suite runs a fixed, seeded sample; `-m slow` runs many more.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.paths import EXAMPLE_SERVICES, REPO, SEED

from reconciler import cli

EXAMPLES = sorted(EXAMPLE_SERVICES.glob("*.yaml"))
assert EXAMPLES, f"no manifests in {EXAMPLE_SERVICES}"

KEYS = [
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "id",
    "spec",
    "description",
    "is_active",
    "agent",
    "agent_id",
    "service_hierarchical_state_machine",
    "service_hierarchical_state_machine_id",
    "tags",
    "keyterms",
    "version_sets",
    "release",
    "canary",
    "edge",
    "agent_version_number",
    "service_hierarchical_state_machine_version_number",
    "llm_model_preferences",
    "conversation",
    "llm_name",
    "params",
    "temperature",
]
ODD_VALUES = [
    "null",
    "~",
    "true",
    "[]",
    "{}",
    "[1, [2, [3]]]",
    "{a: {b: {c: d}}}",
    "''",
    '"\\u0000"',
    "-1",
    "0",
    "1e309",
    "-.inf",
    ".nan",
    "9223372036854775808",
    "1" + "0" * 400,
    "0x7fffffff",
    "2024-01-01",
    "!!binary aGVsbG8=",
    "!!python/object:os.system ls",
    "&a [*a]",
    "*undefined_alias",
    "${AMIGO_API_KEY}",
    "${UNSET_VARIABLE_XYZ}",
    "${:-}",
    "x" * 5000,
]
UNICODE = [
    "\u202e",  # right-to-left override
    "\u200b",  # zero width space
    "\ufeff",  # BOM in the middle
    "\U0001f600",
    "\u0000",
    "\u0085",  # next line
    "\u2028",  # line separator
    "é",
    "\ud800",  # lone surrogate: not encodable, written as bytes below
]


def _t(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")  # earlier mutations may have broken UTF-8


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _random_line(text: str, rng: random.Random) -> tuple[list[str], int]:
    lines = text.splitlines()
    return lines, rng.randrange(len(lines))


def byte_flips(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncation(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def key_rename(data: bytes, rng: random.Random) -> bytes:
    text = _t(data)
    present = [k for k in KEYS if re.search(rf"\b{k}:", text)]
    key = rng.choice(present)
    new = rng.choice(
        [key.upper(), key[:-1], key + "s", key.replace("_", "-"), rng.choice(KEYS), " " + key, ""]
    )
    return _b(re.sub(rf"\b{key}:", f"{new}:", text, count=1))


def type_swap(data: bytes, rng: random.Random) -> bytes:
    lines, _ = _random_line(_t(data), rng)
    candidates = [i for i, line in enumerate(lines) if re.match(r"^\s*[\w-]+:\s*\S", line)]
    i = rng.choice(candidates)
    key = lines[i].split(":", 1)[0]
    lines[i] = f"{key}: {rng.choice(ODD_VALUES)}"
    return _b("\n".join(lines))


def deep_nesting(data: bytes, rng: random.Random) -> bytes:
    depth = rng.choice([10, 70, 200, 3000])
    opener, closer = rng.choice([("[", "]"), ("{a: ", "}")])
    lines, _ = _random_line(_t(data), rng)
    candidates = [i for i, line in enumerate(lines) if re.match(r"^\s*[\w-]+:\s*\S", line)]
    i = rng.choice(candidates)
    key, _, value = lines[i].partition(":")
    lines[i] = f"{key}: {opener * depth}{value.strip() or 1}{closer * depth}"
    return _b("\n".join(lines))


def huge_numbers(data: bytes, rng: random.Random) -> bytes:
    text = _t(data)
    numbers = list(re.finditer(r"(?<=: )\d+(\.\d+)?\b", text))
    big = rng.choice(["1" + "0" * 400, "-99999999999999999999", "1e400", "-0", "1_000", "0o17"])
    if not numbers:
        return _b(text.replace("spec:", f"spec:\n  agent_version_number: {big}", 1))
    match = rng.choice(numbers)
    return _b(text[: match.start()] + big + text[match.end() :])


def unicode_noise(data: bytes, rng: random.Random) -> bytes:
    text = _t(data)
    i = rng.randrange(len(text))
    char = rng.choice(UNICODE)
    encoded = char.encode("utf-8", "surrogatepass")
    return _b(text[:i]) + encoded * rng.randint(1, 3) + _b(text[i:])


MUTATORS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "byte_flips": byte_flips,
    "truncation": truncation,
    "key_rename": key_rename,
    "type_swap": type_swap,
    "deep_nesting": deep_nesting,
    "huge_numbers": huge_numbers,
    "unicode": unicode_noise,
}


def assert_clean_exit(result: Result, what: str) -> None:
    shown = f"{what}\n--- stdout\n{result.stdout[-2000:]}\n--- stderr\n{result.stderr[-2000:]}"
    assert result.exit_code in (0, 1), shown
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    for text in (result.stdout, result.stderr):
        assert "Traceback" not in text, shown
        assert "internal error" not in text, shown
    if result.exit_code == 1:  # plan prints its own errors with the plan, on stdout
        assert "error" in (result.stderr + result.stdout), f"exit 1 without a message: {shown}"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def mutants(count: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        example = EXAMPLES[n % len(EXAMPLES)]
        kind = list(MUTATORS)[n % len(MUTATORS)]
        data = example.read_bytes()
        for _ in range(rng.choice([1, 1, 2])):
            data = MUTATORS[kind](data, rng) or data
        out.append((f"{kind} of {example.name} (seed {seed}, #{n})", data))
    return out


def check_mutants(tmp_path: Path, count: int, seed: int, plan_every: int) -> None:
    for n, (what, data) in enumerate(mutants(count, seed)):
        path = tmp_path / f"mutant-{n}.yaml"
        path.write_bytes(data)
        assert_clean_exit(invoke("validate", str(path)), f"validate: {what}")
        if n % plan_every == 0:
            assert_clean_exit(invoke("plan", str(path), "--emulator", str(SEED)), f"plan: {what}")
        path.unlink()


def test_mutated_examples_never_crash_validate_or_plan(tmp_path: Path) -> None:
    check_mutants(tmp_path, count=140, seed=8, plan_every=5)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_many_more_mutants_never_crash(tmp_path: Path, seed: int) -> None:
    check_mutants(tmp_path, count=600, seed=100 + seed, plan_every=2)


def test_the_examples_themselves_are_valid_and_plan() -> None:
    """The unmutated inputs pass: the fuzzing starts from working manifests."""
    paths = [str(p) for p in EXAMPLES]
    assert invoke("validate", *paths).exit_code == 0
    result = invoke("plan", *paths, "--emulator", str(SEED))
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_a_sample_as_a_real_process_exits_0_or_1_with_a_message(tmp_path: Path) -> None:
    for n, (what, data) in enumerate(mutants(7, seed=3)):
        path = tmp_path / f"mutant-{n}.yaml"
        path.write_bytes(data)
        for args in (["validate", str(path)], ["plan", str(path), "--emulator", str(SEED)]):
            done = subprocess.run(
                [sys.executable, "-m", "reconciler", *args],
                capture_output=True,
                text=True,
                timeout=60,
                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
            )
            shown = f"{what}: {args[0]}\n{done.stdout}\n{done.stderr}"
            assert done.returncode in (0, 1), shown
            assert "Traceback" not in done.stderr and "internal error" not in done.stderr, shown
            if done.returncode == 1:
                assert "error" in done.stderr + done.stdout, shown


# --- hypothesis: generated documents and raw bytes ------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["Concierge", "Onboarding flow", "release", "openai_gpt-5.1-2025-11-13"])
)
_keys = st.sampled_from(KEYS) | st.text(max_size=12)
_trees = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=5),
    max_leaves=25,
)
_version_set = st.fixed_dictionaries(
    {},
    optional={
        "agent_version_number": st.integers(-2, 10) | _scalars,
        "service_hierarchical_state_machine_version_number": st.integers(-2, 10) | _scalars,
        "llm_model_preferences": st.dictionaries(
            st.sampled_from(["conversation", "x"]) | st.text(max_size=8),
            st.fixed_dictionaries(
                {"llm_name": st.sampled_from(["openai_gpt-5.1-2025-11-13", "nope"]) | _scalars},
                optional={"params": _trees},
            )
            | _trees,
            max_size=2,
        ),
    },
)
_spec = st.fixed_dictionaries(
    {},
    optional={
        "description": st.text(max_size=40) | _scalars,
        "is_active": st.booleans() | _scalars,
        "agent": st.sampled_from(["Concierge", "Triage Nurse", "Nobody"]) | _scalars,
        "agent_id": st.from_regex(r"[a-f0-9]{24}", fullmatch=True) | _scalars,
        "service_hierarchical_state_machine": st.sampled_from(["Onboarding flow", "?"]),
        "tags": st.dictionaries(st.text(max_size=10), st.none() | st.text(max_size=10), max_size=4)
        | _trees,
        "keyterms": st.lists(st.text(max_size=15), max_size=4) | _trees,
        "version_sets": st.dictionaries(
            st.sampled_from(["release", "canary", "edge"]) | st.text(max_size=45),
            _version_set | _trees,
            max_size=3,
        )
        | _trees,
    },
)
_documents = (
    st.fixed_dictionaries(
        {
            "apiVersion": st.just("amigo.ai/v1") | _scalars,
            "kind": st.just("Service") | _scalars,
            "metadata": st.fixed_dictionaries(
                {"name": st.text(min_size=1, max_size=20) | _scalars},
                optional={"id": st.from_regex(r"[a-f0-9]{24}", fullmatch=True) | _scalars},
            )
            | _trees,
            "spec": _spec | _trees,
        }
    )
    | _trees
)


def _check_text(data: bytes, *, plan: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated.yaml"
        path.write_bytes(data)
        assert_clean_exit(invoke("validate", str(path)), f"validate {data[:300]!r}")
        if plan:
            assert_clean_exit(
                invoke("plan", str(path), "--emulator", str(SEED)), f"plan {data[:300]!r}"
            )


def _dump(documents: list[object]) -> bytes:
    return yaml.safe_dump_all(documents, allow_unicode=True, sort_keys=False).encode()


_FAST = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
_MANY = settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


@_FAST
@given(st.lists(_documents, min_size=1, max_size=3), st.booleans())
def test_generated_documents_never_crash(documents: list[object], plan: bool) -> None:
    _check_text(_dump(documents), plan=plan)


@_FAST
@given(st.binary(max_size=400) | st.text(max_size=400).map(lambda t: t.encode("utf-8")))
def test_raw_bytes_never_crash_validate(data: bytes) -> None:
    _check_text(data, plan=False)


@pytest.mark.slow
@_MANY
@given(st.lists(_documents, min_size=1, max_size=3), st.booleans())
def test_many_generated_documents_never_crash(documents: list[object], plan: bool) -> None:
    _check_text(_dump(documents), plan=plan)

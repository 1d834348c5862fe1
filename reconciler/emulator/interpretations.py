"""Where the OpenAPI document is ambiguous, the emulator's reading of it, each with an id.

An answer that rests only on one of these readings carries its id: the
emulator's refusal records (`Emulator.refusals`) and the answer's
`x-emulator-interpretation` header. A rehearsal can then tell "the API's
documented rules refuse this" (a failure) from "the emulator's reading of an
ambiguous rule refuses this" (a warning). docs/emulator.md lists the same
table; a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Effect(StrEnum):
    REFUSES = "refuses"  # a request is refused on this reading alone (the id is attached)
    ACCEPTS = "accepts"  # a request is accepted that a stricter reading would refuse
    SHAPES = "shapes"  # decides the shape or order of an answer, not whether it is accepted


@dataclass(frozen=True, slots=True)
class Interpretation:
    id: str
    question: str  # what the document leaves open
    reading: str  # what the emulator does
    effect: Effect


DEPRECATED_ON_MOVE = "deprecated-on-move"
DEPRECATED_LLM_ANY_SET = "deprecated-llm-any-version-set"
DEPRECATED_LLM_UPSERT = "deprecated-llm-upsert-accepted"
CREATE_IGNORES_DEPRECATION = "create-ignores-deprecation"
RETIRED_LLM = "llm-outside-enum-is-deprecated"
VERSION_SETS_KEPT_ON_MOVE = "version-sets-kept-on-move"
UNKNOWN_REFERENCE_400 = "update-unknown-reference-400"
LAX_SCALARS = "lax-scalars"
SORT_SIGN_OPTIONAL = "sort-sign-optional"
REPEATED_FILTERS = "repeated-filters"
CONTINUATION_OFFSET = "continuation-token-offset"
LIMIT_ZERO = "limit-zero"
DUPLICATE_IDS = "duplicate-ids-collapse"
UNMODELLED_HEADERS = "unmodelled-headers"

INTERPRETATIONS: tuple[Interpretation, ...] = (
    Interpretation(
        DEPRECATED_ON_MOVE,
        "update-service documents a 400 for *activating* a service that uses a deprecated "
        "agent or state machine; is pointing an already active service at one refused too?",
        "Yes: when either reference of an active service changes, both records are checked "
        "and a deprecated one is refused (400), as for an activation.",
        Effect.REFUSES,
    ),
    Interpretation(
        DEPRECATED_LLM_ANY_SET,
        "Which version sets make a service 'use' a deprecated LLM on activation?",
        "Every version set: a deprecated LLM preferred by any set (not only `release`) "
        "refuses the activation (400). The id is attached only when no `release` "
        "preference is deprecated.",
        Effect.REFUSES,
    ),
    Interpretation(
        DEPRECATED_LLM_UPSERT,
        "Is upserting a version set that prefers a deprecated LLM 'an invalid LLM config'?",
        "No: a deprecated LLM still in the LLMType enum is accepted by upsert-service-version-set "
        "and create-service, on active services too; only activation checks it.",
        Effect.ACCEPTS,
    ),
    Interpretation(
        CREATE_IGNORES_DEPRECATION,
        "delete-agent says deprecation 'prevents new services' from using an agent, but "
        "create-service documents no such 400.",
        "create-service does not check deprecation (agents, state machines or LLMs).",
        Effect.ACCEPTS,
    ),
    Interpretation(
        RETIRED_LLM,
        "Stored version sets show `llm_name` as a free string (LLMConfig-Output); what is "
        "a stored name that the LLMType enum no longer lists?",
        "A retired LLM: a seed must declare it under `deprecated_llms`; requests naming it "
        "are refused by the enum (422) and activations by the deprecation rule (400).",
        Effect.SHAPES,
    ),
    Interpretation(
        VERSION_SETS_KEPT_ON_MOVE,
        "What happens to a service's version sets when its agent or state machine changes?",
        "They are kept as they are; their version numbers are not re-checked against the "
        "new agent / state machine.",
        Effect.ACCEPTS,
    ),
    Interpretation(
        UNKNOWN_REFERENCE_400,
        "Which status does update-service give for an unknown agent / state machine id "
        "outside an activation?",
        "400 ('invalid agent or state machine'), as documented for activation; create-service "
        "gives 404 as documented.",
        Effect.SHAPES,
    ),
    Interpretation(
        LAX_SCALARS,
        'How lax is the API with a scalar of another JSON type, e.g. "1" for an integer?',
        'As FastAPI on pydantic v2 (lax mode): "1" and 1.0 are the integer 1, '
        '"true"/"1"/"yes" are true; but a number for a string field is refused (422, id '
        "attached).",
        Effect.REFUSES,
    ),
    Interpretation(
        SORT_SIGN_OPTIONAL,
        "`sort_by`: must each field carry a `+` or `-`?",
        "No: a bare field sorts ascending. One sign at most (`--name` names the field "
        "`-name`, which is not supported: 422).",
        Effect.ACCEPTS,
    ),
    Interpretation(
        REPEATED_FILTERS,
        "How do repeated filter values combine?",
        "`id`, `service_id`, `persona_id`, `scenario_id`, `metric_id` and `creator` match "
        "any of the values; `tags` / `tag` must all match. Filters combine with AND.",
        Effect.SHAPES,
    ),
    Interpretation(
        CONTINUATION_OFFSET,
        "What is a continuation token?",
        "The offset of the next item. A negative token is refused (422, id attached); one "
        "past the end gives an empty last page.",
        Effect.REFUSES,
    ),
    Interpretation(
        LIMIT_ZERO,
        "get-service-hierarchical-state-machines and get-simulation-unit-tests allow "
        "`limit=0`: what does it return?",
        "An empty page; `has_more` tells whether any item lies past the token, whose "
        "continuation token is the same offset.",
        Effect.SHAPES,
    ),
    Interpretation(
        DUPLICATE_IDS,
        "`id` (and other `uniqueItems` lists) given twice with the same value?",
        "Accepted; duplicates collapse (FastAPI reads such a parameter as a set).",
        Effect.ACCEPTS,
    ),
    Interpretation(
        UNMODELLED_HEADERS,
        "`Sec-WebSocket-Protocol` is documented on every endpoint; the emulator has no "
        "WebSockets. (`x-mongo-cluster-name`, documented beside it, is accepted and "
        "recorded: it only locates the organization, and the emulator has one cluster.)",
        "A request carrying it is refused (422 naming the header) rather than "
        "silently answered as if the header meant nothing.",
        Effect.REFUSES,
    ),
)

BY_ID = {i.id: i for i in INTERPRETATIONS}

"""What the HTTP API returns, as pydantic models: for the OpenAPI document, never for a validation pass.

Each model describes the JSON the code builds (`Profile.to_json`, `Decision.to_json`, `build_report`, ...)
field for field, and forbids anything else, so that a response which drifts from its documentation fails
the schema check (tests/api/test_openapi.py, benchmarks/api_fuzz.py) instead of passing unseen. Routes
name them in `responses=` and keep returning the JSON they build: FastAPI then neither re-validates nor
filters it, which would cost time on the hot paths and hide drift by dropping fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

Json = Any  # any JSON value: a trait's value, an event's properties

# ---- errors -----------------------------------------------------------------------------------------


class Strict(BaseModel):
    """An object with exactly these fields (`additionalProperties: false` in the document)."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Strict):
    code: str = Field(description="Stable and machine-readable, e.g. invalid_input, not_found")
    message: str = Field(description="For people: what was wrong and how to send it right")
    field: str | None = Field(description="The field, header or parameter at fault, when there is one")


class ErrorBody(Strict):
    """Every error: a 4xx (or 503) with this body."""

    error: ErrorDetail


ERROR_WORDS = {
    400: "Bad input: invalid JSON, a wrong type, a missing or unknown field",
    401: "No key or token, or one that is unknown, revoked or expired",
    403: "A key of the wrong kind, a link for another person, or a browser origin the key does not allow",
    404: "No such person, item or experiment",
    409: "The request clashes with what exists (a name already taken, a placement already busy)",
    413: "The body is too large (after decompression)",
    429: "Too many requests: wait for Retry-After seconds",
    503: "The database is unavailable: retry after Retry-After seconds; nothing was stored",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for these error statuses, each with the one error body. Every /v1 route may also
    answer 429 (rate limited) and 503 (store unavailable), so those are always added."""
    wanted = sorted({*statuses, 429, 503})
    return {status: {"model": ErrorBody, "description": ERROR_WORDS[status]} for status in wanted}


def ok(model: type[BaseModel], description: str, status: int = 200) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model, "description": description}}


# ---- tracking ---------------------------------------------------------------------------------------


class IngestResult(Strict):
    success: Literal[True]
    received: int = Field(ge=0)
    stored: int = Field(ge=0, description="New messages written to the event log")
    duplicates: int = Field(ge=0, description="Messages whose messageId was already stored")


# ---- people -----------------------------------------------------------------------------------------


class IdentityOut(Strict):
    kind: Literal["user_id", "anonymous_id", "email"]
    value: str
    linked_at: str = Field(description="ISO 8601")


class MergeOut(Strict):
    id: int
    from_person_id: int
    into_person_id: int
    outcome: Literal["merged", "refused"]
    reason: str
    message_id: str | None
    at: str


class OverriddenOut(Strict):
    source: str
    value: Json
    status: str
    updated_at: str


class TraitOut(Strict):
    key: str
    value: Json
    source: Literal["stated", "observed", "inferred"]
    updated_at: str
    evidence: dict[str, Json]
    confidence: float | None
    confirmed_at: str | None
    weight: float
    age_days: float
    expires_at: str | None
    needs_confirmation: bool
    why: str
    overridden: list[OverriddenOut]


class ConsentChoiceOut(Strict):
    granted: bool
    at: str | None = Field(description="When it was chosen; null when nothing was recorded")
    channel: str | None
    default: bool = Field(description="True when the shop's default applies")


class PersonOut(Strict):
    """`GET /v1/people/{id}`, and the answer to a change of preferences or a rejected guess."""

    person_id: int
    ids: list[IdentityOut]
    merges: list[MergeOut]
    event_count: int
    event_counts: dict[str, int]
    first_seen: str | None
    last_seen: str | None
    created_at: str
    as_of: str
    traits: list[TraitOut]
    consent: dict[str, ConsentChoiceOut]
    wishes: list[dict[str, Json]] = Field(description="Their wishes in force (back in stock, price)")


class PersonEventsOut(Strict):
    person_id: int
    events: list[dict[str, Json]] = Field(description="Segment messages as stored, newest first")


# ---- privacy ----------------------------------------------------------------------------------------


class DecayOut(Strict):
    half_life_days: int | None
    expires_after_days: int | None


class CandidateOut(Strict):
    source: str
    value: Json
    status: Literal["won", "outranked", "expired"]
    weight: float
    updated_at: str
    age_days: float = Field(description="Days from the newest evidence to `as_of`")
    expires_at: str | None = Field(description="ISO 8601; null for a value that never expires")
    decay: DecayOut
    why: str = Field(description="Why the value has its status, in words")
    evidence: dict[str, Json]


class ExplainedTraitOut(TraitOut):
    source_words: str
    decay: DecayOut
    candidates: list[CandidateOut]


class RejectedGuessOut(Strict):
    key: str
    value: Json
    evidence: list[Json]
    at: str


class ExpiredTraitOut(Strict):
    """A trait none of whose values holds any more: every candidate expired, and why."""

    key: str
    value: None
    status: Literal["expired"]
    why: str
    candidates: list[CandidateOut]


class ExplainOut(Strict):
    person_id: int
    as_of: str
    rule: str
    traits: list[ExplainedTraitOut]
    expired_traits: list[ExpiredTraitOut]
    rejected_guesses: list[RejectedGuessOut]
    consent: dict[str, ConsentChoiceOut]


class ConsentEntryOut(Strict):
    purpose: str
    granted: bool
    at: str
    channel: str
    actor: str
    message_id: str | None


class ConsentOut(Strict):
    purposes: dict[str, ConsentChoiceOut]
    history: list[ConsentEntryOut] = Field(description="The ledger, oldest first")


class DecisionShownOut(Strict):
    decision_id: str
    placement: str
    at: str
    personalized: bool
    model_version: int | None
    items: list[Json]
    reasons: list[Json]
    context: dict[str, Json] | None = Field(description="The decide call's context, as it was sent")


class ExportOut(Strict):
    summary: str
    exported_at: str
    person: PersonOut
    events: list[dict[str, Json]]
    consent_history: list[ConsentEntryOut]
    rejected_guesses: list[RejectedGuessOut]
    decisions: list[DecisionShownOut]
    wishes: list[dict[str, Json]] = Field(description="Their wishes (back in stock, price), with evidence")
    messages: list[dict[str, Json]] = Field(
        description="Every message and staff task: sent, pending or suppressed, with its reason and attempts"
    )


class LinkOut(Strict):
    url: str
    token: str
    expires_at: str


class ErasedCounts(Strict):
    events: int
    interactions: int
    traits: int
    decisions: int
    consents: int
    rejected_guesses: int
    identities: int
    merges: int
    wishes: int
    messages: int = Field(description="Messages deleted, pending ones with them (so never sent)")
    message_attempts: int
    tasks: int


class ErasedOut(Strict):
    erased: Literal[True]
    deleted: ErasedCounts
    note: str


class ConsentIn(RootModel[dict[str, bool]]):
    """`{purpose: true|false}`: one or more purposes (`necessary` cannot be withdrawn)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})


class RejectionIn(Strict):
    """ "That's not me": the guessed trait to drop, and optionally one value of it (or list element)."""

    key: str = Field(min_length=1)
    value: Json = None


# ---- catalog ----------------------------------------------------------------------------------------


class UpsertOut(Strict):
    created: int
    updated: int
    unchanged: int
    changes: int = Field(description="Price and stock changes recorded in the history")


class VariantOut(Strict):
    variant_id: str
    attributes: dict[str, Json]
    price: float | None
    stock: int | None


class ItemOut(Strict):
    item_id: str
    title: str
    category: str
    price: float | None
    currency: str | None
    attributes: dict[str, Json]
    created_at: str
    updated_at: str
    variants: list[VariantOut]


class ChangeOut(Strict):
    variant_id: str = Field(description='"" for the item itself')
    field: Literal["price", "stock"]
    old_value: float | None
    new_value: float | None
    at: str


class ItemHistoryOut(Strict):
    item_id: str
    changes: list[ChangeOut]


# ---- decide -----------------------------------------------------------------------------------------


class ReasonOut(Strict):
    text: str
    provenance: dict[str, Json] = Field(description="Trait keys, event ids, the model: where it comes from")


class DecidedItemOut(Strict):
    item_id: str
    score: float
    title: str
    reasons: list[ReasonOut]


class DecisionOut(Strict):
    decision_id: str
    placement: str
    items: list[DecidedItemOut]
    reasons: list[ReasonOut]
    model_version: int | None
    personalized: bool


# ---- experiments ------------------------------------------------------------------------------------


class VariantSpecOut(Strict):
    name: str
    options: dict[str, Json]


class ExperimentOut(Strict):
    name: str
    placement: str
    kind: str = Field(description="ab | bandit | bandit_revenue")
    status: Literal["running", "stopped"]
    variants: list[VariantSpecOut]
    weights: list[float]
    audience: dict[str, Json] | None
    outcome_events: list[str]
    window_days: int
    floor: float
    created_at: str
    stopped_at: str | None


class HoldoutOut(Strict):
    share: float


class ExperimentListOut(Strict):
    experiments: list[ExperimentOut]
    holdout: HoldoutOut


class CupedOut(Strict):
    theta: float | None
    variance_reduction: float | None


class MetricOut(Strict):
    """One metric of one arm against the control: difference, lift, intervals and the verdict."""

    metric: str
    control: float | None
    treatment: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    rel_lift: float | None
    verdict: Literal["win", "loss", "inconclusive"]
    summary: str
    kind: Literal["proportion", "mean"]
    method: str
    rel_ci_low: float | None
    rel_ci_high: float | None
    always_valid_ci_low: float | None
    always_valid_ci_high: float | None
    more_people: int | None
    more_days: int | None
    control_raw: float | None
    treatment_raw: float | None
    cuped: CupedOut | None = None


class ArmOut(Strict):
    arm: str
    people: int
    share: float | None
    conversions: int
    conversion_rate: float | None
    revenue: float | None
    revenue_per_person: float | None
    events: dict[str, int]
    probability_best: float | None
    metrics: list[MetricOut]
    note: str | None = None


class SampleRatioOut(Strict):
    checked: bool
    reason: str | None = None
    mismatch: bool | None = None
    p_value: float | None = None
    chi2: float | None = None
    expected: dict[str, float | None] | None = None


class ReachOut(Strict):
    """Whom an experiment's audience covers. A saved audience or condition adds its fuller reach (the
    fields of `GET /v1/audiences/{name}/reach`)."""

    people: int
    covered: int
    share: float | None
    audience: str | None = None
    size: int | None = None
    known: dict[str, Json] | None = None
    active: dict[str, Json] | None = None
    revenue: dict[str, Json] | None = None
    reachable: dict[str, Json] | None = None
    holdout: dict[str, Json] | None = None
    guard: dict[str, Json] | None = None
    deleted: bool | None = Field(None, description="The saved audience was deleted since: it holds nobody")


class OffPolicyOut(Strict):
    arm: str
    reward: Literal["conversion", "revenue"]
    ipw: float | None = None
    snipw: float | None = None
    dr: float | None = None
    ci_low: float | None
    ci_high: float | None


class ReportOut(Strict):
    name: str
    kind: str = Field(description="ab | bandit | bandit_revenue | holdout")
    placement: str
    status: str
    control: str
    window_days: int
    primary_metric: str
    audience: dict[str, Json] | None
    reach: ReachOut
    people: int
    excluded_no_consent: int
    window_open: int
    cuped: bool
    srm: SampleRatioOut
    trustworthy: bool
    arms: list[ArmOut]
    summary: list[str]
    off_policy: list[OffPolicyOut] | None = None


# ---- health -----------------------------------------------------------------------------------------


class HealthOut(Strict):
    status: Literal["ok"]


class ReadyOut(Strict):
    status: Literal["ready"]
    database: str
    model_version: int | None
    prepared_version: int | None


# ---- request bodies read by hand ------------------------------------------------------------------


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with pydantic's `$defs` inlined: `#/$defs/...` refs do not resolve inside OpenAPI."""
    defs = schema.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items() if key != "$defs"}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` documenting a required JSON request body that the route reads itself (for its
    precise errors)."""
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": inline_refs(schema)}}}
    }


def model_body(model: type[BaseModel], **extra: Any) -> dict[str, Any]:
    """`json_body` for a pydantic model, with extra JSON Schema keywords (e.g. `minProperties=1`)."""
    return json_body({**model.model_json_schema(), **extra})


# ---- content ----------------------------------------------------------------------------------------


class FindingOut(Strict):
    part: str = Field(description="fields, text, subject, preheader, html, or variants.<name>.<part>")
    line: int = Field(description="1-based, in the part's own text")
    column: int = Field(description="1-based")
    code: str = Field(description="e.g. unknown_field, no_fallback, http_link, forbidden, syntax")
    message: str = Field(description="What is wrong, and the fix")


class LintFailedOut(Strict):
    """422: the template was not saved; every lint finding."""

    error: ErrorDetail
    findings: list[FindingOut]


class TemplateSummaryOut(Strict):
    name: str
    version: int = Field(description="Every save is a new version, from 1")
    channel: Literal["email", "web", "staff"]
    saved_at: str
    saved_by: str


class TemplateOut(TemplateSummaryOut):
    """A template, its latest version (or the one asked for), as it was saved."""

    template: dict[str, Json] = Field(description="The template's JSON, as saved")
    aborts: list[dict[str, Json]] = Field(
        description="Messages not produced, per version and reason: {version, reason, count, last_at}"
    )


class TemplatesOut(Strict):
    templates: list[TemplateSummaryOut]


class FieldUseOut(Strict):
    name: str
    value: Json = Field(description="What went into the copy (a string; item(s) for those slots)")
    source: str | None = Field(description="stated, observed or inferred; null when the fallback was used")
    fallback_used: bool


class PreviewOut(Strict):
    person: str = Field(description="The id asked for, or `hostile: <label>` for a built-in hostile profile")
    subject: str | None
    html: str | None
    text: str | None
    fields: list[FieldUseOut]
    aborted: str | None = Field(description="Why the message would not be produced; null when it would be")


class PreviewsOut(Strict):
    previews: list[PreviewOut]

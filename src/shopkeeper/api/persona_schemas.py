"""What the personas and audiences routes answer, for the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shopkeeper.api.schemas import Json, Strict

DISCOVER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "k": {
            "oneOf": [{"const": "auto"}, {"type": "integer", "minimum": 2, "maximum": 12}],
            "description": "How many personas: auto (the fewest that cover the target), or N",
        },
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
        "target": {"type": "number", "minimum": 0.3, "maximum": 0.95},
    },
}

RENAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 128}},
}

AUDIENCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["where"],
    "additionalProperties": False,
    "properties": {
        "where": {
            "type": "object",
            "description": "A condition in the audience language (docs/audiences.md)",
        },
        "description": {"type": ["string", "null"], "maxLength": 500},
    },
}

COMPARE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"placement": {"type": "string", "description": "The placement both groups are shown"}},
}


class TopItemOut(Strict):
    item_id: str
    title: str
    buyers: int


class PersonaOut(Strict):
    id: str
    name: str
    rule: str | None = Field(description="Who is in it, in words (a shallow decision tree's path)")
    rule_agreement: float | None = Field(description="How well the rule agrees with the grouping (F1)")
    size: int | None
    share_customers: float | None
    share_revenue: float | None
    description: str | None
    top_categories: list[str]
    top_items: list[TopItemOut]
    typical_members: list[int] = Field(description="Internal person numbers, closest to the centre")
    stable: bool | None
    stability: float | None
    renamed: bool
    active: bool
    run: int | None = None


class EveryoneElseOut(Strict):
    size: int
    share_customers: float


class ChurnOut(Strict):
    from_: str = Field(alias="from")
    to: str
    count: int
    text: str


class RunOut(Strict):
    k: int
    coverage: float
    silhouette: float | None
    stability_ari: float | None
    method: Literal["rfm", "kmeans"]
    customers: int
    agreement: float | None
    everyone_else: EveryoneElseOut
    as_of: str
    churn: list[ChurnOut]
    seconds: float
    run: int
    at: str | None = None


class DiscoverOut(RunOut):
    personas: list[PersonaOut]


class PersonasOut(Strict):
    run: RunOut | None
    personas: list[PersonaOut]


class ShareOut(Strict):
    people: int
    share: float | None


class ActiveOut(Strict):
    people: int
    of: int
    share: float | None
    days: int


class RevenueOut(Strict):
    amount: float
    share: float | None


class HeldOut(Strict):
    people: int


class GuardOut(Strict):
    narrow: bool = Field(description="Below the warning share of active customers")
    threshold: float
    left_out: int = Field(description="Active customers the audience leaves out")
    conversion_rate: float | None
    min_detectable_lift: float | None = Field(
        description="The smallest relative lift an even split of it detects (80% power, 5% two-sided)"
    )
    k_anonymous: bool = Field(description="At least 10 people: per-person outcomes may be reported")
    warnings: list[str]


class AudienceReachOut(Strict):
    audience: str | None
    size: int
    people: int
    covered: int
    share: float | None
    known: ShareOut
    active: ActiveOut
    revenue: RevenueOut
    reachable: dict[str, ShareOut]
    holdout: HeldOut
    guard: GuardOut


class AudienceOut(Strict):
    name: str
    where: dict[str, Json]
    summary: str
    description: str | None
    created_at: str
    updated_at: str
    reach: AudienceReachOut | None = None
    size: int | None = None
    created: bool | None = None


class AudiencesOut(Strict):
    items: list[AudienceOut]


class DeletedOut(Strict):
    deleted: Literal[True]
    name: str


class CompareArmOut(Strict):
    size: int
    shown: int
    revenue_per_person: float | None
    total: float | None


class CompareOut(Strict):
    experiment: str
    status: str
    started: bool
    placement: str
    audience: str
    narrow: CompareArmOut
    broad: CompareArmOut
    verdict: Literal["not proven yet", "broad", "narrow"]
    headline: str
    summary: list[str]

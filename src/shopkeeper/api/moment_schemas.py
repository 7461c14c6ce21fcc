"""What the moments routes answer (rules, wishes, the outbox, tasks), for the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shopkeeper.api.schemas import Json, Strict

RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["trigger", "channels"],
    "additionalProperties": False,
    "properties": {
        "trigger": {
            "enum": [
                "back_in_stock",
                "price_drop",
                "new_arrival",
                "milestone",
                "abandoned_cart",
                "winback",
                "ask",
            ]
        },
        "channels": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {"enum": ["staff", "email", "webhook"]},
            "description": "In order of preference: the first the person allows wins",
        },
        "template": {"type": ["string", "null"], "description": "A saved template's name (email needs one)"},
        "delay_seconds": {"type": ["integer", "null"], "minimum": 0},
        "priority": {"type": "integer", "minimum": 0, "maximum": 100},
        "params": {"type": "object", "description": "The trigger's parameters (docs/moments.md)"},
        "audience": {"type": ["string", "null"]},
        "where": {
            "type": ["object", "null"],
            "description": 'A condition on one trait: {"trait", "equals"|...}',
        },
        "consent": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Purposes it needs besides the channel's",
        },
        "transactional": {"type": "boolean", "description": "Exempt from the contact budget"},
        "enabled": {"type": "boolean"},
        "description": {"type": ["string", "null"]},
    },
}

WISH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["item_id", "source"],
    "additionalProperties": False,
    "properties": {
        "item_id": {"type": "string"},
        "variant_id": {"type": ["string", "null"]},
        "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
        "source": {"enum": ["stated", "staff", "observed"], "description": "A person's link may only state"},
        "note": {"type": ["string", "null"]},
        "expires_at": {"type": ["string", "null"], "format": "date-time"},
    },
}

TASK_DONE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["outcome"],
    "additionalProperties": False,
    "properties": {
        "outcome": {"enum": ["contacted", "purchased", "declined", "unreachable"]},
        "note": {"type": ["string", "null"], "maxLength": 2000},
    },
}
TASK_CLAIM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["assignee"],
    "additionalProperties": False,
    "properties": {"assignee": {"type": "string"}, "store": {"type": ["string", "null"]}},
}
TASK_SNOOZE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["until"],
    "additionalProperties": False,
    "properties": {"until": {"type": "string", "format": "date-time"}},
}


class RuleOut(Strict):
    name: str
    trigger: str
    channels: list[str]
    template: str | None
    delay_seconds: int
    priority: int
    params: dict[str, Json]
    audience: str | None
    where: dict[str, Json] | None
    consent: list[str]
    transactional: bool
    enabled: bool
    description: str | None
    origin: str = Field(description="default, http, file or cli")
    last_30_days: dict[str, Json] | None = None
    recent: list[dict[str, Json]] | None = None
    answered: dict[str, Json] | None = None
    reach: dict[str, Json] | None = Field(
        None, description="For a rule with an audience or a condition: its reach and the reach guard's word"
    )


class RulesOut(Strict):
    items: list[RuleOut]


class WishOut(Strict):
    id: int
    item_id: str
    variant_id: str | None
    attributes: dict[str, Json]
    source: Literal["stated", "staff", "observed"]
    evidence: list[dict[str, Json]] = Field(description="Every source that asked for it, oldest first")
    note: str | None
    status: Literal["open", "notified", "dropped", "expired", "fulfilled"]
    created_at: str
    updated_at: str
    expires_at: str
    notified_at: str | None


class WishListedOut(WishOut):
    title: str | None = Field(description="The item's title, for people to read")
    variant: dict[str, Json] | None = Field(description="The wished variant and its attributes")


class WishesOut(Strict):
    items: list[WishListedOut]


class MessageOut(Strict):
    id: int
    person: str | None
    rule: str
    trigger: str
    channel: str | None
    status: str
    reason: str | None = Field(description="Why it was suppressed, held or failed")
    reason_text: str | None
    created_at: str
    due_at: str
    sent_at: str | None
    item_id: str | None
    variant_id: str | None
    wish_id: int | None
    template: str | None
    template_version: int | None
    message_id: str | None
    attempts: int
    subject: str | None
    text: str | None = Field(description="The rendered text (or, for a staff task, the moment in words)")
    context: dict[str, Json]


class OutboxOut(Strict):
    items: list[MessageOut]


class TaskOut(Strict):
    id: int
    person: str | None
    rule: str
    channel: Literal["staff"]
    status: str
    reason: str | None
    assignee: str | None
    store: str | None
    created_at: str
    due_at: str
    snoozed_until: str | None
    outcome: str | None
    note: str | None
    outbox_id: int
    item_id: str | None
    variant_id: str | None
    text: str | None
    context: dict[str, Json] = Field(
        description="Who, why now, what to say; every fact with its provenance and age"
    )


class TasksOut(Strict):
    items: list[TaskOut]


class ReplayedOut(Strict):
    replayed: int

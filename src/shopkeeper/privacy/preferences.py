"""Stated preferences: what a person tells the shop about themselves, checked, then written to the event log.

A change of preferences is an `identify` event marked `context.shopkeeper.stated = true`, so the event log
stays the one source of truth: stated traits are derived from it like every other trait, win over observed
and inferred ones everywhere, and are erased with the person. `null` clears what was stated before.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from shopkeeper.errors import InvalidInput

Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Size = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Channel = Literal["email", "sms", "push", "post", "phone", "staff", "web"]
Frequency = Literal["as_it_happens", "daily", "weekly", "monthly", "quarterly", "never"]
LANGUAGE = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"


class Preferences(BaseModel):
    """Every stated preference a person (or the shop on their behalf) can set. All optional."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    language: Annotated[str, StringConstraints(pattern=LANGUAGE, max_length=35)] | None = None
    first_name: Short | None = None
    last_name: Short | None = None
    size: Size | None = None
    sizes: Annotated[dict[Short, Size], Field(max_length=20)] | None = None
    favourite_categories: Annotated[list[Short], Field(max_length=50)] | None = None
    disliked_categories: Annotated[list[Short], Field(max_length=50)] | None = None
    favourite_colours: Annotated[list[Short], Field(max_length=50)] | None = None
    disliked_colours: Annotated[list[Short], Field(max_length=50)] | None = None
    favourite_brands: Annotated[list[Short], Field(max_length=50)] | None = None
    disliked_brands: Annotated[list[Short], Field(max_length=50)] | None = None
    rejected_items: (
        Annotated[list[Annotated[str, StringConstraints(max_length=255)]], Field(max_length=500)] | None
    ) = None
    preferred_channels: Annotated[list[Channel], Field(max_length=7)] | None = None
    contact_frequency: Frequency | None = None
    pause_until: date | None = None
    timezone: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = (
        None
    )
    answers: (
        Annotated[
            dict[
                Annotated[str, StringConstraints(min_length=1, max_length=200)],
                Annotated[str, StringConstraints(max_length=2000)],
            ],
            Field(max_length=20),
        ]
        | None
    ) = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        """An IANA time zone (`Europe/London`): moments keep quiet hours in it."""
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known time zone (an IANA name such as Europe/London)") from None
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _clean_text(cls, value: Any) -> Any:
        return _clean(value)


def _clean(value: Any) -> Any:
    """NFC-normalise text and refuse control characters (NUL, escapes) anywhere in it."""
    if isinstance(value, str):
        if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in value):
            raise ValueError("text may not contain control characters")
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


KNOWN = tuple(Preferences.model_fields)


def parse_preferences(body: Any) -> dict[str, Any]:
    """The stated traits in a request body: only the keys it sent, `None` for the ones it clears."""
    if not isinstance(body, dict) or not body:
        raise InvalidInput(f"send a JSON object with one or more of: {', '.join(KNOWN)}", field="preferences")
    unknown = [k for k in body if k not in Preferences.model_fields]
    if unknown:
        raise InvalidInput(
            f"unknown preference {str(unknown[0])[:64]!r}; known: {', '.join(KNOWN)} "
            "(free answers go in `answers`)",
            field=str(unknown[0])[:64],
        )
    try:
        checked = Preferences.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{where}: {first['msg']}", field=where) from None
    values = checked.model_dump(mode="json")
    stated = {key: values[key] for key in body}
    if isinstance(stated.get("language"), str):
        stated["language"] = stated["language"].split("-")[0].lower()
    return stated


def preference_event(
    identity: tuple[str, str], stated: dict[str, Any], *, channel: str, message_id: str
) -> dict[str, Any]:
    """The identify event that states these preferences for the person known by `identity`
    (`("user_id" | "anonymous_id", value)`)."""
    kind, value = identity
    who = {"userId": value} if kind == "user_id" else {"anonymousId": value}
    return {
        "type": "identify",
        **who,
        "messageId": message_id,
        "traits": stated,
        "context": {"shopkeeper": {"stated": True, "channel": channel}},
    }

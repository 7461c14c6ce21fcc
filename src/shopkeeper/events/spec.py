"""The Segment tracking spec: the message types, their fields and their limits, validated with pydantic.

Field names are the spec's (`userId`, `anonymousId`, `messageId`, ...). Unknown top-level fields are kept,
because SDKs add their own (`_metadata`, `channel`, `version`) and the event log stores what was sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictStr, ValidationError

from shopkeeper.errors import InvalidInput

MessageType = Literal["track", "identify", "page", "screen", "group", "alias"]
MESSAGE_TYPES: tuple[MessageType, ...] = ("track", "identify", "page", "screen", "group", "alias")
MAX_ID_LENGTH = 255


def _external_id(value: Any) -> Any:
    """Ids are strings, kept exactly as sent. Integers become strings; an empty string counts as absent."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        if not value:
            return None
        if not value.strip():
            raise ValueError("must not be blank")
    return refuse_nul(value)


def refuse_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL, and no real name or id contains one."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _aware(value: Any) -> Any:
    """Timestamps without a zone are taken as UTC, as Segment does, and must fall in 1970..2199."""
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be a time between 1970 and 2199")
    return value.astimezone(UTC)


_Bounded = Annotated[StrictStr, Field(max_length=MAX_ID_LENGTH)]
ExternalId = Annotated[_Bounded | None, BeforeValidator(_external_id)]
Name = Annotated[_Bounded | None, BeforeValidator(refuse_nul)]
MessageId = Annotated[
    Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH)] | None, BeforeValidator(refuse_nul)
]
Object = dict[str, Any] | None
Timestamp = Annotated[datetime | None, AfterValidator(_aware)]


class Message(BaseModel):
    """One message of any type. Which fields are required depends on `type` (see `check_required`)."""

    model_config = ConfigDict(extra="allow", strict=False)

    type: MessageType
    userId: ExternalId = None
    anonymousId: ExternalId = None
    messageId: MessageId = None
    timestamp: Timestamp = None
    sentAt: Timestamp = None
    context: Object = None
    integrations: Object = None
    event: Name = None
    name: Name = None
    properties: Object = None
    traits: Object = None
    groupId: ExternalId = None
    previousId: ExternalId = None

    def check_required(self, where: str) -> None:
        """Apply the spec's per-type rules, naming the field that breaks them."""
        if self.type == "alias":
            if self.previousId is None:
                raise InvalidInput("alias needs previousId", field=f"{where}previousId")
            if self.userId is None:
                raise InvalidInput("alias needs userId", field=f"{where}userId")
            return
        if self.userId is None and self.anonymousId is None:
            raise InvalidInput("a message needs userId or anonymousId", field=f"{where}userId")
        if self.type == "track" and not (self.event and self.event.strip()):
            raise InvalidInput("track needs a non-empty event name", field=f"{where}event")
        if self.type == "group" and self.groupId is None:
            raise InvalidInput("group needs groupId", field=f"{where}groupId")


def parse_message(raw: Any, *, where: str = "", type_: MessageType | None = None) -> Message:
    """Validate one raw message. `where` prefixes field names in errors (`batch[3].`).

    `type_` is the type implied by the endpoint (`/v1/track`); a body that says otherwise is refused.
    """
    if not isinstance(raw, dict):
        raise InvalidInput("a message must be a JSON object", field=where.rstrip(".") or "body")
    if type_ is not None:
        stated = raw.get("type", type_)
        if stated != type_:
            raise InvalidInput(f"this endpoint takes {type_} messages, not {stated!r}", field=f"{where}type")
        if "type" not in raw:
            raw = {**raw, "type": type_}
    elif "type" not in raw:
        raise InvalidInput(f"type is required, one of {', '.join(MESSAGE_TYPES)}", field=f"{where}type")
    try:
        message = Message.model_validate(raw)
    except ValidationError as exc:
        raise _to_invalid_input(exc, where) from None
    message.check_required(where)
    return message


def parse_time(value: Any, *, field: str) -> datetime | None:
    """A batch-level timestamp (`sentAt`), validated like a message's."""
    if value is None:
        return None
    try:
        at: datetime = _TimeHolder.model_validate({"at": value}).at
    except ValidationError as exc:
        detail = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        if exc.errors(include_url=False)[0]["type"] != "value_error":
            detail = "must be an ISO-8601 time"
        raise InvalidInput(f"{field} {detail}", field=field) from exc
    return at


def parse_object(value: Any, *, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be a JSON object", field=field)
    return value


class _TimeHolder(BaseModel):
    at: Annotated[datetime, AfterValidator(_aware)]


_EXPECTED = {
    "userId": "a string or an integer, at most 255 characters long",
    "anonymousId": "a string or an integer, at most 255 characters long",
    "groupId": "a string or an integer, at most 255 characters long",
    "previousId": "a string or an integer, at most 255 characters long",
    "messageId": "a non-empty string",
    "event": "a string of at most 255 characters",
    "name": "a string of at most 255 characters",
    "timestamp": "an ISO-8601 time",
    "sentAt": "an ISO-8601 time",
    "context": "a JSON object",
    "integrations": "a JSON object",
    "properties": "a JSON object",
    "traits": "a JSON object",
}


def _to_invalid_input(exc: ValidationError, where: str) -> InvalidInput:
    """The first problem, as one precise sentence naming the top-level field (messages are flat)."""
    first = exc.errors(include_url=False)[0]
    name = str(first["loc"][0]) if first["loc"] else ""
    field = f"{where}{name}" if name else where.rstrip(".") or "body"
    if first["type"] == "literal_error" and name == "type":
        detail = f"must be one of {', '.join(MESSAGE_TYPES)}"
    elif first["type"] == "string_too_long":
        detail = f"must be at most {first.get('ctx', {}).get('max_length', MAX_ID_LENGTH)} characters long"
    elif first["type"] == "string_too_short":
        detail = "must not be empty"
    elif first["type"] == "value_error":
        detail = first["msg"].removeprefix("Value error, ")
    elif name in _EXPECTED:
        detail = f"must be {_EXPECTED[name]}"
    else:
        detail = first["msg"]
    return InvalidInput(f"{field} {detail}", field=field)

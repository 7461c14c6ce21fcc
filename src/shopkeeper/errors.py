"""The exception tree: every error shopkeeper raises on purpose, with its HTTP status and a stable code.

ShopkeeperError
├── InvalidInput            400  bad JSON, a wrong type, a missing field
│   └── PayloadTooLarge     413  over the spec's 32 KB per message / 500 KB per batch
├── AuthenticationError     401  no key, or a key we don't know
├── PermissionDenied        403  a key of the wrong kind, or a browser origin the key doesn't allow
├── NotFound                404  an unknown person or route
├── RequestTimeout          408  a body that did not arrive within the read timeout
├── LintFailed              422  a template with lint findings: each with its line, column, code, message
└── StoreError              503  the database can't be reached or isn't migrated
    └── StoreUnavailable    503  the database went away, timed out or is full mid-request (retry later)
"""

from __future__ import annotations


class ShopkeeperError(Exception):
    """Base of every error shopkeeper raises on purpose."""

    status = 500
    code = "error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, object]:
        """The body of an HTTP error: `{"error": {"code", "message", "field"}}`."""
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


class InvalidInput(ShopkeeperError):
    status = 400
    code = "invalid_input"


class PayloadTooLarge(InvalidInput):
    status = 413
    code = "payload_too_large"


class AuthenticationError(ShopkeeperError):
    status = 401
    code = "unauthenticated"


class PermissionDenied(ShopkeeperError):
    status = 403
    code = "forbidden"


class NotFound(ShopkeeperError):
    status = 404
    code = "not_found"


class RequestTimeout(ShopkeeperError):
    status = 408
    code = "request_timeout"


class LintFailed(ShopkeeperError):
    """A template that lint rejects. `findings`: `{"part", "line", "column", "code", "message"}` each."""

    status = 422
    code = "lint_failed"

    def __init__(self, message: str, findings: list[dict[str, object]]) -> None:
        super().__init__(message, field="body")
        self.findings = findings

    def to_json(self) -> dict[str, object]:
        body = super().to_json()
        body["findings"] = self.findings
        return body


class Conflict(ShopkeeperError):
    """The request clashes with what exists: a name already taken, a placement already busy."""

    status = 409
    code = "conflict"


class TooManyLogins(ShopkeeperError):
    """Too many failed dashboard logins for this email or from this client: wait `retry_after` seconds."""

    status = 429
    code = "too_many_logins"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed logins from here: try again in {max(1, retry_after // 60)} minutes",
            field="email",
        )
        self.retry_after = retry_after


class StoreError(ShopkeeperError):
    status = 503
    code = "store_unavailable"


class StoreUnavailable(StoreError):
    """The database failed under a request: down, frozen past the timeouts, or out of disk. Nothing of
    the request was stored, and the client should retry after `retry_after` seconds."""

    retry_after = 5

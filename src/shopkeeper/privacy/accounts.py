"""Who may open the dashboard: users with a role, Argon2id password hashes, sessions, and a login limit.

Roles, from least to most: `staff` (the inbox and the people their tasks name), `marketer` (everything but
users and keys), `owner` (everything). A session token is 256 random bits sent only as a cookie; the store
keeps its sha256. A login fails the same way, in words and in time, for an unknown email, a disabled user and
a wrong password, so the form does not tell an attacker which emails exist. Failed logins are counted per
email and per client over a window; past the limit, logins from there are refused until the window passes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from shopkeeper.errors import AuthenticationError, Conflict, InvalidInput, TooManyLogins
from shopkeeper.store import Store
from shopkeeper.store.users import DashboardUser

Role = Literal["staff", "marketer", "owner"]
ROLES: tuple[Role, ...] = ("staff", "marketer", "owner")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # Argon2 takes any length; a megabyte "password" is a denial of service
MAX_EMAIL = 254

WINDOW = timedelta(minutes=15)
FAILURES_PER_EMAIL = 5
FAILURES_PER_CLIENT = 20
LOGIN_FAILED = "that email and password do not match an active user"


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in user, with the token forms must echo (CSRF) and the cookie's own token."""

    user: DashboardUser
    csrf: str
    token: str

    def may(self, role: Role) -> bool:
        return ROLES.index(self.user.role) >= ROLES.index(role)


def normalized_email(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > MAX_EMAIL or any(c.isspace() for c in email):
        raise InvalidInput("email: give an address like name@example.com", field="email")
    if any(ord(c) < 32 or ord(c) == 127 for c in email):
        raise InvalidInput("email: control characters are not allowed", field="email")
    return email


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Accounts:
    def __init__(
        self, store: Store, *, session_hours: float = 12.0, hasher: PasswordHasher | None = None
    ) -> None:
        self._users = store.users
        self._session = timedelta(hours=session_hours)
        self._hasher = hasher or PasswordHasher()

    @cached_property
    def _decoy(self) -> str:
        """Verified against when the email is unknown, so that a miss costs what a wrong password costs.
        Made on the first login, not when the app or a command starts (a hash is tens of milliseconds)."""
        return self._hasher.hash(secrets.token_urlsafe(16))

    @property
    def session_seconds(self) -> float:
        return self._session.total_seconds()

    # ---- users ----------------------------------------------------------------------------------------

    def create(self, email: str, role: str, password: str) -> DashboardUser:
        if role not in ROLES:
            raise InvalidInput(f"role: one of {', '.join(ROLES)}", field="role")
        _check_password(password)
        return self._users.create(normalized_email(email), role, self._hasher.hash(password), _now())

    def list(self) -> list[DashboardUser]:
        return self._users.list()

    def change(self, user_id: int, *, role: str | None = None, disabled: bool | None = None) -> DashboardUser:
        """Change a user's role, or disable or enable them; the shop never loses its last active owner."""
        user = self._users.get(user_id)
        values: dict[str, object] = {}
        if role is not None:
            if role not in ROLES:
                raise InvalidInput(f"role: one of {', '.join(ROLES)}", field="role")
            values["role"] = role
        if disabled is not None:
            values["disabled_at"] = _now() if disabled else None
        losing_owner = (
            user.role == "owner"
            and user.active
            and (values.get("role", "owner") != "owner" or values.get("disabled_at") is not None)
        )
        if losing_owner and self._users.count_active_owners() <= 1:
            raise Conflict("the shop must keep at least one active owner", field="user")
        if values:
            self._users.update(user_id, **values)
        return self._users.get(user_id)

    def set_password(self, user_id: int, password: str) -> None:
        _check_password(password)
        self._users.update(user_id, password_hash=self._hasher.hash(password))

    # ---- logging in -----------------------------------------------------------------------------------

    def login(self, email: str, password: str, client: str) -> Session:
        """A new session, or AuthenticationError (the same for every failure), or TooManyLogins."""
        now = _now()
        subjects = [f"email:{_hash(email.strip().lower())}", f"client:{_hash(client)}"]
        counts = self._users.failures(subjects, now - WINDOW)
        if (
            counts.get(subjects[0], 0) >= FAILURES_PER_EMAIL
            or counts.get(subjects[1], 0) >= FAILURES_PER_CLIENT
        ):
            raise TooManyLogins(int(WINDOW.total_seconds()))
        found = self._users.with_hash(email.strip().lower()) if len(email) <= MAX_EMAIL else None
        if not self._verified(found, password):
            self._users.fail(subjects, now, now - WINDOW)
            raise AuthenticationError(LOGIN_FAILED, field="email")
        assert found is not None
        user, stored = found
        if self._hasher.check_needs_rehash(stored):
            self._users.update(user.id, password_hash=self._hasher.hash(password))
        self._users.forgive(subjects[0])
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self._users.start_session(_hash(token), user.id, csrf, now, now + self._session)
        return Session(user, csrf, token)

    def _verified(self, found: tuple[DashboardUser, str] | None, password: str) -> bool:
        stored = self._decoy if found is None else found[1]
        try:
            verified = bool(self._hasher.verify(stored, password[:MAX_PASSWORD]))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            verified = False
        return verified and found is not None and found[0].active and len(password) <= MAX_PASSWORD

    def session(self, token: str | None) -> Session | None:
        if not token or len(token) > 128:
            return None
        found = self._users.session(_hash(token), _now())
        return None if found is None else Session(found[0], found[1], token)

    def logout(self, token: str) -> None:
        self._users.end_session(_hash(token))


def csrf_matches(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), (sent or "").encode())


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password: at least {MIN_PASSWORD} characters", field="password")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"password: at most {MAX_PASSWORD} characters", field="password")


def _now() -> datetime:
    return datetime.now(UTC)

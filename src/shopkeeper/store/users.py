"""The dashboard's users, their sessions and failed logins, and the audit log as the dashboard reads it.

Only an Argon2id hash of a password (made by `shopkeeper.privacy.accounts`) and a sha256 of a session token
are stored; a failed login is kept under a hash of the address or client it came from, never the address.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shopkeeper.errors import Conflict, NotFound
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.schema import audit_log, dashboard_sessions, dashboard_users, login_failures


@dataclass(frozen=True, slots=True)
class DashboardUser:
    id: int
    email: str
    role: str
    created_at: datetime
    disabled_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    person_id: int | None
    detail: dict[str, Any]


def _user(row: Any) -> DashboardUser:
    return DashboardUser(row.id, row.email, row.role, row.created_at, row.disabled_at)


_USER_COLUMNS = (
    dashboard_users.c.id,
    dashboard_users.c.email,
    dashboard_users.c.role,
    dashboard_users.c.created_at,
    dashboard_users.c.disabled_at,
)


class SqlUsers:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ---- users ----------------------------------------------------------------------------------------

    def create(self, email: str, role: str, password_hash: str, now: datetime) -> DashboardUser:
        try:
            with write_transaction(self._engine) as conn:
                user_id = conn.execute(
                    insert(dashboard_users).values(
                        email=email, role=role, password_hash=password_hash, created_at=now
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
        except IntegrityError:
            raise Conflict(f"a user with the email {email!r} exists already", field="email") from None
        return DashboardUser(int(user_id), email, role, now)

    def with_hash(self, email: str) -> tuple[DashboardUser, str] | None:
        """The user with this (lower-cased) email and their password hash, disabled or not."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(*_USER_COLUMNS, dashboard_users.c.password_hash).where(
                    dashboard_users.c.email == email
                )
            ).first()
        return None if row is None else (_user(row), row.password_hash)

    def get(self, user_id: int) -> DashboardUser:
        with self._engine.connect() as conn:
            row = conn.execute(select(*_USER_COLUMNS).where(dashboard_users.c.id == user_id)).first()
        if row is None:
            raise NotFound(f"no user {user_id}", field="user")
        return _user(row)

    def list(self) -> list[DashboardUser]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(*_USER_COLUMNS).order_by(dashboard_users.c.id)).all()
        return [_user(row) for row in rows]

    def count_active_owners(self) -> int:
        with self._engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(dashboard_users)
                    .where(dashboard_users.c.role == "owner", dashboard_users.c.disabled_at.is_(None))
                ).scalar_one()
            )

    def update(self, user_id: int, **values: Any) -> None:
        """Change a user's `role`, `password_hash` or `disabled_at`; any change ends their sessions."""
        with write_transaction(self._engine) as conn:
            changed = conn.execute(
                update(dashboard_users).where(dashboard_users.c.id == user_id).values(**values)
            ).rowcount
            if not changed:
                raise NotFound(f"no user {user_id}", field="user")
            conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.user_id == user_id))

    # ---- sessions -------------------------------------------------------------------------------------

    def start_session(
        self, token_hash: str, user_id: int, csrf: str, now: datetime, expires_at: datetime
    ) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.expires_at < now))
            conn.execute(
                insert(dashboard_sessions).values(
                    token_hash=token_hash, user_id=user_id, csrf=csrf, created_at=now, expires_at=expires_at
                )
            )

    def session(self, token_hash: str, now: datetime) -> tuple[DashboardUser, str] | None:
        """The live session's user (not disabled) and its CSRF token, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(*_USER_COLUMNS, dashboard_sessions.c.csrf)
                .join(dashboard_users, dashboard_users.c.id == dashboard_sessions.c.user_id)
                .where(
                    dashboard_sessions.c.token_hash == token_hash,
                    dashboard_sessions.c.expires_at > now,
                    dashboard_users.c.disabled_at.is_(None),
                )
            ).first()
        return None if row is None else (_user(row), row.csrf)

    def end_session(self, token_hash: str) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.token_hash == token_hash))

    # ---- failed logins --------------------------------------------------------------------------------

    def failures(self, subjects: builtins.list[str], since: datetime) -> dict[str, int]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(login_failures.c.subject, func.count())
                .where(login_failures.c.subject.in_(subjects), login_failures.c.at >= since)
                .group_by(login_failures.c.subject)
            ).all()
        return {subject: int(n) for subject, n in rows}

    def fail(self, subjects: builtins.list[str], now: datetime, forget_before: datetime) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(delete(login_failures).where(login_failures.c.at < forget_before))
            conn.execute(insert(login_failures), [{"subject": s, "at": now} for s in subjects])

    def forgive(self, subject: str) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(delete(login_failures).where(login_failures.c.subject == subject))

    # ---- the audit log --------------------------------------------------------------------------------

    def audit_entries(
        self, *, limit: int = 100, actor_prefix: str | None = None
    ) -> builtins.list[AuditEntry]:
        """The newest entries first; `actor_prefix` keeps only those of such actors (e.g. "user ")."""
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if actor_prefix:
            query = query.where(audit_log.c.actor.startswith(actor_prefix, autoescape=True))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            AuditEntry(row.id, row.at, row.actor, row.action, row.person_id, orjson.loads(row.detail))
            for row in rows
        ]

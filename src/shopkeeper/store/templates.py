"""Templates in the database: every save a new version, kept; and the count of messages not produced."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, and_, func, insert, select, update

from shopkeeper.errors import NotFound
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.schema import template_aborts, templates


@dataclass(frozen=True, slots=True)
class StoredTemplate:
    name: str
    version: int
    channel: str
    body: dict[str, Any]  # the template's JSON, as saved
    saved_at: datetime
    saved_by: str

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "channel": self.channel,
            "saved_at": self.saved_at.isoformat(),
            "saved_by": self.saved_by,
        }


class SqlTemplates:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def save(self, name: str, channel: str, body: dict[str, Any], *, by: str) -> StoredTemplate:
        """Store `body` as the next version of `name` (the first is 1). An unchanged body is not a new
        version: the latest one is returned as it is."""
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            newest_first = templates.c.version.desc()
            latest = conn.execute(
                select(templates).where(templates.c.name == name).order_by(newest_first).limit(1)
            ).first()
            if latest is not None and orjson.loads(latest.body) == body:
                return _to_template(latest)
            version = 1 if latest is None else int(latest.version) + 1
            row = {
                "name": name,
                "version": version,
                "channel": channel,
                "body": orjson.dumps(body).decode(),
                "saved_at": now,
                "saved_by": by[:64],
            }
            conn.execute(insert(templates).values(row))
        return StoredTemplate(name, version, channel, body, now, by[:64])

    def get(self, name: str, version: int | None = None) -> StoredTemplate:
        """The latest version of `name`, or the one asked for. Raises NotFound."""
        query = select(templates).where(templates.c.name == name)
        if version is None:
            query = query.order_by(templates.c.version.desc()).limit(1)
        else:
            query = query.where(templates.c.version == version)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            what = f"no template named {name!r}" + (f" with version {version}" if version else "")
            raise NotFound(what, field="name")
        return _to_template(row)

    def latest(self) -> list[StoredTemplate]:
        """The latest version of every template, by name."""
        newest = (
            select(templates.c.name, func.max(templates.c.version).label("version"))
            .group_by(templates.c.name)
            .subquery()
        )
        query = (
            select(templates)
            .join(newest, and_(templates.c.name == newest.c.name, templates.c.version == newest.c.version))
            .order_by(templates.c.name)
        )
        with self._engine.connect() as conn:
            return [_to_template(r) for r in conn.execute(query)]

    def versions(self, name: str) -> int:
        """How many versions `name` has (0: none)."""
        with self._engine.connect() as conn:
            found = conn.scalar(select(func.max(templates.c.version)).where(templates.c.name == name))
        return int(found or 0)

    def count_aborts(self, name: str, version: int, reasons: dict[str, int]) -> None:
        """Add to the count of messages of this version not produced, per reason."""
        if not reasons:
            return
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            for reason, n in reasons.items():
                key = and_(
                    template_aborts.c.name == name,
                    template_aborts.c.version == version,
                    template_aborts.c.reason == reason[:255],
                )
                done = conn.execute(
                    update(template_aborts).where(key).values(count=template_aborts.c.count + n, last_at=now)
                ).rowcount
                if not done:
                    conn.execute(
                        insert(template_aborts).values(
                            name=name, version=version, reason=reason[:255], count=n, last_at=now
                        )
                    )

    def aborts(self, name: str) -> list[dict[str, Any]]:
        """The messages of `name` not produced, per version and reason, most frequent first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(template_aborts)
                .where(template_aborts.c.name == name)
                .order_by(template_aborts.c.count.desc(), template_aborts.c.reason)
            ).all()
        return [
            {"version": r.version, "reason": r.reason, "count": r.count, "last_at": r.last_at.isoformat()}
            for r in rows
        ]


def _to_template(row: Any) -> StoredTemplate:
    return StoredTemplate(
        name=row.name,
        version=int(row.version),
        channel=row.channel,
        body=orjson.loads(row.body),
        saved_at=row.saved_at,
        saved_by=row.saved_by,
    )

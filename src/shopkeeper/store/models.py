"""Published models: each version is one row holding a zip of `.npz`/`.json` files, never a pickle.

Publishing is one insert, so a reader sees a whole model or none; several API workers on PostgreSQL
all pick up a new version from the same table.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, func, insert, select

from shopkeeper.store.engine import write_transaction
from shopkeeper.store.schema import model_versions

MAX_MEMBER_BYTES = 2 * 1024**3


@dataclass(frozen=True, slots=True)
class ModelVersion:
    version: int
    kind: str
    created_at: datetime
    summary: dict[str, Any]


class SqlModelRegistry:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def publish(self, kind: str, directory: Path, summary: dict[str, Any]) -> ModelVersion:
        """Store the files under `directory` as the newest version of the model."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for path in sorted(directory.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(directory).as_posix())
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            version = conn.execute(
                insert(model_versions).values(
                    kind=kind,
                    created_at=now,
                    summary=orjson.dumps(summary).decode(),
                    artifact=buffer.getvalue(),
                )
            ).inserted_primary_key
        assert version is not None
        return ModelVersion(int(version[0]), kind, now, summary)

    def latest_version(self, conn: Connection | None = None) -> int | None:
        """The newest version's number (None: nothing published yet), on `conn` when given."""
        if conn is None:
            with self._engine.connect() as own:
                return self.latest_version(own)
        found = conn.scalar(select(func.max(model_versions.c.version)))
        return None if found is None else int(found)

    def unpack(self, version: int, directory: Path) -> ModelVersion:
        """Write a version's files into `directory` (which must be empty) and return its record."""
        with self._engine.connect() as conn:
            row = conn.execute(select(model_versions).where(model_versions.c.version == version)).one()
        with zipfile.ZipFile(io.BytesIO(row.artifact)) as archive:
            for member in archive.infolist():
                target = (directory / member.filename).resolve()
                if not target.is_relative_to(directory.resolve()) or member.file_size > MAX_MEMBER_BYTES:
                    raise ValueError(f"unsafe member {member.filename!r} in model version {version}")
            archive.extractall(directory)
        return ModelVersion(row.version, row.kind, row.created_at, orjson.loads(row.summary))

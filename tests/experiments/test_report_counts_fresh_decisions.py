"""A report counts the decisions made just before it, and a decision the store refused once is written
on a later try, not dropped (CI once reported 26 of 28 people: the last decisions were still in the log)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from tests.conftest import serving_app

from shopkeeper.api.app import create_app
from shopkeeper.decide.log import DecisionLog
from shopkeeper.experiments.assign import Holdout
from shopkeeper.settings import Settings
from shopkeeper.store import Store
from shopkeeper.store import decision_log as decisions_module
from shopkeeper.store.schema import decisions


def test_a_report_counts_every_decision_still_waiting_in_the_log(store: Store) -> None:
    settings = Settings(database_url=str(store.engine.url), rate_limit_failed_auth=0)
    app = create_app(settings, store=store)
    state = app.state.shopkeeper
    state.decider.log = DecisionLog(store, every=3600)  # writes only when flushed
    admin_key, _ = store.keys.create("admin", name="tests")
    admin = {"Authorization": f"Bearer {admin_key}"}
    users = [f"fresh-{n}" for n in range(12) if not Holdout().contains(f"fresh-{n}")]
    with serving_app(app, settings) as url:
        body = {"name": "now", "placement": "web", "variants": [{"name": "a"}, {"name": "b"}]}
        assert httpx.post(f"{url}/v1/experiments", headers=admin, json=body).status_code == 201
        for user in users:
            assert httpx.post(f"{url}/v1/decide", headers=admin, json={"userId": user}).status_code == 200
        report = httpx.get(f"{url}/v1/experiments/now/report", headers=admin)
        assert report.status_code == 200, report.text
        assert report.json()["people"] == len(users)


def test_a_batch_the_store_refuses_once_is_written_on_the_next_try(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = decisions_module.store_decisions
    refused: list[int] = []

    def busy_once(engine: Any, rows: list[dict[str, Any]]) -> int:
        if not refused:
            refused.append(len(rows))
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return real(engine, rows)

    monkeypatch.setattr(decisions_module, "store_decisions", busy_once)
    log = DecisionLog(store, every=3600)
    for _ in range(3):
        log.log(_anonymous_row())
    log.flush()
    assert refused == [3]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(decisions)).scalar_one() == 3


def _anonymous_row() -> dict[str, Any]:
    return {
        "decision_id": str(uuid.uuid4()),
        "person_id": None,
        "external_id": f"anon-{uuid.uuid4()}",
        "placement": "web",
        "model_version": None,
        "personalized": 0,
        "items": "[]",
        "reasons": "[]",
        "at": datetime.now(UTC),
    }

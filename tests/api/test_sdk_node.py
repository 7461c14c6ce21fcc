"""Segment's Node SDK (@segment/analytics-node, installed from npm) against a live server, read back."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
from tests.js_clients import node_modules

if TYPE_CHECKING:
    from conftest import LiveServer

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).parent / "send_with_analytics_node.js"


def _run_node(server_url: str, write_key: str, run: str) -> tuple[int, dict[str, Any]]:
    """Run the script; its exit code and what it printed ({"single", "batch", "errors"})."""
    environment = {**os.environ, "NODE_PATH": str(node_modules())}
    done = subprocess.run(
        ["node", str(SCRIPT), server_url, write_key, run],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )
    assert done.stdout, done.stderr
    result: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return done.returncode, result


def test_node_sdk_calls_and_batch_land_and_stitch(live_server: LiveServer) -> None:
    """identify, track and alias one request each, then four calls in one batch: all stored, stitched."""
    run = uuid.uuid4().hex[:8]
    user, phone = f"node-user-{run}", f"node-phone-{run}"
    code, result = _run_node(live_server.url, live_server.write_key, run)
    assert (code, result["errors"]) == (0, [])

    with httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {live_server.admin_key}"}, timeout=10
    ) as admin:
        person = admin.get(f"/v1/people/{user}").json()
        events = admin.get(f"/v1/people/{user}/events", params={"limit": 100}).json()["events"]
        assert admin.get(f"/v1/people/{phone}").json()["person_id"] == person["person_id"]
        assert admin.get(f"/v1/people/node.{run}@example.com").json()["person_id"] == person["person_id"]

    assert person["event_counts"] == {"identify": 1, "track": 3, "alias": 1, "page": 1, "group": 1}
    assert [(m["outcome"], m["reason"]) for m in person["merges"]] == [("merged", "alias")]
    by_id = {e["messageId"]: e for e in events}
    assert sorted(by_id) == sorted(result["single"] + result["batch"])
    assert {e["context"]["library"]["name"] for e in events} == {"@segment/analytics-node"}
    assert by_id[f"node-{run}-track"]["properties"] == {"sku": "71053", "price": 3.75}
    assert by_id[f"node-{run}-alias"]["previousId"] == phone
    assert by_id[f"node-{run}-identify"]["traits"]["plan"] == "gold"
    # The batch went as one request: the server stamps a request's messages with one receivedAt.
    batch_received = {by_id[message_id]["receivedAt"] for message_id in result["batch"]}
    assert len(batch_received) == 1
    singles_received = {by_id[message_id]["receivedAt"] for message_id in result["single"]}
    assert len(singles_received) == 3


def test_node_sdk_reports_a_refused_key(live_server: LiveServer) -> None:
    """A wrong write key reaches the SDK's error handler, and nothing is stored."""
    before = live_server.store.events.count()
    code, result = _run_node(live_server.url, "sk_write_not-a-real-key", "refused")
    assert code == 1
    assert result["errors"] and all("401" in error for error in result["errors"]), result
    assert live_server.store.events.count() == before

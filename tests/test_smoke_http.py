"""Temporary smoke test while the suite is built."""

import httpx


def test_track_round_trip(live_server):
    r = httpx.post(
        f"{live_server.url}/v1/track",
        auth=(live_server.write_key, ""),
        json={"userId": "u1", "event": "Order Completed", "messageId": "m1"},
    )
    assert r.status_code == 200, r.text
    r2 = httpx.get(
        f"{live_server.url}/v1/people/u1", headers={"Authorization": f"Bearer {live_server.admin_key}"}
    )
    assert r2.status_code == 200, r2.text
    assert r2.json()["event_count"] == 1

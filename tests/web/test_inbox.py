"""The inbox's snooze times, in the shop's time zone, and the order its tasks come in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shopkeeper.errors import InvalidInput
from shopkeeper.privacy.accounts import Session
from shopkeeper.store.users import DashboardUser
from shopkeeper.web.inbox import InboxView, snooze_until, when

# A Saturday evening in London in summer (BST, UTC+1): 19:30 local.
NOW = datetime(2026, 7, 4, 18, 30, tzinfo=UTC)


def test_two_hours_is_two_hours_from_now() -> None:
    assert snooze_until("2h", "", "Europe/London", NOW) == NOW + timedelta(hours=2)


def test_tomorrow_and_monday_are_nine_in_the_morning_where_the_shop_is() -> None:
    assert snooze_until("tomorrow", "", "Europe/London", NOW) == datetime(2026, 7, 5, 8, 0, tzinfo=UTC)
    assert snooze_until("monday", "", "Europe/London", NOW) == datetime(2026, 7, 6, 8, 0, tzinfo=UTC)
    winter = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # a Monday: next Monday, a week on
    assert snooze_until("monday", "", "Europe/London", winter) == datetime(2026, 12, 14, 9, 0, tzinfo=UTC)
    assert snooze_until("tomorrow", "", "Not/AZone", NOW) == datetime(2026, 7, 5, 9, 0, tzinfo=UTC)


def test_a_date_is_nine_in_the_morning_that_day_and_must_be_ahead() -> None:
    assert snooze_until("date", " 2026-07-20 ", "Europe/London", NOW) == datetime(
        2026, 7, 20, 8, 0, tzinfo=UTC
    )
    for kind, day, words in (
        ("date", "2026-07-04", "a day in the future"),  # today's 9:00 has passed
        ("date", "20/07/2026", "like 2027-01-31"),
        ("date", "", "like 2027-01-31"),
        ("date", "2028-01-01", "at most 365 days"),
        ("forever", "", "choose how long to snooze"),
    ):
        with pytest.raises(InvalidInput, match=words):
            snooze_until(kind, day, "Europe/London", NOW)


def test_times_are_said_on_the_shop_s_clock() -> None:
    assert when("2026-07-05T08:00:00+00:00", "Europe/London") == "Sun 5 Jul 2026, 09:00"
    assert when(None, "UTC") == ""


def _task(task_id: int, status: str, assignee: str | None) -> dict[str, Any]:
    at = "2026-07-04T10:00:00+00:00"
    return {
        "id": task_id,
        "person": str(task_id),
        "rule": "back_in_stock",
        "status": status,
        "assignee": assignee,
        "created_at": at,
        "due_at": at,
        "snoozed_until": at if status == "snoozed" else None,
        "outcome": None,
        "note": None,
        "text": "why",
        "context": {},
    }


def _session(role: str) -> Session:
    user = DashboardUser(1, f"{role}@shop.example", role, NOW, None)
    return Session(user, "csrf", "token")


def test_staff_see_their_own_first_and_never_a_colleague_s() -> None:
    tasks = [
        _task(1, "open", None),
        _task(2, "claimed", "other@shop.example"),
        _task(3, "claimed", "staff@shop.example"),
        _task(4, "snoozed", None),
        _task(5, "snoozed", "other@shop.example"),
        _task(6, "open", "staff@shop.example"),  # a snooze of mine that woke
    ]
    staff = InboxView.of(tasks, _session("staff"), "UTC")
    assert [[t["id"] for t in group] for group in (staff.mine, staff.open, staff.snoozed, staff.others)] == [
        [3],
        [1, 6],
        [4],
        [],
    ]
    assert staff.count == 4
    marketer = InboxView.of(tasks, _session("marketer"), "UTC")
    assert [t["id"] for t in marketer.others] == [2, 3, 5, 6]

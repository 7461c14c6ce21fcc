"""The overview: people, events and decisions per day, what moments did, the headline (personalization vs
the holdout, in words), and the reach of the audiences in use."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shopkeeper.privacy.accounts import Session
from shopkeeper.store.dashboard import SqlDashboard
from shopkeeper.web import figures
from shopkeeper.web.core import PageRoute, dashboard_of, needs, redirect, render
from shopkeeper.web.headline import headline
from shopkeeper.web.snapshots import Snapshot

router = APIRouter(route_class=PageRoute)
DAYS = 30


@router.get("")
def overview(request: Request, session: Session = Depends(needs("staff"))) -> Response:
    if not session.may("marketer"):
        return redirect("/dashboard/inbox")
    board = dashboard_of(request)
    shop = board.shop
    counts = SqlDashboard(shop.store.engine)
    now = datetime.now(UTC)
    since = now - timedelta(days=DAYS)
    days = [(since + timedelta(days=i + 1)).date() for i in range(DAYS)]
    events = counts.events_per_day(since)
    decisions = counts.decisions_per_day(since)
    outbox = counts.outbox_since(since)
    reported = figures.report(request, "holdout")
    report = reported.value[0]
    listed = figures.audience_sizes(request)
    audiences, reaches = _audiences(request, listed.value)
    top = headline(report, share=board.settings.holdout_share, min_lift=board.settings.dashboard_min_lift)
    return render(
        request,
        "overview.html",
        people=counts.people(),
        days=DAYS,
        events_total=sum(events.values()),
        decisions_total=sum(a + b for a, b in decisions.values()),
        events_chart=_daily_chart("Events per day", "events", days, [("events", events)]),
        decisions_chart=_daily_chart(
            "Decisions per day",
            "decisions",
            days,
            [
                ("personalized", {d: v[0] for d, v in decisions.items()}),
                ("baseline (holdout, no consent, unknown)", {d: v[1] for d, v in decisions.items()}),
            ],
        ),
        moments=_moments(outbox),
        headline=top,
        report=report,
        audiences=audiences,
        as_of=figures.oldest(reported, listed, *reaches),
    )


def _daily_chart(
    title: str, units: str, days: list[date], series: list[tuple[str, dict[date, int]]]
) -> dict[str, Any]:
    return {
        "title": f"{title}, last {len(days)} days",
        "units": units,
        "x_label": "day",
        "y_label": units,
        "kind": "bars" if len(series) == 1 else "line",
        "x": [d.isoformat() for d in days],
        "x_text": [d.strftime("%d %b") for d in days],
        "x_time": False,
        "series": [{"label": label, "values": [values.get(d, 0) for d in days]} for label, values in series],
    }


def _moments(rows: list[tuple[str, str, str | None, int]]) -> dict[str, Any]:
    sent = sum(n for _, status, _, n in rows if status == "sent")
    staff = sum(n for channel, status, _, n in rows if channel == "staff" and status == "sent")
    suppressed: dict[str, int] = {}
    other: dict[str, int] = {}
    for _, status, reason, n in rows:
        if status == "suppressed":
            key = reason or "unknown"
            suppressed[key] = suppressed.get(key, 0) + n
        elif status != "sent":
            other[status] = other.get(status, 0) + n
    return {
        "sent": sent,
        "staff": staff,
        "suppressed": sorted(suppressed.items(), key=lambda kv: -kv[1]),
        "suppressed_total": sum(suppressed.values()),
        "other": sorted(other.items()),
    }


def _audiences(request: Request, listed: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Snapshot]]:
    """Every saved audience with its size; those in use (a running experiment, a moment rule) with their
    whole reach (and the snapshots those came from)."""
    in_use = dashboard_of(request).shop.audiences.targeted_by()
    found, reaches = [], []
    for audience in listed[:50]:
        used = in_use.get(audience["name"], [])
        reach = figures.reach(request, audience["name"]) if used else None
        if reach is not None:
            reaches.append(reach)
        found.append({**audience, "used_by": used, "reach": None if reach is None else reach.value["reach"]})
    return found, reaches

"""The moments page (each rule with what it did: its firings and suppressions, by status and reason, and
its newest moments), a rule's own page with its reach, and the staff inbox (claim, snooze, done)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shopkeeper.errors import Conflict, InvalidInput, NotFound, ShopkeeperError
from shopkeeper.moments.respect import WORDS
from shopkeeper.moments.service import OUTCOMES, message_json
from shopkeeper.personas.conditions import describe
from shopkeeper.privacy.accounts import Session
from shopkeeper.shop import Shop
from shopkeeper.web.core import Form, PageRoute, audit, dashboard_of, needs, posted, redirect, render
from shopkeeper.web.inbox import SNOOZES, InboxView, snooze_until, task_view

router = APIRouter(route_class=PageRoute)
DAYS = 30
NEWEST = 5  # the newest moments shown under each rule on the list
STATUS_ORDER = ("sent", "pending", "held", "sending", "suppressed", "failed", "cancelled")
TRIGGER_WORDS = {
    "back_in_stock": "something they wished for is back in stock",
    "price_drop": "something they looked at got cheaper",
    "new_arrival": "a new item matches what they told us they like",
    "milestone": "an order count, a spend or an anniversary is reached",
    "abandoned_cart": "they left something in their cart",
    "winback": "they have been quiet for longer than usual",
    "ask": "we ask them what we do not know (a size, a favourite)",
}
MARKETER = Depends(needs("marketer"))
STAFF = Depends(needs("staff"))


# ---- moment rules ---------------------------------------------------------------------------------


@router.get("/moments")
def moments(request: Request, session: Session = MARKETER) -> Response:
    shop = dashboard_of(request).shop
    since = datetime.now(UTC) - timedelta(days=DAYS)
    counts = shop.store.outbox.counts(since)
    rules = []
    for rule in shop.moments.rules():
        rows = shop.store.outbox.messages(rule=rule["name"], limit=NEWEST)
        recent = [message_json(r, shop.moments.person_ref(r.person_id)) for r in rows]
        rules.append(_rule_view(rule, counts, recent))
    known = {r["name"] for r in rules}
    orphans = sum(n for (rule, _, _), n in counts.items() if rule not in known)
    return render(request, "moments/rules.html", rules=rules, days=DAYS, orphans=orphans)


@router.get("/moments/{rule}")
def moment_rule(request: Request, rule: str, session: Session = MARKETER) -> Response:
    shop = dashboard_of(request).shop
    found = shop.moments.rule(rule)  # as GET /v1/moments/rules/{name}: InvalidInput, NotFound
    counts = shop.store.outbox.counts(datetime.now(UTC) - timedelta(days=DAYS))
    view = _rule_view(found, counts, found.get("recent", []))
    return render(request, "moments/rule.html", rule=view, days=DAYS)


def _rule_view(
    rule: dict[str, Any], counts: dict[tuple[str, str, str], int], recent: list[dict[str, Any]]
) -> dict[str, Any]:
    """A rule as the page shows it: its definition in words, its moments of the last 30 days by status and
    reason (the rows of `counts` for it), and its newest moments."""
    mine = [(status, why, n) for (name, status, why), n in counts.items() if name == rule["name"]]
    by_status: dict[str, int] = {}
    for status, _, n in mine:
        by_status[status] = by_status.get(status, 0) + n
    reasons = sorted(
        ((status, why, WORDS.get(why.split(":")[0], why), n) for status, why, n in mine if why),
        key=lambda row: (-row[3], row[0], row[1]),
    )
    return {
        **rule,
        "trigger_words": TRIGGER_WORDS.get(rule["trigger"], rule["trigger"]),
        "where_words": None if rule.get("where") is None else describe(rule["where"]),
        "by_status": sorted(
            by_status.items(),
            key=lambda kv: STATUS_ORDER.index(kv[0]) if kv[0] in STATUS_ORDER else len(STATUS_ORDER),
        ),
        "reasons": reasons,
        "total": sum(by_status.values()),
        "recent": recent,
    }


# ---- the staff inbox ------------------------------------------------------------------------------

NOTICES = {
    "claim": "You claimed this task: it is yours now.",
    "snooze": "Snoozed: it comes back at the time you chose.",
    "done": "Done, and its outcome is recorded.",
}


@router.get("/inbox")
def inbox(request: Request, session: Session = STAFF, task: int | None = None, did: str = "") -> Response:
    notice = NOTICES.get(did) if task is not None else None
    return _inbox_page(request, session, notice=(task, notice) if notice else None)


def _inbox_page(
    request: Request,
    session: Session,
    *,
    status: int = 200,
    notice: tuple[int | None, str] | None = None,
    error: str = "",
) -> Response:
    board = dashboard_of(request)
    found = board.shop.moments.tasks(status="open", limit=1000)["items"]
    view = InboxView.of(found, session, board.settings.shop_timezone)
    return render(
        request,
        "moments/inbox.html",
        status=status,
        inbox=view,
        snoozes=SNOOZES,
        outcomes=OUTCOMES,
        flash=notice,
        page_error=error,
    )


@router.post("/inbox/{task_id}/claim")
def claim(request: Request, task_id: int, form: Form = Depends(posted), session: Session = STAFF) -> Response:
    shop = dashboard_of(request).shop
    return _act(
        request,
        session,
        task_id,
        "claim",
        lambda: shop.moments.claim(task_id, session.user.email, only_for=_only_for(session)),
    )


@router.post("/inbox/{task_id}/snooze")
def snooze(
    request: Request, task_id: int, form: Form = Depends(posted), session: Session = STAFF
) -> Response:
    board = dashboard_of(request)

    def change() -> dict[str, Any]:
        until = snooze_until(form.get("for"), form.get("date"), board.settings.shop_timezone)
        return board.shop.moments.snooze(task_id, until, only_for=_only_for(session))

    return _act(request, session, task_id, "snooze", change)


@router.post("/inbox/{task_id}/done")
def done(request: Request, task_id: int, form: Form = Depends(posted), session: Session = STAFF) -> Response:
    shop = dashboard_of(request).shop
    outcome = form.get("outcome")
    note = form.get("note").replace("\r\n", "\n").strip() or None

    def change() -> dict[str, Any]:
        if outcome not in OUTCOMES:
            raise InvalidInput("say what happened: " + ", ".join(OUTCOMES), field="outcome")
        return shop.moments.done(
            task_id, outcome, note, by=f"user {session.user.id}", only_for=_only_for(session)
        )

    return _act(request, session, task_id, "done", change)


def _only_for(session: Session) -> str | None:
    """Staff act only on tasks that are nobody's or their own; marketers and owners may also close or
    snooze a colleague's (someone away), and take over a snoozed one."""
    return None if session.may("marketer") else session.user.email


def _act(request: Request, session: Session, task_id: int, action: str, change: Any) -> Response:
    """Run `change` on the task, audit it, and answer: the task's card (htmx) or back to the inbox (a
    form). A refusal (gone, done, someone else's, a bad value) says why, in the card or on the page."""
    shop = dashboard_of(request).shop
    htmx = request.headers.get("hx-request") == "true"
    held = _task_row(shop, task_id)
    if held is None:
        return _refused(request, session, task_id, NotFound(f"there is no task {task_id}"))
    try:
        changed = change()
    except ShopkeeperError as exc:
        if exc.status >= 500:
            raise
        return _refused(request, session, task_id, exc)
    detail: dict[str, Any] = {"task_id": task_id, "rule": changed["rule"]}
    if action == "snooze":
        detail["until"] = changed["snoozed_until"]
    if action == "done":
        detail["outcome"] = changed["outcome"]
    audit(request, session, f"{action}_task", held.person_id, **detail)
    if not htmx:
        return redirect(f"/dashboard/inbox?task={task_id}&did={action}#task-{task_id}")
    view = task_view(changed, session, dashboard_of(request).settings.shop_timezone)
    return render(
        request, "moments/_task.html", task=view, snoozes=SNOOZES, outcomes=OUTCOMES, notice=NOTICES[action]
    )


def _task_row(shop: Shop, task_id: int) -> Any:
    if not 1 <= task_id <= 2**63 - 1:
        return None
    with shop.store.engine.connect() as conn:
        return shop.store.outbox.task(conn, task_id)


def _visible(task: Any, session: Session) -> bool:
    """Staff see tasks that are nobody's or their own; marketers and owners see every task."""
    return session.may("marketer") or task.assignee in (None, session.user.email)


def _refused(request: Request, session: Session, task_id: int, exc: ShopkeeperError) -> Response:
    board = dashboard_of(request)
    now = _task_row(board.shop, task_id)
    message = _why_not(task_id, now, session, exc)
    status = 404 if now is None else exc.status
    if request.headers.get("hx-request") != "true":
        return _inbox_page(request, session, status=status, error=message)
    if now is None or not _visible(now, session):
        return render(request, "moments/_gone.html", status=status, task_id=task_id, message=message)
    view = task_view(board.shop.moments.task(task_id), session, board.settings.shop_timezone)
    return render(
        request,
        "moments/_task.html",
        status=status,
        task=view,
        snoozes=SNOOZES,
        outcomes=OUTCOMES,
        error=message,
    )


def _why_not(task_id: int, task: Any, session: Session, exc: ShopkeeperError) -> str:
    """Why the change was refused, in the words of the task as it is now."""
    if task is None:
        return f"There is no task {task_id}: it may have gone with its customer's erasure."
    if isinstance(exc, InvalidInput) and task.status in ("open", "claimed", "snoozed"):
        return _sentence(exc.message)
    if task.status == "done":
        return f"Task {task_id} is already done (outcome: {task.outcome})."
    if task.status == "cancelled":
        return f"Task {task_id} was cancelled: it needs nothing more."
    if task.assignee not in (None, session.user.email):
        if not session.may("marketer"):
            return f"Task {task_id} is someone else's now: another member of staff claimed it."
        return f"Task {task_id} is claimed by {task.assignee}."
    if task.status == "claimed" and isinstance(exc, Conflict):
        return f"You have claimed task {task_id} already."
    return _sentence(exc.message)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]

"""The audiences: the saved ones with their size and reach; the builder, whose size and reach follow the
conditions as they are edited (htmx posts the form to `preview` as the user types; without JavaScript,
"Show the size" posts it and the page comes back with the reach); saving; the broad-vs-narrow comparison;
and deleting, behind a confirmation where the user types the audience's name."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shopkeeper.decide.placements import placements_from
from shopkeeper.errors import Conflict, InvalidInput, NotFound, ShopkeeperError
from shopkeeper.personas.audiences import check_name
from shopkeeper.personas.compare import compare, experiment_name, summarize
from shopkeeper.personas.conditions import MOMENT_STATUSES, WISH_STATUSES, describe
from shopkeeper.privacy.accounts import Session
from shopkeeper.profiles.traits import DEFAULT_POLICIES
from shopkeeper.shop import Shop
from shopkeeper.web import figures
from shopkeeper.web.audience_form import (
    MAX_ROWS,
    Draft,
    condition_of,
    draft_from_condition,
    draft_from_form,
    preview_of,
)
from shopkeeper.web.core import Form, PageRoute, audit, dashboard_of, needs, posted, redirect, render
from shopkeeper.web.snapshots import Snapshot

router = APIRouter(route_class=PageRoute)
_CLI_COMPARE = re.compile(r"Compare it with the broad base: `shopkeeper audiences compare [^`]*`\.")
MARKETER = Depends(needs("marketer"))
# Suggestions for the event row: the events a shop usually sends (any other name works too).
EVENT_NAMES = (
    "Order Completed",
    "Product Viewed",
    "Product Added",
    "Product Removed",
    "Checkout Started",
    "Order Refunded",
    "Order Cancelled",
    "Products Searched",
    "Back In Stock Requested",
)
MAX_CATEGORY_HINTS = 300
KIND_WORDS = (
    ("", "(none: pick what it looks at)"),
    ("trait", "a trait: what we know of them"),
    ("event", "an event they did"),
    ("purchased", "what they bought"),
    ("persona", "their persona"),
    ("consent", "their consent"),
    ("wish", "a wish they made (back in stock, price drop)"),
    ("moment", "a moment sent to them"),
)
NOTICES = {
    "saved": "Saved.",
    "started": "The comparison started: the experiment below now shows the placement to the audience and to "
    "an equal random sample of everyone else.",
    "running": "The comparison was already running: its latest figures are below.",
}


@router.get("/audiences")
def audiences(request: Request, session: Session = MARKETER, deleted: str = "") -> Response:
    shop = dashboard_of(request).shop
    used = shop.audiences.targeted_by()
    listed = figures.audience_sizes(request)
    found = [a | {"used_by": used.get(a["name"], [])} for a in listed.value]
    deleted = deleted if _valid(deleted) else ""
    return render(request, "audiences/list.html", audiences=found, deleted=deleted, as_of=listed)


@router.get("/audiences/new")
def new_audience(request: Request, session: Session = MARKETER) -> Response:
    return _builder(request, Draft().with_blank_row())


@router.post("/audiences/preview")
def preview(request: Request, form: Form = Depends(posted), session: Session = MARKETER) -> Response:
    """The size and reach of the condition being built: a fragment for htmx, else the builder page."""
    shop = dashboard_of(request).shop
    draft = draft_from_form(form.values)
    condition, reach, error, status, notes = _reach(shop, draft)
    if request.headers.get("hx-request") == "true":
        return render(
            request,
            "audiences/_preview.html",
            status=status,
            draft=_synced(draft, condition),
            condition=condition,
            words=describe(condition) if condition else "",
            reach=reach,
            reach_error=error,
            notes=notes,
            choices=_choices(shop) if draft.editor == "json" else None,
        )
    shown = _synced(draft, condition).with_blank_row(more=1 if form.get("more") else 0)
    audience = _saved(shop, draft.original)
    return _builder(
        request,
        shown,
        condition=condition,
        reach=reach,
        reach_error=error,
        notes=notes,
        status=status,
        audience=audience,
    )


@router.post("/audiences")
def save(request: Request, form: Form = Depends(posted), session: Session = MARKETER) -> Response:
    shop = dashboard_of(request).shop
    draft = draft_from_form(form.values)
    try:
        name = check_name(draft.name)
        condition = condition_of(draft)
        if condition is None:
            raise InvalidInput("add at least one condition before saving", field="where")
        if name != draft.original and _saved(shop, name) is not None:
            raise Conflict(
                f"an audience named {name} exists already: open it to change it, or choose another name",
                field="name",
            )
        found, created = figures.saved(request, name, condition, draft.description.strip() or None)
    except ShopkeeperError as exc:
        if exc.status >= 500:
            raise
        return _builder(
            request,
            draft.with_blank_row(),
            error=exc.message,
            status=exc.status,
            audience=_saved(shop, draft.original),
        )
    audit(request, session, "save_audience", name=name, created=created, size=found["reach"]["size"])
    return redirect(f"/dashboard/audiences/{name}?done=saved")


@router.get("/audiences/{name}")
def audience(
    request: Request, name: str, session: Session = MARKETER, part: str = "", done: str = ""
) -> Response:
    shop = dashboard_of(request).shop
    if part == "reach":  # the list's reach column, loaded after the page
        reach = figures.reach(request, name).value["reach"]
        return render(request, "audiences/_reach_cell.html", name=name, reach=reach)
    return _audience_page(request, shop, name, notice=NOTICES.get(done, ""))


@router.post("/audiences/{name}/compare")
def start_comparison(
    request: Request, name: str, form: Form = Depends(posted), session: Session = MARKETER
) -> Response:
    """Broad vs narrow: start the experiment (or, when it runs, report it) and show it on the page."""
    shop = dashboard_of(request).shop
    placements = placements_from(shop.settings.placements_json)
    placement = form.get("placement", "web")
    try:
        if placement not in placements:
            raise InvalidInput(f"placement: one of {', '.join(sorted(placements))}", field="placement")
        found = compare(shop.audiences, shop.experiments, placements, check_name(name), placement=placement)
    except (InvalidInput, Conflict) as exc:
        return _audience_page(request, shop, name, compare_error=exc.message, status=exc.status)
    audit(
        request,
        session,
        "compare_audience",
        name=name,
        experiment=found["experiment"],
        placement=found["placement"],
        started=found["started"],
    )
    return redirect(
        f"/dashboard/audiences/{name}?done={'started' if found['started'] else 'running'}#compare"
    )


@router.get("/audiences/{name}/delete")
def confirm_delete(request: Request, name: str, session: Session = MARKETER) -> Response:
    return _delete_page(request, name)


@router.post("/audiences/{name}/delete")
def delete(
    request: Request, name: str, form: Form = Depends(posted), session: Session = MARKETER
) -> Response:
    shop = dashboard_of(request).shop
    if form.get("confirm").strip() != name:
        return _delete_page(
            request,
            name,
            status=400,
            error=f"confirm: type the audience's name, {name}, to delete it; nothing was deleted",
        )
    try:
        if not shop.audiences.delete(name):
            raise NotFound(f"no audience is named {name!r}", field="name")
    except Conflict as exc:
        return _delete_page(request, name, status=exc.status, error=exc.message)
    audit(request, session, "delete_audience", name=name)
    return redirect(f"/dashboard/audiences?deleted={name}")


# ---- the pages ---------------------------------------------------------------------------------------


def _builder(
    request: Request,
    draft: Draft,
    *,
    condition: dict[str, Any] | None = None,
    reach: dict[str, Any] | None = None,
    reach_error: str = "",
    notes: list[str] | None = None,
    error: str = "",
    status: int = 200,
    audience: dict[str, Any] | None = None,
    notice: str = "",
    comparison: dict[str, Any] | None = None,
    compare_error: str = "",
    as_of: Snapshot | None = None,
) -> Response:
    shop = dashboard_of(request).shop
    return render(
        request,
        "audiences/edit.html",
        status=status,
        draft=draft,
        condition=condition,
        words=describe(condition) if condition else "",
        reach=reach,
        reach_error=reach_error,
        notes=notes or [],
        error=error,
        audience=audience,
        notice=notice,
        comparison=comparison,
        compare_error=compare_error,
        placements=sorted(placements_from(shop.settings.placements_json)),
        choices=_choices(shop),
        max_rows=MAX_ROWS,
        as_of=as_of,
    )


def _audience_page(
    request: Request, shop: Shop, name: str, *, notice: str = "", compare_error: str = "", status: int = 200
) -> Response:
    reached = figures.reach(request, name)  # NotFound: a 404 page; a malformed name: 400
    shown = reached.value
    draft = draft_from_condition(
        shown["where"], name=name, description=shown["description"] or "", original=name
    )
    return _builder(
        request,
        draft.with_blank_row(),
        condition=shown["where"],
        reach=in_words_here(shown["reach"], saved=True),
        audience=shown | {"used_by": shop.audiences.targeted_by().get(name, [])},
        notice=notice,
        comparison=comparison_of(request, shop, name),
        compare_error=compare_error,
        status=status,
        as_of=reached,
    )


def _delete_page(request: Request, name: str, *, status: int = 200, error: str = "") -> Response:
    shop = dashboard_of(request).shop
    row = shop.audiences.saved.get(check_name(name))
    return render(
        request,
        "audiences/delete.html",
        status=status,
        name=name,
        words=describe(row.condition),
        size=shop.audiences.members.count(row.condition),
        used_by=shop.audiences.targeted_by().get(name, []),
        error=error,
    )


# ---- what the pages read -------------------------------------------------------------------------------


def _reach(
    shop: Shop, draft: Draft
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str, int, list[str]]:
    """The draft's condition and its reach, and the rows left out until they are filled in; or the
    precise error that keeps it from being a condition (400)."""
    try:
        condition, waiting = preview_of(draft)
    except InvalidInput as exc:
        return None, None, exc.message, exc.status, []
    notes = [f"Condition {i + 1} ({draft.rows[i].kind}) is left out until you {need}." for i, need in waiting]
    if condition is None:
        return None, None, "", 200, notes
    name = draft.name if _valid(draft.name) else None
    reach = shop.audiences.reach_of(condition, name=name)
    return condition, in_words_here(reach, saved=_saved(shop, draft.original) is not None), "", 200, notes


def in_words_here(reach: dict[str, Any], *, saved: bool) -> dict[str, Any]:
    """The reach with the guard's pointer to the command line said as this page would say it."""
    where = "with the comparison below" if saved else "once it is saved (its page has the comparison)"
    warnings = [
        _CLI_COMPARE.sub(f"Compare it with the broad base {where}.", w) for w in reach["guard"]["warnings"]
    ]
    return reach | {"guard": reach["guard"] | {"warnings": warnings}}


def _synced(draft: Draft, condition: dict[str, Any] | None) -> Draft:
    """The draft with its other editor brought up to date: the JSON from the rows, or the rows from
    the JSON (when rows can say it)."""
    if condition is None:
        return draft
    again = draft_from_condition(
        condition, name=draft.name, description=draft.description, original=draft.original
    )
    if draft.editor == "rows":
        return replace(draft, where_json=again.where_json)
    if again.editor == "rows":
        return replace(draft, rows=again.rows, join=again.join)
    return draft


def _saved(shop: Shop, name: str) -> dict[str, Any] | None:
    if not _valid(name):
        return None
    try:
        row = shop.audiences.saved.get(name)
    except NotFound:
        return None
    return {"name": row.name, "summary": describe(row.condition), "description": row.description}


def _valid(name: str) -> bool:
    try:
        check_name(name)
    except InvalidInput:
        return False
    return True


def comparison_of(request: Request, shop: Shop, name: str) -> dict[str, Any] | None:
    """The broad-vs-narrow comparison of this audience, when one was started (read only: never starts one)."""
    title = experiment_name(name)
    try:
        experiment = shop.store.experiments.get(title)
    except NotFound:
        return None
    if (experiment.audience or {}).get("audience") != name:
        return None
    condition = shop.audiences.condition_of({"audience": name})
    narrow = shop.audiences.members.count(condition)
    known = int(shop.audiences.target_reach(None)["people"])
    report = figures.report(request, title).value[0]
    return summarize(report, name, narrow, known - narrow, started=False, status=experiment.status)


def _choices(shop: Shop) -> dict[str, Any]:
    """What the builder's selects and suggestions offer."""
    categories: set[str] = set()
    for path in shop.store.catalog.categories().values():
        parts = [part.strip() for part in path.split(" > ") if part.strip()]
        categories.update(parts)
        if len(parts) > 1:
            categories.add(" > ".join(parts))
    return {
        "kinds": KIND_WORDS,
        "personas": [(p["id"], f"{p['name']} ({p['id']})") for p in shop.personas.list()["personas"]],
        "purposes": [(p, p.replace("_", " ")) for p in shop.purposes.names],
        "rules": [(rule, rule) for rule in sorted(shop.store.moments.rules())],
        "events": EVENT_NAMES,
        "traits": sorted({*DEFAULT_POLICIES, "persona"}),
        "categories": sorted(categories)[:MAX_CATEGORY_HINTS],
        "wish_statuses": [(s, s) for s in WISH_STATUSES],
        "moment_statuses": [(s, s) for s in MOMENT_STATUSES],
    }

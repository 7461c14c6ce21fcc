"""The content pages: the templates, and the template editor with live lint and a preview across the
personas (one typical member of each) and the hostile profiles. A preview sends nothing, counts nothing
and logs no exposure; its HTML is shown in a sandboxed frame that runs no script."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shopkeeper.content.hostile import HOSTILE_PROFILES
from shopkeeper.content.service import NAME_PATTERN, Message
from shopkeeper.errors import Conflict, InvalidInput, LintFailed
from shopkeeper.privacy.accounts import Session
from shopkeeper.shop import Shop
from shopkeeper.web.core import Form, PageRoute, actor, audit, dashboard_of, needs, posted, redirect, render
from shopkeeper.web.drafts import STARTER, draft_of, editor_values, form_values, frame_copy

router = APIRouter(route_class=PageRoute)
MARKETER = Depends(needs("marketer"))
NEW = "new"  # GET /dashboard/content/new is the form for a new template: no template of that name here
HOSTILE_TRAITS = {f"hostile: {p.label}": p.traits for p in HOSTILE_PROFILES}


@router.get("/content")
def templates(request: Request, session: Session = MARKETER) -> Response:
    content = dashboard_of(request).shop.content
    found = []
    for stored in content.latest():
        aborts = content.aborts(stored.name)
        found.append(
            {
                **stored.summary(),
                "subject": stored.body.get("subject") or "",
                "not_produced": sum(a["count"] for a in aborts if a["version"] == stored.version),
            }
        )
    return render(request, "content/list.html", templates=found)


@router.get("/content/new")
def new_template(request: Request, session: Session = MARKETER) -> Response:
    return _editor(request, NEW, editor_values(STARTER), lint=_lint_of(request, STARTER))


@router.get("/content/{name}")
def template(
    request: Request,
    name: str,
    session: Session = MARKETER,
    saved: int | None = None,
    unchanged: bool = False,
) -> Response:
    stored = dashboard_of(request).shop.content.get(name)  # InvalidInput, NotFound
    return _editor(
        request,
        name,
        editor_values(stored.body),
        stored=stored.summary(),
        lint=_lint_of(request, stored.body),
        saved=saved,
        unchanged=unchanged,
    )


@router.post("/content/{name}")
def save(request: Request, name: str, form: Form = Depends(posted), session: Session = MARKETER) -> Response:
    board = dashboard_of(request)
    content = board.shop.content
    if name != NEW:
        content.get(name)  # the page of a template that exists: NotFound otherwise
    try:
        target = _target(board.shop, name, form)
        draft = draft_of(form)
        before = board.shop.store.templates.versions(target)
        stored = content.save(target, draft, by=actor(session).label)
    except (InvalidInput, LintFailed, Conflict) as exc:
        return _editor(
            request,
            name,
            form_values(form),
            status=exc.status,
            new_name=form.get("name"),
            lint=_lint_result(exc) if not isinstance(exc, Conflict) else _problem(exc.message),
            unsaved=True,
        )
    if stored.version == before:  # the same as the latest version: nothing new was saved
        return redirect(f"/dashboard/content/{stored.name}?saved={stored.version}&unchanged=1")
    audit(request, session, "save_template", template=stored.name, version=stored.version)
    return redirect(f"/dashboard/content/{stored.name}?saved={stored.version}")


@router.post("/content/{name}/lint")
def lint(request: Request, name: str, form: Form = Depends(posted), session: Session = MARKETER) -> Response:
    try:
        result = _lint_of(request, draft_of(form))
    except InvalidInput as exc:
        result = _lint_result(exc)
    if request.headers.get("hx-request") == "true":
        return render(request, "content/_lint.html", lint=result)
    return _editor(request, name, form_values(form), new_name=form.get("name"), lint=result)


@router.post("/content/{name}/preview")
def preview(
    request: Request, name: str, form: Form = Depends(posted), session: Session = MARKETER
) -> Response:
    shop = dashboard_of(request).shop
    previews: list[dict[str, Any]] = []
    try:
        draft = draft_of(form)
        result = _lint_of(request, draft)
        if result["ok"]:
            people = _typical_members(shop)
            messages = shop.content.preview(draft, [ref for ref, _ in people], hostile=True)
            labels = dict(people)
            previews = [_preview(m, labels.get(m.person)) for m in messages]
    except InvalidInput as exc:
        result = _lint_result(exc)
    if request.headers.get("hx-request") == "true":
        return render(request, "content/_previews.html", previews=previews, lint=result)
    return _editor(
        request, name, form_values(form), new_name=form.get("name"), lint=result, previews=previews
    )


# ---- inside ---------------------------------------------------------------------------------------


def _target(shop: Shop, name: str, form: Form) -> str:
    """The template a save writes: the one in the address, or for a new one the name typed, which must
    be free."""
    if name != NEW:
        return name
    typed = form.get("name").strip()
    if not re.fullmatch(NAME_PATTERN, typed) or typed == NEW:
        raise InvalidInput(
            'name: 1 to 64 lower-case letters, digits, - and _ (not "new"), e.g. spring_sale', field="name"
        )
    if shop.store.templates.versions(typed):
        raise Conflict(f"a template named {typed!r} exists already: open it to change it", field="name")
    return typed


def _lint_of(request: Request, draft: Any) -> dict[str, Any]:
    """Lint, as a save would run it (`ContentService.check`): the findings, and whether it would save."""
    try:
        dashboard_of(request).shop.content.check(draft)
    except (InvalidInput, LintFailed) as exc:
        return _lint_result(exc)
    return {"ok": True, "findings": [], "problem": None}


def _lint_result(exc: InvalidInput | LintFailed) -> dict[str, Any]:
    if isinstance(exc, LintFailed):
        return {"ok": False, "findings": exc.findings, "problem": None}
    return _problem(exc.message)


def _problem(message: str) -> dict[str, Any]:
    return {"ok": False, "findings": [], "problem": message}


def _typical_members(shop: Shop) -> list[tuple[str, str]]:
    """One typical member of each persona (the first of its typical members who is still known): their
    id and the persona's name."""
    found = []
    for persona in shop.personas.list()["personas"]:
        if not persona.get("active", True):
            continue
        for person_id in persona.get("typical_members") or []:
            ref = shop.moments.person_ref(int(person_id))
            if ref is not None:
                found.append((ref, persona["name"]))
                break
    return found


def _preview(message: Message, persona: str | None) -> dict[str, Any]:
    hostile = HOSTILE_TRAITS.get(message.person)
    return {
        "person": None if hostile is not None else message.person,
        "label": message.person.removeprefix("hostile: ") if hostile is not None else message.person,
        "persona": persona,
        "hostile": None if hostile is None else [(k, v) for k, v in hostile.items()],
        "subject": message.subject,
        "preheader": message.preheader,
        "html": message.html,
        "frame": frame_copy(message.html or ""),
        "text": message.text,
        "aborted": message.aborted,
        "fields": [
            {
                "name": f.name,
                "value": _shown(f.value),
                "source": f.source,
                "fallback_used": f.fallback_used,
                "reason": f.reason,
            }
            for f in message.fields
        ],
    }


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return f"{len(value)} item(s)"
    if isinstance(value, dict):
        return str(value.get("title") or value.get("item_id") or "an item")
    return "" if value is None else str(value)


def _editor(
    request: Request,
    name: str,
    values: dict[str, Any],
    *,
    status: int = 200,
    stored: dict[str, Any] | None = None,
    lint: dict[str, Any] | None = None,
    previews: list[dict[str, Any]] | None = None,
    saved: int | None = None,
    new_name: str = "",
    unsaved: bool = False,
    unchanged: bool = False,
) -> Response:
    shop = dashboard_of(request).shop
    aborts = [] if stored is None else shop.content.aborts(name)
    rules = [r["name"] for r in shop.moments.rules() if r.get("template") == name]
    return render(
        request,
        "content/editor.html",
        status=status,
        name=name,
        new=name == NEW,
        new_name=new_name,
        form=values,
        stored=stored,
        lint=lint,
        previews=previews,
        saved=saved if stored is not None and saved == stored["version"] else None,
        unsaved=unsaved,
        unchanged=unchanged,
        aborts=aborts,
        rules=rules,
    )

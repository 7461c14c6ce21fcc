"""The personas: the newest run's figures, a card per persona (size, shares of customers and revenue, the
rule and its agreement, typical members, what they buy, whether it is stable), who moved since the last
run, renaming, and discovering again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shopkeeper.errors import InvalidInput, ShopkeeperError
from shopkeeper.privacy.accounts import Session
from shopkeeper.shop import Shop
from shopkeeper.web.core import Form, PageRoute, audit, dashboard_of, needs, posted, redirect, render

router = APIRouter(route_class=PageRoute)
MARKETER = Depends(needs("marketer"))
METHODS = {"rfm": "RFM groups", "kmeans": "Clusters"}
K_CHOICES = tuple(range(2, 13))


@router.get("/personas")
def personas(request: Request, session: Session = MARKETER, ran: int | None = None) -> Response:
    return _page(request, ran=ran)


@router.post("/personas/discover")
def discover(request: Request, form: Form = Depends(posted), session: Session = MARKETER) -> Response:
    k, target = _discover_options(form)
    shop = dashboard_of(request).shop
    try:
        found = shop.personas.discover(k=k, target=target)
    except ShopkeeperError as exc:
        if exc.status >= 500:
            raise
        return _page(request, status=exc.status, error=exc.message)
    audit(
        request,
        session,
        "discover_personas",
        run=found["run"],
        k=found["k"],
        method=found["method"],
        coverage=found["coverage"],
    )
    return redirect(f"/dashboard/personas?ran={found['run']}")


@router.post("/personas/{persona_id}/rename")
def rename(
    request: Request, persona_id: str, form: Form = Depends(posted), session: Session = MARKETER
) -> Response:
    shop = dashboard_of(request).shop
    htmx = request.headers.get("hx-request") == "true"
    before = shop.personas.get(persona_id)  # NotFound: a 404 page
    try:
        renamed = shop.personas.rename(persona_id, form.get("name"))
    except InvalidInput as exc:
        if htmx:
            return _card_fragment(request, shop, before, status=exc.status, error=exc.message)
        return _page(request, status=exc.status, error=exc.message, error_for=persona_id)
    audit(request, session, "rename_persona", persona_id=persona_id, was=before["name"], name=renamed["name"])
    if htmx:
        return _card_fragment(
            request, shop, renamed, notice=f"Renamed: {before['name']} is now {renamed['name']}."
        )
    return redirect(f"/dashboard/personas#persona-{persona_id}")


def _discover_options(form: Form) -> tuple[int | None, float]:
    k_text = form.get("k", "auto").strip() or "auto"
    if k_text != "auto" and not (k_text.isdigit() and int(k_text) in K_CHOICES):
        raise InvalidInput("k: auto, or a number of personas from 2 to 12", field="k")
    try:
        target = float(form.get("target", "0.7").strip() or "0.7")
    except ValueError:
        raise InvalidInput(
            "target: a share of customers from 0.3 to 0.95, like 0.7", field="target"
        ) from None
    if not 0.3 <= target <= 0.95:
        raise InvalidInput("target: a share of customers from 0.3 to 0.95, like 0.7", field="target")
    return (None if k_text == "auto" else int(k_text)), target


def _page(
    request: Request, *, status: int = 200, error: str = "", error_for: str = "", ran: int | None = None
) -> Response:
    board = dashboard_of(request)
    shop = board.shop
    listed = shop.personas.list()
    run = listed["run"]
    people = _member_links(shop, [p["typical_members"] for p in listed["personas"]])
    return render(
        request,
        "personas/index.html",
        status=status,
        run=run,
        method=METHODS.get(run["method"], run["method"]) if run else "",
        method_words=_method_words(run["method"] if run else "", board.settings.personas_small_shop),
        run_at=_when(run["at"]) if run else "",
        as_of=_when(run["as_of"]) if run else "",
        personas=listed["personas"],
        members=people,
        error=error,
        error_for=error_for,
        notice="",
        just_ran=run is not None and ran == run["run"],
        k_choices=K_CHOICES,
    )


def _method_words(method: str, small_shop: int) -> str:
    if method == "rfm":
        return (
            f"how the groups were found: five fixed groups by recency, frequency and money, as the shop has "
            f"fewer than {small_shop:,} customers (clusters would be noise)"
        )
    return "how the groups were found: k-means clusters of what customers do and buy"


def _when(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%-d %b %Y, %H:%M UTC")


def _card_fragment(
    request: Request,
    shop: Shop,
    persona: dict[str, Any],
    *,
    status: int = 200,
    error: str = "",
    notice: str = "",
) -> Response:
    return render(
        request,
        "personas/_card.html",
        status=status,
        p=persona,
        members=_member_links(shop, [persona["typical_members"]]),
        error=error if error else "",
        error_for=persona["id"] if error else "",
        notice=notice,
    )


def _member_links(shop: Shop, groups: list[list[int]]) -> dict[int, str]:
    """Each typical member's page: by their userId when they have one, else by their internal number."""
    links: dict[int, str] = {}
    with shop.store.engine.connect() as conn:
        for person in {int(p) for group in groups for p in group}:
            user_id = shop.store.identities.unit_ids(person, conn).get("user_id")
            links[person] = (
                f"/dashboard/people/{quote(user_id, safe='')}"
                if user_id
                else f"/dashboard/people/%23{person}"
            )
    return links

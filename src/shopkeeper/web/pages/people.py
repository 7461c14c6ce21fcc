"""The people pages: find someone by any id or email; see everything known about them (told us, we saw, we
guessed, each with its provenance and age), what they did, were shown and were sent (the suppressed too,
with why), and their consent history; export and erase them, each behind a confirmation.

Staff see only the people they serve: those with a staff task that is open or snoozed, or that they hold.
To staff anyone else is unknown, the same 404 as an id nobody has, so a page never tells them who exists.
Marketers and owners see everyone, and may export and erase.

A person's address is one of their ids encoded whole (`/dashboard/people/a%2Fb`). The server decodes "%2F"
before routing, so the routes read the id from the raw path: `/dashboard/people/x%2Ferase` is the page of
the person whose id is "x/erase", never the erasure of "x".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.convertors import PathConvertor, register_url_convertor

from shopkeeper.errors import InvalidInput, NotFound, PermissionDenied
from shopkeeper.privacy import consent, rights
from shopkeeper.privacy.accounts import Session
from shopkeeper.privacy.service import RULE, candidate_json
from shopkeeper.profiles import rejections
from shopkeeper.profiles.traits import expired_traits
from shopkeeper.shop import Shop
from shopkeeper.store.identity import LinkedPerson
from shopkeeper.store.people_directory import LONGEST_ID, PERSON_NUMBER, SqlPeopleDirectory
from shopkeeper.web.core import (
    SECURITY_HEADERS,
    Form,
    PageRoute,
    actor,
    dashboard_of,
    needs,
    posted,
    redirect,
    render,
)
from shopkeeper.web.person_view import (
    KIND_WORDS,
    consent_now,
    decision_row,
    display_name,
    event_row,
    grouped_traits,
    moments_of,
    person_href,
)
from shopkeeper.wording import counted


class AnyIdConvertor(PathConvertor):
    """`{ref:any_id}`: an id of any characters, "/" and newlines included (`path` stops at a newline)."""

    regex = "(?s:.*)"


register_url_convertor("any_id", AnyIdConvertor())  # before the routes below are declared

router = APIRouter(route_class=PageRoute)
STAFF = Depends(needs("staff"))
MARKETER = Depends(needs("marketer"))
PREFIX = b"/dashboard/people/"
RESULTS = 20
STAFF_SCAN = 200  # staff see only whom they serve: a start of an id is looked for among this many
EVENTS = 50
DECISIONS = 20
TASKS = 100
# What each count of a person's rows is, in words: (singular, plural).
NOUNS: dict[str, tuple[str, str]] = {
    "events": ("event", "events"),
    "decisions": ("decision", "decisions"),
    "consents": ("consent change", "consent changes"),
    "rejected_guesses": ("guess they rejected", "guesses they rejected"),
    "wishes": ("wish", "wishes"),
    "messages": ("moment or message", "moments and messages"),
    "tasks": ("staff task", "staff tasks"),
}
UNKNOWN = "No one is known by that id. Check it, or search for them by another id or their email."
UNKNOWN_TO_STAFF = (
    "No one you serve is known by that id. Staff see the people who have a task waiting in the inbox, "
    "or one they took."
)
HINT = (
    "Type a customer id (like 17850), a visitor id, an email address, or a person number (like #12). "
    "The first few characters of an id or an email are enough."
)


@dataclass(frozen=True, slots=True)
class Found:
    """The person an address names: their number, and the reference to hand the services."""

    person_id: int
    ref: str  # the id as given, the email in lower case, or a `LinkedPerson` for "#12"


# ---- finding the person an address names -----------------------------------------------------------


def _raw_ref(request: Request, suffix: str) -> str | None:
    """The id in the address, decoded once from the raw path. None when `suffix` ("export", "erase") is
    not the path's own last segment but the end of an encoded id: the address is that id's page."""
    raw = request.scope.get("raw_path")
    if not isinstance(raw, bytes) or not raw.startswith(PREFIX):
        return str(request.path_params["ref"])
    rest = raw.split(b"?", 1)[0][len(PREFIX) :]
    if suffix:
        ending = b"/" + suffix.encode()
        if not rest.endswith(ending):
            return None
        rest = rest[: -len(ending)]
    try:
        return unquote_to_bytes(rest).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the id in the address is not valid UTF-8 text", field="id") from None


def _lookup(shop: Shop, ref: str) -> Found | None:
    """The person behind `ref`: a user id, email (any case) or visitor id, or `#12`, their number."""
    if not ref or len(ref) > LONGEST_ID or "\x00" in ref:
        return None
    identities = shop.store.identities
    person_id = identities.find_person(ref)
    if person_id is not None:
        return Found(person_id, ref)
    lowered = ref.strip().lower()
    if "@" in lowered and lowered != ref:
        person_id = identities.find_person(lowered)
        if person_id is not None:
            return Found(person_id, lowered)
    number = PERSON_NUMBER.fullmatch(ref.strip())
    if number is not None:
        person_id = int(number.group(1))
        generation = identities.generation_of(person_id)
        if generation is not None:
            return Found(person_id, LinkedPerson(person_id, generation))
    return None


def _find(request: Request, session: Session, ref: str) -> Found:
    """The person, if this user may see them; else the one 404 an unknown id gets too."""
    shop = dashboard_of(request).shop
    found = _lookup(shop, ref)
    if not session.may("marketer"):
        directory = SqlPeopleDirectory(shop.store.engine)
        if found is None or not directory.served([found.person_id], session.user.email):
            raise NotFound(UNKNOWN_TO_STAFF, field="id")
    if found is None:
        raise NotFound(UNKNOWN, field="id")
    return found


def _unknown(session: Session) -> NotFound:
    return NotFound(UNKNOWN if session.may("marketer") else UNKNOWN_TO_STAFF, field="id")


# ---- search -----------------------------------------------------------------------------------------


@router.get("/people")
def search(
    request: Request,
    session: Session = STAFF,
    q: str = "",
    erased: int | None = Query(default=None, ge=1, le=10**18),
) -> Response:
    shop = dashboard_of(request).shop
    directory = SqlPeopleDirectory(shop.store.engine)
    text = q.strip()
    problem = ""
    matched: dict[int, tuple[str, str]] = {}
    if len(text) > LONGEST_ID:
        problem = f"An id is at most {LONGEST_ID} characters: that is too long to be one."
    elif "\x00" in text:
        problem = "That text holds a NUL character, which no id can."
    elif text and session.may("marketer"):
        matched = {m.person_id: (m.kind, m.value) for m in directory.search(text, limit=RESULTS)}
    elif text:  # staff: among more matches, those they serve (a whole id is always among them)
        found = {m.person_id: (m.kind, m.value) for m in directory.search(text, limit=STAFF_SCAN)}
        served = directory.served(list(found), session.user.email)
        matched = dict([(p, m) for p, m in found.items() if p in served][:RESULTS])
    elif not session.may("marketer"):
        matched = {p: ("", "") for p in directory.served_by(session.user.email, limit=RESULTS)}
    ids = directory.ids_of(list(matched))
    results = [
        {
            "person_id": person_id,
            "name": display_name(person_id, ids[person_id]),
            "href": person_href(person_id, ids[person_id]),
            "matched": (KIND_WORDS[kind], value) if kind else None,
            "ids": [(KIND_WORDS.get(k, k), v) for k, v in ids[person_id]],
        }
        for person_id, (kind, value) in matched.items()
    ]
    context: dict[str, Any] = {
        "q": text[:LONGEST_ID],
        "results": results,
        "problem": problem,
        "hint": HINT,
        "limit": RESULTS,
        "staff_only": not session.may("marketer"),
        "erased": erased if erased is not None and directory.live(erased) is None else None,
    }
    status = 400 if problem else 200
    if request.headers.get("hx-request") == "true":
        return render(request, "people/_results.html", status=status, **context)
    return render(request, "people/search.html", status=status, **context)


# ---- export and erase (before the person's page: their paths are longer) ---------------------------


@router.get("/people/{ref:any_id}/export")
def export_confirmation(request: Request, ref: str, session: Session = STAFF) -> Response:
    raw = _raw_ref(request, "export")
    if raw is None:  # an id that ends in "/export": its page
        return _person_page(request, session, _raw_ref(request, "") or "")
    _marketers_only(session)
    return _confirmation(request, "people/export.html", _find(request, session, raw))


@router.post("/people/{ref:any_id}/export")
def export(request: Request, ref: str, form: Form = Depends(posted), session: Session = MARKETER) -> Response:
    raw = _raw_ref(request, "export")
    if raw is None:
        raise NotFound("there is no such page: a person's page only shows", field="id")
    found = _find(request, session, raw)
    shop = dashboard_of(request).shop
    try:
        data = rights.export(shop.privacy, shop.profiles, shop.store, found.ref, actor(session))
    except NotFound:
        raise _unknown(session) from None
    return Response(
        orjson.dumps(data, option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="person-{found.person_id}.json"',
        },
    )


@router.get("/people/{ref:any_id}/erase")
def erase_confirmation(request: Request, ref: str, session: Session = STAFF) -> Response:
    raw = _raw_ref(request, "erase")
    if raw is None:  # an id that ends in "/erase": its page
        return _person_page(request, session, _raw_ref(request, "") or "")
    _marketers_only(session)
    return _confirmation(request, "people/erase.html", _find(request, session, raw))


@router.post("/people/{ref:any_id}/erase")
def erase(request: Request, ref: str, form: Form = Depends(posted), session: Session = MARKETER) -> Response:
    raw = _raw_ref(request, "erase")
    if raw is None:
        raise NotFound("there is no such page: a person's page only shows", field="id")
    found = _find(request, session, raw)
    shop = dashboard_of(request).shop
    typed = form.get("confirm").strip()
    again = _lookup(shop, typed) if typed else None
    if again is None or again.person_id != found.person_id:
        error = (
            "Type one of their ids, exactly as shown, to confirm."
            if not typed
            else "That is not one of this person's ids, so nothing was erased. Type it exactly as shown."
        )
        return _confirmation(request, "people/erase.html", found, status=400, error=error, typed=typed)
    try:
        rights.erase(shop.privacy, shop.store, found.ref, actor(session), forget=shop.decider.erased)
    except NotFound:
        raise _unknown(session) from None
    dashboard_of(request).snapshots.drop()  # the kept counts are counted again without them
    return redirect(f"/dashboard/people?erased={found.person_id}")


def _marketers_only(session: Session) -> None:
    """Staff reach a confirmation's address only to be told it is not for them (whoever the id names)."""
    if not session.may("marketer"):
        raise PermissionDenied(
            f"exporting and erasing people is for marketers and owners; you are {session.user.role}"
        )


def _confirmation(
    request: Request, template: str, found: Found, *, status: int = 200, **context: Any
) -> Response:
    """The page that says what an export would hold, or an erasure delete, and asks to confirm."""
    store = dashboard_of(request).shop.store
    everyone = store.identities.with_merged(found.person_id)
    external = store.identities.external_ids(everyone)
    ids = store.identities.external_ids([found.person_id])
    counts = SqlPeopleDirectory(store.engine).footprint(everyone, [v for _, v in external])
    shown_id = next((v for k, v in ids if k in ("user_id", "anonymous_id")), f"#{found.person_id}")
    return render(
        request,
        template,
        status=status,
        person_id=found.person_id,
        name=display_name(found.person_id, ids),
        href=person_href(found.person_id, ids),
        action=person_href(found.person_id, ids, "erase" if "erase" in template else "export"),
        shown_id=shown_id,
        ids=[(KIND_WORDS.get(k, k), v) for k, v in ids],
        counts=counts,
        said={key: counted(counts[key], *nouns) for key, nouns in NOUNS.items()},
        merged=len(everyone) - 1,
        error=context.pop("error", ""),
        typed=context.pop("typed", ""),
        **context,
    )


# ---- a person's page ----------------------------------------------------------------------------------


@router.get("/people/{ref:any_id}")
def person(request: Request, ref: str, session: Session = STAFF) -> Response:
    return _person_page(request, session, _raw_ref(request, "") or "")


def _person_page(request: Request, session: Session, ref: str) -> Response:
    if not ref:
        return redirect("/dashboard/people")
    found = _find(request, session, ref)
    shop = dashboard_of(request).shop
    try:
        profile = shop.privacy.profile(found.ref, actor(session))  # audited: read_profile
    except NotFound:
        raise _unknown(session) from None
    person_id = int(profile["person_id"])
    store = shop.store
    with store.engine.connect() as conn:
        everyone = store.identities.with_merged(person_id, conn)
        ledger = consent.history(conn, everyone)
        rejected = [r.to_json() for rs in rejections.load(conn, everyone).values() for r in rs]
        records = shop.profiles.records_of(person_id, conn)
        outreach = rights.outreach_of(store, conn, everyone)
    as_of = datetime.fromisoformat(str(profile["as_of"]))
    expired = {
        key: (values[0], str(candidate_json(values[0], "expired", 0.0, as_of)["why"]))
        for key, values in expired_traits(records, as_of).items()
    }
    directory = SqlPeopleDirectory(store.engine)
    events = directory.newest_events(everyone, limit=EVENTS)
    n_decisions, decisions = directory.newest_decisions(everyone, limit=DECISIONS)
    messages = moments_of(outreach["messages"])
    tasks = store.outbox.tasks(person_ids=everyone, limit=TASKS)
    wishes = outreach["wishes"]
    wanted = {str(w["item_id"]) for w in wishes} | {
        str(i.get("item_id"))
        for d in decisions
        for i in d["items"]
        if isinstance(i, dict) and not i.get("title")
    }
    titles = {item_id: item.title for item_id, item in store.catalog.get_many(sorted(wanted)).items()}
    ids = [(str(i["kind"]), str(i["value"])) for i in profile["ids"]]
    return render(
        request,
        "people/person.html",
        person_id=person_id,
        name=display_name(person_id, ids),
        ids=[{**i, "words": KIND_WORDS.get(str(i["kind"]), i["kind"])} for i in profile["ids"]],
        merges=profile["merges"],
        profile=profile,
        rule=RULE,
        groups=grouped_traits(profile["traits"], expired),
        rejected=rejected,
        consent_now=consent_now(profile["consent"]),
        ledger=list(reversed(ledger)),
        events=[event_row(e) for e in events],
        event_count=int(profile["event_count"]),
        decisions=[decision_row(d, titles) for d in decisions],
        n_decisions=n_decisions,
        wishes=[{**w, "title": titles.get(w["item_id"], "")} for w in wishes],
        messages=messages,
        tasks=tasks,
        export_href=person_href(person_id, ids, "export"),
        erase_href=person_href(person_id, ids, "erase"),
    )

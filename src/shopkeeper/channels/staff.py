"""The staff inbox's task: who, why now, and what to say, with every fact's provenance and age.

A task is made when a staff moment is due. It carries the person's name (guarded as a template's
`first_name` is: a guess or an implausible value is left out), the moment in words, what they told us
(sizes, tastes, how they like to be contacted), what they tried, viewed and bought, their last contact on
any channel, and the best next items from decide. Each fact says where it came from ("you told us",
"we saw", "we guessed") and when, so that staff can say "you told us in March you're a 34".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from shopkeeper.catalog.items import readable_title
from shopkeeper.content.slots import check
from shopkeeper.moments.respect import WORDS
from shopkeeper.profiles.traits import SOURCE_WORDS, ResolvedTrait, resolve
from shopkeeper.store import Store
from shopkeeper.store.interactions import KIND_NAMES
from shopkeeper.store.moments import recent_interactions
from shopkeeper.store.outbox import OutboxRow

FACT_KEYS = (
    "sizes",
    "size",
    "favourite_categories",
    "favourite_colours",
    "favourite_brands",
    "disliked_categories",
    "disliked_colours",
    "preferred_channels",
    "contact_frequency",
    "language",
)
HISTORY_DAYS = 730  # what they tried, viewed and bought in the last two years
Picks = Callable[[str], list[dict[str, Any]]]


def age_days(at: datetime, now: datetime) -> int:
    return max(0, (now - at).days)


def _when(at: datetime) -> str:
    return f"{at.day} {at:%b %Y}"


def fact(trait: ResolvedTrait, now: datetime) -> dict[str, Any]:
    record = trait.record
    at = record.confirmed_at or record.updated_at
    value = shown(record.value)
    return {
        "key": trait.key,
        "value": record.value,
        "source": record.source,
        "provenance": SOURCE_WORDS[record.source],
        "at": at.isoformat(),
        "age_days": age_days(at, now),
        "label": f"{trait.key.replace('_', ' ')} {value}, {SOURCE_WORDS[record.source]}, {_when(at)}",
    }


def shown(value: Any) -> str:
    """A trait's value in words: a list or a mapping as a comma-separated line."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def task_context(
    conn: Connection,
    store: Store,
    row: OutboxRow,
    person_ref: str,
    now: datetime,
    picks: Picks | None,
    *,
    personalization: bool,
) -> dict[str, Any]:
    """Everything a staff member needs for this moment (see the module docstring). Without the person's
    consent to personalization, only what they told us is shown: no history, no guesses."""
    traits = resolve(store.traits.load(row.person_id, conn), now)
    if not personalization:
        traits = {k: t for k, t in traits.items() if t.record.source == "stated"}
    name = _name(traits)
    item = store.moments.item_facts(conn, [row.item_id]).get(row.item_id) if row.item_id else None
    variant = _variant(store, conn, row)
    last = store.outbox.last_contact(conn, row.person_id)
    context: dict[str, Any] = {
        "person": person_ref,
        "name": name,
        "why_now": why_now(row, item, variant, name),
        "say": say(row, item, variant, name),
        "item": None if item is None else {k: v for k, v in item.items() if k != "created_at"},
        "variant": variant,
        "facts": [fact(traits[k], now) for k in FACT_KEYS if k in traits],
        "history": _history(store, conn, row.person_id, now) if personalization else {},
        "persona": _persona(traits.get("persona")),
        "last_contact": None
        if last is None or last.sent_at is None
        else {
            "channel": last.channel,
            "rule": last.rule,
            "at": last.sent_at.isoformat(),
            "age_days": age_days(last.sent_at, now),
        },
        "next_items": [p for p in picks(person_ref) if p.get("item_id") != row.item_id] if picks else [],
        "moment": row.context,
    }
    return context


def _name(traits: Mapping[str, ResolvedTrait]) -> dict[str, Any] | None:
    found = traits.get("first_name")
    if found is None:
        return None
    checked = check("first_name", found.value, source=found.record.source)
    if checked.value is None:
        return None
    at = found.record.confirmed_at or found.record.updated_at
    return {
        "value": checked.value,
        "source": found.record.source,
        "provenance": SOURCE_WORDS[found.record.source],
        "at": at.isoformat(),
    }


def _variant(store: Store, conn: Connection, row: OutboxRow) -> dict[str, Any] | None:
    if not row.item_id or not row.variant_id:
        return None
    for v in store.moments.variants(conn, [row.item_id]).get(row.item_id, []):
        if v.variant_id == row.variant_id:
            return {
                "variant_id": v.variant_id,
                "attributes": v.attributes,
                "stock": v.stock,
                "price": v.price,
            }
    return None


def _history(
    store: Store, conn: Connection, person_id: int, now: datetime
) -> dict[str, list[dict[str, Any]]]:
    everyone = store.identities.with_merged(person_id, conn)
    rows = recent_interactions(conn, everyone, now - timedelta(days=HISTORY_DAYS))
    titles = store.moments.item_facts(conn, [item for item, _, _ in rows])
    found: dict[str, list[dict[str, Any]]] = {"tried": [], "viewed": [], "bought": []}
    group = {"cart": "tried", "view": "viewed", "purchase": "bought"}
    for item_id, kind, at in rows:
        where = group.get(KIND_NAMES[kind])
        if where is None or any(e["item_id"] == item_id for e in found[where]) or len(found[where]) >= 5:
            continue
        title = readable_title(titles.get(item_id, {}).get("title", item_id))
        found[where].append(
            {
                "item_id": item_id,
                "title": title,
                "at": at.isoformat(),
                "age_days": age_days(at, now),
                "provenance": "we saw",
            }
        )
    return found


def _wanted(row: OutboxRow, variant: Mapping[str, Any] | None, title: str) -> str:
    """What came back, as said after "back": "in 34", or "in grey, 34" when the title does not say grey."""
    wish = row.context.get("wish") if isinstance(row.context.get("wish"), dict) else None
    attributes = dict(variant["attributes"]) if variant else {}
    if wish:
        attributes = {**attributes, **wish.get("attributes", {})}
    colour = str(attributes.get("colour") or attributes.get("color") or "")
    size = str(attributes.get("size") or "")
    if colour.casefold() in title.casefold():
        colour = ""
    said = ", ".join(part for part in (colour, size) if part)
    return f" in {said}" if said else ""


def _is(title: str) -> str:
    """ "are" for a plural title (trousers, mugs), else "is": a guess, said as a shopkeeper would."""
    last = title.strip().split(" ")[-1].casefold() if title.strip() else ""
    return "are" if last.endswith("s") and not last.endswith("ss") else "is"


def why_now(
    row: OutboxRow,
    item: Mapping[str, Any] | None,
    variant: Mapping[str, Any] | None,
    name: Mapping[str, Any] | None,
) -> str:
    """The moment, told to staff."""
    who = name["value"] if name else "This customer"
    title = readable_title(item["title"]) if item else "an item"
    c = row.context
    if row.trigger == "back_in_stock":
        wish = c.get("wish") or {}
        back = f"it is back{_wanted(row, variant, title)}."
        if wish.get("source") in ("stated", "staff"):
            return f"{who} asked about the {title}; {back}"
        return f"{who} looked at the {title} when it was sold out; {back}"
    if row.trigger == "price_drop":
        return (
            f"{who} looked at the {title}; its price dropped from {c.get('before'):g} to {c.get('after'):g}."
        )
    if row.trigger == "milestone":
        kind = c.get("milestone")
        if kind == "orders":
            return f"{who} just placed order number {c.get('value')}."
        if kind == "spend":
            return f"{who} has now spent over {c.get('value'):g} with the shop."
        if kind == "anniversary":
            return f"It is {c.get('value')} year(s) since {who}'s first order."
        return f"{who}'s {c.get('what')} passed {c.get('value')}."
    if row.trigger == "abandoned_cart":
        return f"{who} left the {title} in their cart and did not buy."
    if row.trigger == "winback":
        return (
            f"{who} usually orders every {c.get('usual_gap_days')} days; it has been {c.get('silent_days')}."
        )
    if row.trigger == "ask":
        return (
            f"{who} browses sized items but never told us a size: ask them, and note it in their preferences."
        )
    if row.trigger == "new_arrival":
        return f"The new {title} matches {who}'s {c.get('matches')}."
    return WORDS.get(row.trigger, row.trigger)


def say(
    row: OutboxRow,
    item: Mapping[str, Any] | None,
    variant: Mapping[str, Any] | None,
    name: Mapping[str, Any] | None,
) -> str:
    """A suggested first line to the customer."""
    hello = f"Hello {name['value']}, " if name else "Hello, "
    title = readable_title(item["title"]) if item else "the item"
    if row.trigger == "back_in_stock":
        asked = (
            "you asked about"
            if (row.context.get("wish") or {}).get("source") in ("stated", "staff")
            else "you looked at"
        )
        return f"{hello}the {title} {asked} {_is(title)} back{_wanted(row, variant, title)}."
    if row.trigger == "price_drop":
        return f"{hello}the {title} you looked at is now cheaper."
    if row.trigger == "milestone":
        return f"{hello}thank you for shopping with us all this time."
    return f"{hello}we thought of you."


def _persona(trait: ResolvedTrait | None) -> dict[str, Any] | None:
    """The person's persona (a guess, shown only with personalization consent): its name and rule."""
    if trait is None:
        return None
    evidence = trait.record.evidence or {}
    return {
        "id": evidence.get("persona_id"),
        "name": trait.value,
        "rule": evidence.get("rule"),
        "confidence": trait.record.confidence,
        "source": trait.record.source,
    }

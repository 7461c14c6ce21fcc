"""A person's page in words: each trait with where it came from, how old it is and whether it still counts;
their events, decisions, messages and consent as short lines. Pure functions of what the services return,
so that the page says what the API and the export say."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from shopkeeper.moments.respect import WORDS as REASON_WORDS
from shopkeeper.privacy.consent import PURPOSE_WORDS
from shopkeeper.profiles.traits import SOURCE_WORDS, policy_for
from shopkeeper.store.people_directory import LoggedEvent
from shopkeeper.store.traits import TraitRecord
from shopkeeper.wording import counted

# The three groups of what is known, in the page's order: (source, heading, what it means, tag class).
GROUPS: tuple[tuple[str, str, str, str], ...] = (
    ("stated", "Told us", "what they told the shop themselves: it always wins", "told"),
    ("observed", "We saw", "what their own events show: it fades with age and expires", "saw"),
    ("inferred", "We guessed", "what the shop guessed from their events, persona included", "guessed"),
)
KIND_WORDS = {
    "user_id": "customer id",
    "email": "email",
    "anonymous_id": "visitor id",
    "number": "person number",
}
COHORT_WORDS = {
    "personalized": "personalized",
    "holdout": "the holdout: popular items only, to measure the lift",
    "no_consent": "no consent to personalize: popular items only",
}
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(\+00:00|Z)")
LONG_TEXT = 300  # a value or a field shown longer than this is cut, with an ellipsis


def person_href(person_id: int, ids: Sequence[tuple[str, str]], suffix: str = "") -> str:
    """The link to a person's page: by their customer id, else a visitor id, else their number, encoded
    whole (a "/" in an id is %2F, so that an id ending in "/erase" is never another page). Never by email:
    a link ends up in logs and browser history."""
    chosen = next((v for k, v in ids if k == "user_id"), None) or next(
        (v for k, v in ids if k == "anonymous_id"), None
    )
    if chosen is None or chosen in (".", ".."):  # a browser would read those as the folder above
        chosen = f"#{person_id}"
    return f"/dashboard/people/{quote(chosen, safe='')}" + (f"/{suffix}" if suffix else "")


def display_name(person_id: int, ids: Sequence[tuple[str, str]]) -> str:
    user = next((v for k, v in ids if k == "user_id"), None)
    if user is not None:
        return f"Customer {user}"
    visitor = next((v for k, v in ids if k == "anonymous_id"), None)
    return f"Visitor {visitor}" if visitor is not None else f"Person #{person_id}"


def short(text: str, limit: int = LONG_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def value_text(value: Any) -> str:
    """A trait's value as a reader would write it: a list with commas, a mapping as `key: value`, a
    time as a date."""
    if isinstance(value, str) and ISO_TIME.fullmatch(value):
        return f"{datetime.fromisoformat(value):%d %b %Y %H:%M} UTC"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return short(", ".join(value_text(v) for v in value))
    if isinstance(value, dict):
        return short("; ".join(f"{k}: {value_text(v)}" for k, v in value.items()))
    return short("" if value is None else str(value))


def evidence_text(evidence: Mapping[str, Any]) -> str:
    """Where a value came from, in words: the events behind it, or the model that guessed it."""
    parts: list[str] = []
    if evidence.get("model") == "personas":
        run = f", run {evidence['run']}" if "run" in evidence else ""
        rule = evidence.get("rule")
        parts.append(f"the persona model{run}" + (f": {rule}" if rule else ""))
    elif "model" in evidence:
        parts.append(f"the {evidence['model']} model")
    if "count" in evidence:
        parts.append(counted(int(evidence["count"]), "event"))
    elif isinstance(evidence.get("events"), list):
        parts.append(counted(len(evidence["events"]), "event"))
    for key, value in evidence.items():
        if key in ("model", "run", "rule", "persona_id", "count", "events"):
            continue
        if key == "scores" and isinstance(value, dict):
            parts.append(
                "scores " + ", ".join(f"{k} {v:g}" for k, v in value.items() if isinstance(v, float | int))
            )
        else:
            parts.append(f"{key.replace('_', ' ')} {value_text(value)}")
    return short("; ".join(parts)) or "no evidence recorded"


def evidence_ids(evidence: Mapping[str, Any]) -> str:
    """The newest message ids behind a value, for its tooltip."""
    found = evidence.get("events")
    if not isinstance(found, list) or not found:
        return ""
    return short("events: " + ", ".join(str(e) for e in found), 500)


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def trait_row(trait: Mapping[str, Any]) -> dict[str, Any]:
    """One known trait (as the profile gives it) as a row: value, provenance, age, and whether it counts."""
    source = str(trait["source"])
    state: list[str] = []
    policy = policy_for(str(trait["key"]), source)  # type: ignore[arg-type]
    weight = float(trait["weight"])
    if source == "stated":
        if trait.get("needs_confirmation"):
            state.append("not confirmed for over a year: worth asking again")
        else:
            state.append("counts in full")
    else:
        if trait.get("confidence") is not None:
            state.append(f"confidence {float(trait['confidence']):.0%}")
        if policy.half_life is None:
            state.append("a fact: counts in full")
        else:
            state.append(f"counts {weight:.0%} now (fades by half every {policy.half_life.days} days)")
        if trait.get("expires_at"):
            expires = _when(str(trait["expires_at"]))
            assert expires is not None
            state.append(f"expires {expires:%d %b %Y}")
    for other in trait.get("overridden", []):
        beaten = "expired" if other["status"] == "expired" else "beaten"
        state.append(f"{SOURCE_WORDS[other['source']]} {value_text(other['value'])} ({beaten})")
    evidence = trait.get("evidence") or {}
    return {
        "key": trait["key"],
        "label": str(trait["key"]).replace("_", " "),
        "value": value_text(trait["value"]),
        "source": source,
        "provenance": evidence_text(evidence),
        "provenance_ids": evidence_ids(evidence),
        "updated_at": trait["updated_at"],
        "expired": False,
        "state": state,
    }


def expired_row(key: str, record: TraitRecord, why: str) -> dict[str, Any]:
    """A trait with no value now because every value expired: its newest value, and why it went."""
    return {
        "key": key,
        "label": key.replace("_", " "),
        "value": value_text(record.value),
        "source": record.source,
        "provenance": evidence_text(record.evidence),
        "provenance_ids": evidence_ids(record.evidence),
        "updated_at": record.updated_at.isoformat(),
        "expired": True,
        "state": [why],
    }


def grouped_traits(
    traits: Sequence[Mapping[str, Any]], expired: Mapping[str, tuple[TraitRecord, str]]
) -> list[dict[str, Any]]:
    """The three groups (told us, we saw, we guessed), each with its rows, expired ones last."""
    rows: dict[str, list[dict[str, Any]]] = {source: [] for source, *_ in GROUPS}
    for trait in traits:
        rows[str(trait["source"])].append(trait_row(trait))
    for key, (record, why) in sorted(expired.items()):
        rows[record.source].append(expired_row(key, record, why))
    return [
        {"source": source, "heading": heading, "means": means, "tag": tag, "rows": rows[source]}
        for source, heading, means, tag in GROUPS
    ]


def consent_now(choices: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "purpose": purpose,
            "words": PURPOSE_WORDS.get(purpose, purpose.replace("_", " ")),
            "granted": bool(choice["granted"]),
            "default": bool(choice["default"]),
            "at": choice["at"],
            "channel": choice["channel"],
        }
        for purpose, choice in choices.items()
    ]


def event_row(event: LoggedEvent) -> dict[str, Any]:
    """An event as a line: when, what, and about what (an item, an order, a page), no whole payload."""
    payload = event.payload
    found = payload.get("properties")
    properties: dict[str, Any] = found if isinstance(found, dict) else {}
    about: list[str] = []
    for key, words in (("product_id", "item"), ("order_id", "order"), ("category", "category")):
        value = properties.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            about.append(f"{words} {short(str(value), 80)}")
    for key in ("revenue", "total", "value"):
        value = properties.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            about.append(f"{key} {value:,.2f}")
            break
    if isinstance(properties.get("products"), list):
        about.append(f"{len(properties['products'])} items")
    traits = payload.get("traits")
    if event.type == "identify" and isinstance(traits, dict) and traits:
        about.append("said: " + short(", ".join(str(k) for k in traits), 120))
    name = event.event
    if event.type in ("page", "screen") and not name:
        name = payload.get("name") if isinstance(payload.get("name"), str) else None
    return {
        "at": event.timestamp,
        "type": event.type,
        "name": short(name or "", 120),
        "about": "; ".join(about),
    }


def decision_row(decision: Mapping[str, Any], titles: Mapping[str, str]) -> dict[str, Any]:
    """A decision as shown: where, when, for which cohort or arm, the items (by their title, else the
    catalog's) and why each was picked."""
    items = []
    for item in decision["items"]:
        if not isinstance(item, dict):
            continue
        said = [str(r.get("text", "")) for r in item.get("reasons", []) if isinstance(r, dict)]
        items.append(
            {
                "title": short(
                    str(item.get("title") or titles.get(str(item.get("item_id"))) or item.get("item_id", "")),
                    120,
                ),
                "item_id": str(item.get("item_id", "")),
                "why": short("; ".join(r for r in said if r), 240),
            }
        )
    reasons: list[Any] = decision["reasons"] if isinstance(decision["reasons"], list) else []
    cohort = decision.get("cohort")
    group = COHORT_WORDS.get(str(cohort), "") if cohort else ""
    if not group:
        group = "personalized" if decision["personalized"] else "not personalized"
    if decision.get("experiment"):
        group += f"; experiment {decision['experiment']}, arm {decision.get('arm') or '?'}"
    return {
        "at": decision["at"],
        "placement": decision["placement"],
        "group": group,
        "items": items,
        "why": short("; ".join(str(r.get("text", "")) for r in reasons if isinstance(r, dict)), 300),
    }


def message_row(message: Mapping[str, Any]) -> dict[str, Any]:
    """A moment, message or staff task (as the export gives it), with what became of it and why."""
    reason = message.get("reason")
    return {
        **message,
        "reason_words": REASON_WORDS.get(str(reason), str(reason).replace("_", " ")) if reason else "",
        "text": short(str(message.get("subject") or message.get("text") or ""), 200),
    }


def moments_of(outreach: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The moments and messages of the export's outreach (its staff tasks left out), newest first."""
    rows = [message_row(m) for m in outreach if m["kind"] == "message"]
    return sorted(rows, key=lambda m: str(m["created_at"]), reverse=True)

"""Every reason decide gives, worded in one place: a sentence for people and its provenance for machines.

The rules and the pipeline decide what holds (`shopkeeper.decide.rules`, `shopkeeper.decide.pipeline`);
this module only says it. A sentence claims nothing its caller has not established, and a person's own
words (a size, a category) go in as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from shopkeeper.experiments import HOLDOUT, PERSONALIZED
from shopkeeper.privacy.consent import PURPOSE_WORDS
from shopkeeper.wording import counted

if TYPE_CHECKING:
    from shopkeeper.decide.log import DecidedItem
    from shopkeeper.experiments.service import Assignment
    from shopkeeper.profiles.traits import ResolvedTrait


@dataclass(frozen=True, slots=True)
class Reason:
    """A sentence for people, and its provenance for machines (trait keys, event ids, model name)."""

    text: str
    provenance: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "provenance": self.provenance}


def _day(at: datetime | date) -> str:
    return f"{at.day} {at:%b %Y}"


# ---- the decision as a whole -----------------------------------------------------------------------


def no_model() -> Reason:
    return Reason(
        "No model has been trained yet (run `shopkeeper train`), so nothing is shown", {"model": None}
    )


def not_agreed(placement: str, purpose: str) -> Reason:
    """Nothing for a channel the person has not agreed to (an email without `email_marketing`)."""
    words = PURPOSE_WORDS.get(purpose, purpose.replace("_", " "))
    return Reason(
        f"Nothing to show in {placement}: this person has not agreed to {words}",
        {"consent": purpose, "granted": False},
    )


def never_contact() -> Reason:
    return Reason(
        "Nothing to send: you told us not to contact you", {"trait": "contact_frequency", "source": "stated"}
    )


def paused_until(until: date) -> Reason:
    return Reason(
        f"Nothing to send: you asked us to pause until {_day(until)}",
        {"trait": "pause_until", "source": "stated"},
    )


def ranked_for_you(model: str, version: int, trained_until: datetime) -> Reason:
    return Reason(
        f"Ranked for you by the {model} model (version {version}, "
        f"trained on data to {trained_until:%d %b %Y})",
        {"model": model, "model_version": version},
    )


def without_consent(version: int) -> Reason:
    return Reason(
        "Popular in the shop right now. You haven't agreed to personalization, so nothing about you was "
        "used to choose these",
        {"model": "popularity", "model_version": version, "consent": "personalization"},
    )


def baseline(arm: Assignment, version: int) -> Reason:
    """Why the holdout, or an experiment's popularity arm, sees the non-personal baseline: said plainly."""
    if arm.cohort == HOLDOUT:
        share = arm.propensity or 0.0
        return Reason(
            "Popular in the shop right now. You are in the shop's comparison group: "
            f"{share * 100:g}% of people, picked at random, see what is popular rather than picks "
            "for them, so the shop can measure whether personalizing helps",
            {"model": "popularity", "cohort": HOLDOUT, "model_version": version},
        )
    return Reason(
        "Popular in the shop right now: this placement is comparing popular picks with picks "
        f"for each person (experiment {arm.experiment}), and you were picked at random for "
        "the popular ones",
        {"model": "popularity", **_arm(arm), "model_version": version},
    )


def in_experiment(arm: Assignment) -> Reason | None:
    """The note that a decision is part of an experiment (none outside one, or without consent)."""
    if arm.cohort != PERSONALIZED or arm.experiment is None:
        return None
    return Reason(f"Part of the shop's experiment {arm.experiment} (variant {arm.arm})", _arm(arm))


def _arm(arm: Assignment) -> dict[str, Any]:
    return {"experiment": arm.experiment, "arm": arm.arm, "propensity": round(arm.propensity or 0.0, 6)}


def cold_start(version: int, items: Sequence[DecidedItem], categories: Sequence[str]) -> Reason:
    """The decision's reason when nothing about the person's behaviour is known yet: popular items,
    from their stated favourite categories first, saying how many of those it could show."""
    text = "Not personalized yet: no purchases or views to go on, so these are popular right now"
    provenance = _popularity(version)
    if not categories:
        return Reason(text, provenance)
    liked = sum(
        1 for item in items if any(r.provenance.get("trait") == "favourite_categories" for r in item.reasons)
    )
    if items and liked == len(items):
        text += " in the categories you told us you like"
    elif liked:
        text += ": first in the categories you told us you like, then in the whole shop"
    else:
        text += ". Nothing in the categories you told us you like could be shown"
    return Reason(
        text, {**provenance, "trait": "favourite_categories", "source": "stated", "in_categories": liked}
    )


def outside_audience(placement: str, audience: str, version: int) -> Reason:
    """The placement personalizes only for an audience the person is not in: the shop's popular items."""
    return Reason(
        f"{placement} is personalized for the audience {audience}, which you are not in, so these are "
        "popular right now",
        {**_popularity(version), "audience": audience, "member": False},
    )


def thin_history(persona: ResolvedTrait, items: int) -> Reason:
    """A person with little history: their persona's favourites came first."""
    return Reason(
        f"You have bought or looked at only {counted(items, 'item')} with us so far, so what people like "
        f"you (“{persona.value}”) buy most comes first",
        {"trait": "persona", "source": persona.record.source, "history_items": items, "rule": "thin_history"},
    )


def popular_with_persona(persona: ResolvedTrait, liked: int, shown: int) -> Reason:
    """Some of the items are what the person's persona buys most: say so, with who the persona is (its
    rule), and that it is a guess the person can reject."""
    evidence = persona.record.evidence or {}
    rule = evidence.get("rule")
    who = f": people who {rule}" if isinstance(rule, str) and rule else ""
    return Reason(
        f"{'All' if liked == shown else liked} of these {'is' if liked == 1 and shown != 1 else 'are'} "
        f"popular with “{persona.value}”{who}; we guessed you are one of them (you can tell us that is "
        "not you)",
        {
            "trait": "persona",
            "source": persona.record.source,
            "persona_id": evidence.get("persona_id"),
            "confidence": persona.record.confidence,
            "items": liked,
        },
    )


def left_out_owned(count: int, placement: str) -> Reason:
    return Reason(
        f"Left out {counted(count, 'item')} you already bought ({placement} shows new things)",
        {"rule": "exclude_owned", "count": count},
    )


def left_out(
    removed: Mapping[str, int], *, size: str | None, sizes: Mapping[str, str], max_per_category: int
) -> list[Reason]:
    """One sentence per rule that left items out, in `removed`'s order (`dislike`, `rejected`, `viewing`,
    `stock`, `size`, `diversity`); the `size` sentence names the person's stated `size` and `sizes`."""
    found = []
    for rule, count in removed.items():
        if not count:
            continue
        items, are = counted(count, "item"), "is" if count == 1 else "are"
        if rule == "rejected":
            text, provenance = f"Left out {items} you told us {are} not for you", {"trait": "rejected_items"}
        elif rule == "dislike":
            text = f"Left out {items} in categories you told us you don't like"
            provenance = {"trait": "disliked_categories"}
        elif rule == "viewing":
            text, provenance = "Left out the item you are looking at", {"context": "item_id"}
        elif rule == "stock":
            text, provenance = f"Left out {items} that {are} out of stock", {"rule": "in_stock"}
        elif rule == "size":
            said = ", ".join([*(f"{v} ({k})" for k, v in sizes.items()), *([size] if size else [])])
            text, provenance = (
                f"Left out {items} not in stock in your size {said}",
                {"trait": "size", "rule": "in_size"},
            )
        else:
            text = f"Left out {items} to show at most {max_per_category} per category"
            provenance = {"rule": "diversity_cap"}
        source = {"source": "stated"} if "trait" in provenance else {}
        found.append(Reason(text, {**provenance, **source, "count": count}))
    return found


# ---- each item -------------------------------------------------------------------------------------


def in_your_size(size: str, *, from_sizes: bool) -> Reason:
    return Reason(
        f"In stock in your size {size}",
        {"trait": "sizes" if from_sizes else "size", "source": "stated", "rule": "in_stock_in_size"},
    )


def you_like(category: str) -> Reason:
    return Reason(f"You told us you like {category}", {"trait": "favourite_categories", "source": "stated"})


def bought_before(title: str, at: datetime, event: str, item_id: str) -> Reason:
    return Reason(
        f"Because you bought {title} on {_day(at)}", {"signal": "repeat", "event": event, "item_id": item_id}
    )


def like_what_you_had(
    title: str, at: datetime, event: str, item_id: str, *, bought: bool, similarity: float
) -> Reason:
    verb = "bought" if bought else "looked at"
    return Reason(
        f"Because you {verb} {title} on {_day(at)}",
        {"signal": "similar_items", "event": event, "item_id": item_id, "similarity": round(similarity, 3)},
    )


def next_order(title: str, at: datetime, event: str, item_id: str, *, weight: float) -> Reason:
    return Reason(
        f"Often bought in the order after {title}, which you bought on {_day(at)}",
        {"signal": "next_order", "event": event, "item_id": item_id, "weight": round(weight, 3)},
    )


def from_your_history(model: str, version: int) -> Reason:
    return Reason("Picked for you from what you have bought", {"model": model, "model_version": version})


def unknown_seller(version: int) -> Reason:
    return Reason("Shown to fill the list: we know nothing yet of how it sells", _popularity(version))


def popular(version: int) -> Reason:
    return Reason("Popular with customers right now", _popularity(version))


def best_in_category(version: int, category: str, rank: int) -> Reason:
    return Reason(
        f"Among the best sellers in {category}",
        {**_popularity(version), "category": category, "rank_in_category": rank},
    )


def best_seller(version: int, rank: int) -> Reason:
    return Reason(f"The shop's number {rank} best seller right now", {**_popularity(version), "rank": rank})


def few_bought(version: int, rank: int) -> Reason:
    return Reason(
        "Shown to fill the list: few customers have bought it yet", {**_popularity(version), "rank": rank}
    )


def _popularity(version: int) -> dict[str, Any]:
    return {"model": "popularity", "model_version": version}

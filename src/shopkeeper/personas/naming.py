"""The words of personas: a short name from where a group sits among all customers, and a one-line summary.

Every user-facing sentence about a persona (but its rule, which `rules` words) is written here.

A group is placed by the *rank* of its members' median against all customers (0 lowest, 1 highest, ties
counted half), so the words do not depend on a shop's currency or scale:

- lifecycle word: "Lapsed" when the median days since last order ranks >= 0.75; "At-risk" when it ranks
  >= 0.55 and orders rank >= 0.5; "Cooling" when it ranks >= 0.6; "New" when days as customer rank <=
  0.25; "Loyal" when orders rank >= 0.7; "Big-spending" when revenue ranks >= 0.7; "Active" when days
  since last order rank <= 0.35; "Repeat" when the median member ordered twice or more; else
  "Occasional".
- noun: "big-basket buyers" when revenue per order ranks >= 0.9; "<category> buyers" when the members'
  mean share of their top category is >= 30% and at least 1.5 times all customers' mean share of it;
  "one-time buyers" when the median member ordered once; "<country> customers" when >= 80% of members
  are in one country that is not the most common one overall; "big spenders" when revenue ranks >= 0.8;
  "mid-spend customers" when it ranks 0.4-0.8; "low spenders" when it ranks <= 0.25; else "customers".
  (A noun that repeats the lifecycle word, "Big-spending big spenders", is skipped.)

Names are unique within a run: see `unique_names`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Portrait:
    """What a group's members look like. `*_rank`: the rank of the members' median among all customers."""

    size: int
    share_customers: float
    share_revenue: float
    median_orders: float
    median_recency: float  # days since last order
    median_revenue: float
    median_rhythm: float | None  # days between orders, among members with 2+ orders
    recency_rank: float
    orders_rank: float
    revenue_rank: float
    tenure_rank: float
    basket_rank: float  # revenue per order
    top_category: str | None
    top_share: float  # members' mean share of their top category
    category_lift: float  # top_share / all customers' mean share of that category
    country: str | None  # the country of >= 80% of members, when not the most common one overall


def lifecycle(portrait: Portrait) -> list[str]:
    """The lifecycle words that fit, in the module docstring's order; the first one names the group."""
    tests = [
        ("Lapsed", portrait.recency_rank >= 0.75),
        ("At-risk", portrait.recency_rank >= 0.55 and portrait.orders_rank >= 0.5),
        ("Cooling", portrait.recency_rank >= 0.6),
        ("New", portrait.tenure_rank <= 0.25),
        ("Loyal", portrait.orders_rank >= 0.7),
        ("Big-spending", portrait.revenue_rank >= 0.7),
        ("Active", portrait.recency_rank <= 0.35),
        ("Repeat", portrait.median_orders >= 2),
    ]
    return [word for word, fits in tests if fits] + ["Occasional"]


def nouns(portrait: Portrait) -> list[str]:
    """The nouns that fit, in the module docstring's order; the first one names the group."""
    found = []
    if portrait.basket_rank >= 0.9:
        found.append("big-basket buyers")
    if portrait.top_category and portrait.top_share >= 0.3 and portrait.category_lift >= 1.5:
        found.append(f"{portrait.top_category.lower()} buyers")
    if portrait.median_orders <= 1:
        found.append("one-time buyers")
    if portrait.country:
        found.append(f"{portrait.country} customers")
    if portrait.revenue_rank >= 0.8:
        found.append("big spenders")
    elif portrait.revenue_rank >= 0.4:
        found.append("mid-spend customers")
    elif portrait.revenue_rank <= 0.25:
        found.append("low spenders")
    return [*found, "customers"]


REPEATS = {("Big-spending", "big spenders")}


def _pairs(portrait: Portrait) -> tuple[list[str], list[str]]:
    """The fitting lifecycle words and, for the first of them, the nouns that do not repeat it."""
    words = lifecycle(portrait)
    return words, [noun for noun in nouns(portrait) if (words[0], noun) not in REPEATS]


def name(portrait: Portrait) -> str:
    """A short name such as "Loyal party buyers", "Lapsed one-time buyers" or "Loyal big spenders"."""
    words, kinds = _pairs(portrait)
    return f"{words[0]} {kinds[0]}"


def unique_names(portraits: Sequence[Portrait]) -> list[str]:
    """Each group's name, unique within the run: when the first fitting words are taken, the first
    lifecycle word with the other fitting nouns, then the other lifecycle words with the first noun,
    then a number."""
    out: list[str] = []
    for portrait in portraits:
        words, kinds = _pairs(portrait)
        others = [f"{word} {kinds[0]}" for word in words[1:] if (word, kinds[0]) not in REPEATS]
        candidates = [f"{words[0]} {noun}" for noun in kinds] + others
        chosen = next((c for c in candidates if c not in out), None)
        number = 2
        while chosen is None or chosen in out:
            chosen, number = f"{candidates[0]} {number}", number + 1
        out.append(chosen)
    return out


def description(portrait: Portrait, money: Callable[[float], str]) -> str:
    """One line: "412 people, 18% of customers and 41% of revenue: order about every 30 days, ..."."""
    people = "1 person" if portrait.size == 1 else f"{portrait.size:,} people"
    habits = []
    if portrait.median_orders <= 1 or portrait.median_rhythm is None:
        habits.append("one order so far")
    else:
        habits.append(f"order about every {portrait.median_rhythm:,.0f} days")
    habits.append(f"last order about {portrait.median_recency:,.0f} days ago")
    habits.append(f"spent about {money(portrait.median_revenue)} each")
    if portrait.top_category and portrait.top_share >= 0.3:
        habits.append(f"mostly {portrait.top_category}")
    return (
        f"{people}, {portrait.share_customers:.0%} of customers and {portrait.share_revenue:.0%} of revenue: "
        + ", ".join(habits)
    )


# Small shops: the RFM groups' names, in their order (see `clustering.rfm_rules`).
RFM_NAMES = ("Champions", "Loyal customers", "New customers", "At risk", "Lapsed customers")

"""Personas for a shop: measure its customers, find the few groups that cover most of them (the clustering
is `personas.clustering`, arrays in and out), keep their ids and names across runs, and make each
customer's persona a guess (`persona`, inferred) they may reject.

Everything is measured as of the shop's newest order (today, for a shop that is trading), so that a shop
that imported last year's orders still sees who was loyal and who lapsed. Only customers (at least one
order) are grouped; everyone else is outside every persona.
"""

from __future__ import annotations

import itertools
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from shopkeeper.errors import InvalidInput
from shopkeeper.personas.clustering import Discovery, PersonaInputs, discover
from shopkeeper.store import Store
from shopkeeper.store.engine import write_transaction
from shopkeeper.store.interactions import CART, PURCHASE, RETURN, VIEW
from shopkeeper.store.personas import Member, PersonaRow, RunRow

SMALL_SHOP = 1000  # fewer customers than this: RFM groups (champions, loyal, new, at risk, lapsed)
TARGET = 0.7  # the share of customers the personas should cover
HALF_LIFE_DAYS = 180.0  # category affinities fade with this half-life, as the profile's favourites do
KIND_WEIGHTS = {PURCHASE: 1.0, CART: 0.5, VIEW: 0.2, RETURN: -1.0}
TOP_ITEMS = 5
MAX_NAME = 128
_NO_CATEGORY = "(no category)"


@dataclass(frozen=True)
class Facts:
    """What discovery measures customers by, one row per customer, and what it reports from."""

    person_ids: npt.NDArray[np.int64]
    inputs: PersonaInputs
    bought: dict[int, Counter[str]]  # person -> item -> times bought (for each persona's top items)
    as_of: datetime


class PersonaService:
    """Discover, list, show and rename personas; a person's persona for decide and the staff inbox."""

    def __init__(
        self,
        store: Store,
        *,
        now: Callable[[], datetime] | None = None,
        small_shop: int = SMALL_SHOP,
        refresh: Callable[[], object] | None = None,
    ) -> None:
        self._store = store
        self._refresh = refresh or (lambda: None)  # rebuilds stale profiles before their traits are read
        self._now = now or (lambda: datetime.now(UTC))
        self._small_shop = small_shop
        self._currency_symbol = ""

    # ---- discovery -------------------------------------------------------------------------------

    def discover(self, *, k: int | None = None, seed: int = 0, target: float = TARGET) -> dict[str, Any]:
        """Find the personas now, match them to the last run's, save them, and report (the contract of
        `shopkeeper personas discover --json`)."""
        if k is not None and not 2 <= k <= 12:
            raise InvalidInput("k is a number of personas from 2 to 12, or auto", field="k")
        if not 0.3 <= target <= 0.95:
            raise InvalidInput("the target coverage is a share from 0.3 to 0.95", field="target")
        started = time.perf_counter()
        self._refresh()
        sql = self._store.personas
        with self._store.engine.connect() as conn:
            facts = self.facts(conn)
            before = sql.members(conn)
            rejected = sql.rejected(conn)
            after = sql.latest_run_id(conn)
            self._currency_symbol = _symbol(sql.currency(conn))
        earlier = {row.persona_id: row for row in sql.all(active_only=False)}
        if facts.person_ids.size == 0:
            raise InvalidInput(
                "no customers yet in this shop: personas are found among people with at least one order "
                "(`shopkeeper import orders` brings a shop's history; `--sample` the bundled one; the "
                "demo's shop is `--db sqlite:///shopkeeper-demo.db`)",
                field="customers",
            )
        previous_ids = sorted({before[p] for p in facts.person_ids.tolist() if p in before})
        index = {pid: i for i, pid in enumerate(previous_ids)}
        previous = np.array([index.get(before.get(p, ""), -1) for p in facts.person_ids.tolist()])
        found = discover(
            facts.inputs,
            k=k,
            target=target,
            random_state=seed,
            previous=previous if previous_ids else None,
            small_shop=self._small_shop,
            money=self.money,
        )
        rows = self._rows(found, facts, previous_ids, earlier, sql.titles)
        members, guesses = _memberships(found, facts, rows, rejected)
        summary = _summary(found, facts, rows, previous_ids, earlier)
        summary["seconds"] = round(time.perf_counter() - started, 2)
        run = RunRow(0, self._now(), found.method, seed, summary)
        with write_transaction(self._store.engine) as conn:
            run_id = sql.save_run(conn, run, rows, members, guesses, after=after)
        summary["run"] = run_id
        return summary | {"personas": [persona_json(r) | {"run": run_id} for r in rows]}

    def facts(self, conn: Any) -> Facts:
        """Every customer's recency, frequency, money, tenure, rhythm, decayed category affinities
        (stated likes above guesses, stated dislikes out), country and channel."""
        sql = self._store.personas
        orders: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
        for person, at, value in sql.orders(conn):
            orders[person].append((at, value))
        first_seen = sql.first_seen(conn)
        people = sorted(p for p in orders if p in first_seen)
        as_of = min(self._now(), max((at for p in people for at, _ in orders[p]), default=self._now()))
        row_of = {p: i for i, p in enumerate(people)}
        said = _said(sql.trait_values(conn, _TRAIT_KEYS), row_of)
        categories, matrix, bought = _affinities(sql.interactions(conn), row_of, said, as_of)
        nobody = _Said()
        inputs = PersonaInputs(
            recency_days=np.array([_days(as_of - max(a for a, _ in orders[p])) for p in people]),
            frequency=np.array([float(len(orders[p])) for p in people]),
            monetary=np.array([max(sum(v for _, v in orders[p]), 0.0) for p in people]),
            tenure_days=np.array(
                [_days(as_of - min(first_seen[p], *(a for a, _ in orders[p]))) for p in people]
            ),
            rhythm_days=np.array([_rhythm(sorted(a for a, _ in orders[p])) for p in people]),
            categories=categories,
            category_weights=matrix,
            countries=np.array([said.get(p, nobody).country for p in people], dtype=object),
            channels=np.array([said.get(p, nobody).channel for p in people], dtype=object),
        )
        return Facts(np.array(people, dtype=np.int64), inputs, bought, as_of)

    def _rows(
        self,
        found: Discovery,
        facts: Facts,
        previous_ids: Sequence[str],
        earlier: Mapping[str, PersonaRow],
        titles: Callable[[Sequence[str]], Mapping[str, str]],
    ) -> list[PersonaRow]:
        """Each persona found, with the id of the last run's persona it matches (its marketer's name
        with it), or a new id."""
        number = max((int(pid[1:]) for pid in earlier if pid[1:].isdigit()), default=0)
        rows = []
        for group in found.groups:
            if group.previous is not None:
                persona_id = previous_ids[group.previous]
            else:
                number += 1
                persona_id = f"p{number}"
            before = earlier.get(persona_id)
            renamed = before is not None and before.renamed
            buyers: Counter[str] = Counter()
            for row in np.flatnonzero(found.labels == group.index).tolist():
                buyers.update(facts.bought.get(int(facts.person_ids[row]), Counter()).keys())
            top = sorted(buyers.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_ITEMS]
            named = titles([item for item, _ in top])
            body = {
                "rule": group.rule,
                "rule_agreement": round(float(group.rule_agreement), 3),
                "description": group.description,
                "size": int(group.size),
                "share_customers": round(float(group.share_customers), 4),
                "share_revenue": round(float(group.share_revenue), 4),
                "top_categories": list(group.top_categories),
                "top_items": [
                    {"item_id": item, "title": named.get(item, item), "buyers": count} for item, count in top
                ],
                "typical_members": [int(facts.person_ids[i]) for i in group.typical],
                "stable": bool(group.stable),
                "stability": None if group.stability is None else round(float(group.stability), 3),
                "generated_name": group.name,
                "method": found.method,
            }
            name = before.name if renamed and before is not None else group.name
            rows.append(PersonaRow(persona_id, name, renamed, 0, True, body, self._now()))
        return rows

    # ---- reading and naming ----------------------------------------------------------------------

    def list(self) -> dict[str, Any]:
        """The personas of the newest run, and that run's figures."""
        run = self._store.personas.latest_run()
        return {
            "run": None if run is None else run.summary | {"run": run.id, "at": run.at.isoformat()},
            "personas": [persona_json(r) for r in self._store.personas.all()],
        }

    def get(self, persona_id: str) -> dict[str, Any]:
        return persona_json(self._store.personas.get(_persona_id(persona_id)))

    def rename(self, persona_id: str, name: Any) -> dict[str, Any]:
        """Give a persona a marketer's name; it stays when later runs find the persona again."""
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
            raise InvalidInput(f"a persona's name is 1 to {MAX_NAME} characters", field="name")
        if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in name):
            raise InvalidInput(
                "a persona's name has no control, format (direction, zero-width) or line-break characters",
                field="name",
            )
        taken = {r.name for r in self._store.personas.all() if r.persona_id != persona_id}
        if name.strip() in taken:
            raise InvalidInput(f"another persona is named {name.strip()!r}; names are unique", field="name")
        with write_transaction(self._store.engine) as conn:
            self._store.personas.rename(conn, _persona_id(persona_id), name.strip(), self._now())
        return self.get(persona_id)

    def of_person(self, conn: Any, person_id: int) -> dict[str, Any] | None:
        """The person's persona now (id, name, confidence, rule, top categories and items), or None."""
        member = self._store.personas.member(conn, person_id)
        if member is None:
            return None
        row = self._store.personas.get(member.persona_id, conn)
        return {
            "id": row.persona_id,
            "name": row.name,
            "confidence": round(member.confidence, 3),
            "rule": row.body.get("rule"),
            "top_categories": row.body.get("top_categories", []),
            "top_items": row.body.get("top_items", []),
        }

    def of_person_id(self, external_id: str) -> str | None:
        """The persona id of the person behind an external id now, or None."""
        with self._store.engine.connect() as conn:
            person = self._store.identities.find_person(external_id, conn)
            member = None if person is None else self._store.personas.member(conn, person)
        return None if member is None else member.persona_id

    def money(self, value: float) -> str:
        """An amount as a rule or a description says it: the shop's currency, no pence."""
        return f"{self._currency_symbol}{value:,.0f}"


def persona_json(row: PersonaRow) -> dict[str, Any]:
    """A persona as the API and `--json` show it."""
    body = row.body
    return {
        "id": row.persona_id,
        "name": row.name,
        "rule": body.get("rule"),
        "rule_agreement": body.get("rule_agreement"),
        "size": body.get("size"),
        "share_customers": body.get("share_customers"),
        "share_revenue": body.get("share_revenue"),
        "description": body.get("description"),
        "top_categories": body.get("top_categories", []),
        "top_items": body.get("top_items", []),
        "typical_members": body.get("typical_members", []),
        "stable": body.get("stable"),
        "stability": body.get("stability"),
        "renamed": row.renamed,
        "active": row.active,
    }


@dataclass(frozen=True)
class _Said:
    """What a customer told us that discovery uses, and where they are."""

    likes: tuple[str, ...] = ()
    dislikes: tuple[str, ...] = ()
    country: str = ""
    channel: str = ""


_TRAIT_KEYS = ("favourite_categories", "disliked_categories", "country", "preferred_channels")
_SOURCE_RANK = {"stated": 0, "observed": 1, "inferred": 2}


def _said(rows: Sequence[tuple[int, str, str, Any]], row_of: Mapping[int, int]) -> dict[int, _Said]:
    """Stated likes and dislikes (top-level categories), the country (stated, else observed) and the
    first preferred channel, of each customer."""
    best: dict[tuple[int, str], tuple[int, Any]] = {}
    for person, key, source, value in rows:
        if person not in row_of or (key != "country" and source != "stated"):
            continue
        rank = _SOURCE_RANK.get(source, 3)
        if (person, key) not in best or rank < best[person, key][0]:
            best[person, key] = (rank, value)
    found: dict[int, _Said] = {}
    for (person, key), (_, value) in best.items():
        said = found.get(person, _Said())
        values = tuple(str(v).split(" > ")[0] for v in (value if isinstance(value, list) else [value]) if v)
        if key == "favourite_categories":
            said = replace(said, likes=values)
        elif key == "disliked_categories":
            said = replace(said, dislikes=values)
        elif key == "country":
            said = replace(said, country=str(value or "")[:64])
        elif values:
            said = replace(said, channel=values[0][:32])
        found[person] = said
    return found


def _affinities(
    rows: Iterable[tuple[int, str, str, int, datetime, float]],
    row_of: Mapping[int, int],
    said: Mapping[int, _Said],
    as_of: datetime,
) -> tuple[tuple[str, ...], npt.NDArray[np.float64], dict[int, Counter[str]]]:
    """Each customer's decayed weight on each top-level category (purchase 1, cart 0.5, view 0.2, return
    -1, halving every `HALF_LIFE_DAYS`), what they told us above it all (a liked category gets as much as
    everything we saw; a disliked one is out); and what each bought, for the personas' top items."""
    weights: defaultdict[int, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
    bought: dict[int, Counter[str]] = defaultdict(Counter)
    for person, item, category, kind, at, _quantity in rows:
        if person not in row_of:
            continue
        top = category.split(" > ")[0].strip() or _NO_CATEGORY
        age = max((as_of - at).total_seconds() / 86400.0, 0.0)
        weights[person][top] += KIND_WEIGHTS.get(kind, 0.0) * 0.5 ** (age / HALF_LIFE_DAYS)
        if kind == PURCHASE:
            bought[person][item] += 1
    for person, traits in said.items():
        total = max(1.0, sum(max(v, 0.0) for v in weights[person].values()))
        for category in traits.likes:
            weights[person][category] += total  # what they told us outweighs all we saw
        for category in traits.dislikes:
            weights[person].pop(category, None)
    categories = tuple(sorted({c for counts in weights.values() for c, w in counts.items() if w > 0}))
    column = {c: j for j, c in enumerate(categories)}
    matrix = np.zeros((len(row_of), len(categories)))
    for person, counts in weights.items():
        for category, w in counts.items():
            if w > 0:
                matrix[row_of[person], column[category]] = w
    return categories, matrix, dict(bought)


def _memberships(
    found: Discovery,
    facts: Facts,
    rows: Sequence[PersonaRow],
    rejected: Mapping[int, set[str | None]],
) -> tuple[list[Member], list[tuple[int, str, float, dict[str, Any]]]]:
    """Each customer in a persona, less those who said their persona is not them; and their guesses."""
    by_group = {group.index: row for group, row in zip(found.groups, rows, strict=True)}
    members: list[Member] = []
    guesses: list[tuple[int, str, float, dict[str, Any]]] = []
    for i, label in enumerate(found.labels.tolist()):
        row = by_group.get(int(label))
        if row is None:
            continue
        person = int(facts.person_ids[i])
        said_no = rejected.get(person, set())
        if None in said_no or row.persona_id in said_no or row.name in said_no:
            continue
        confidence = float(np.clip(found.confidence[i], 0.0, 1.0))
        members.append(Member(person, row.persona_id, confidence))
        evidence = {"model": "personas", "persona_id": row.persona_id, "rule": row.body.get("rule")}
        guesses.append((person, row.name, confidence, evidence))
    return members, guesses


def _summary(
    found: Discovery,
    facts: Facts,
    rows: Sequence[PersonaRow],
    previous_ids: Sequence[str],
    earlier: Mapping[str, PersonaRow],
) -> dict[str, Any]:
    """The run's figures: k, coverage, separation, stability, and who moved since the last run."""
    customers = int(facts.person_ids.size)
    rest = int((found.labels < 0).sum())
    names = {group.index: row.name for group, row in zip(found.groups, rows, strict=True)}
    churn = []
    for before, after, count in found.churn:
        source = earlier.get(previous_ids[before]) if 0 <= before < len(previous_ids) else None
        was = source.name if source is not None else "everyone else"
        now = names.get(after, "everyone else")
        churn.append(
            {"from": was, "to": now, "count": int(count), "text": f"{count:,} moved from {was} to {now}"}
        )
    return {
        "k": int(found.k),
        "coverage": round(float(found.coverage), 4),
        "silhouette": None if found.silhouette is None else round(float(found.silhouette), 3),
        "stability_ari": None if found.stability_ari is None else round(float(found.stability_ari), 3),
        "method": found.method,
        "customers": customers,
        "agreement": None if found.agreement is None else round(float(found.agreement), 3),
        "everyone_else": {"size": rest, "share_customers": round(rest / customers, 4) if customers else 0.0},
        "as_of": facts.as_of.isoformat(),
        "churn": churn,
    }


def _symbol(currency: str | None) -> str:
    """The symbol of the shop's usual currency (GBP: £), or nothing when its items name none."""
    if not currency:
        return ""
    from babel.numbers import get_currency_symbol  # noqa: PLC0415 (only when there is a currency)

    return str(get_currency_symbol(currency, locale="en_GB"))


def _persona_id(raw: str) -> str:
    if not isinstance(raw, str) or not 1 <= len(raw) <= 16:
        raise InvalidInput("a persona id is like p3 (`shopkeeper personas list` shows them)", field="id")
    return raw


def _days(span: timedelta) -> float:
    return max(span.total_seconds() / 86400.0, 0.0)


def _rhythm(times: Sequence[datetime]) -> float:
    """The median days between a customer's orders; NaN with fewer than two."""
    if len(times) < 2:
        return float("nan")
    gaps = [(b - a).total_seconds() / 86400.0 for a, b in itertools.pairwise(times)]
    return float(np.median(gaps))

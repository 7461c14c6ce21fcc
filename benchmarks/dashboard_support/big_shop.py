"""A big shop SIMULATED BY RESAMPLING the demo shop's real customers: 100,000 people and 1,000,000 events.

The demo shop (`shopkeeper demo --no-serve`: the bundled sample's real customers, their orders and refunds,
a trained model, templates, moment rules, a persona run, an audience) is copied, and people are added
until there are `people`. Each new person is a real customer drawn at random, with replacement, under a
new user id (100000 and up), and copies that customer's real orders and refunds whole (every line, so
every purchase interaction), moved back in time by 0-30 days (one shift a person). The events are then
topped up to `events` with product views, the one kind the sample does not have: each a view of an item
that person's original really bought, in the 72 hours before that order, shared out in proportion to
how many lines the original bought. The new people's decisions (1.5 a person on average, in the last 30
days) copy the demo's real ones, each in the cohort the real holdout hash puts its person in.

Rows are written straight into the tables in time order, as a live log appends them (`bulk_tables.load`),
and each new person is marked for a profile rebuild, as ingestion marks them. Then the real code takes
over, each step timed: `ProfileBuilder.refresh_dirty` derives every new person's traits from their events,
the tables are ANALYZEd, `shop.personas.discover()` finds the personas among all of them, and
`shop.audiences.put` saves the demo's audience again over the big shop.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from bulk_tables import load
from sqlalchemy import select, text

from shopkeeper.cli.demo_personas import NARROW
from shopkeeper.experiments import HOLDOUT, PERSONALIZED
from shopkeeper.experiments.service import holdout_from
from shopkeeper.profiles.builder import ProfileBuilder
from shopkeeper.settings import Settings
from shopkeeper.shop import Shop
from shopkeeper.store import Store
from shopkeeper.store.event_log import kept_revenue
from shopkeeper.store.interactions import PURCHASE, VIEW
from shopkeeper.store.schema import consents, decisions, events, interactions, items

SHIFT_DAYS = 30  # each new person's history is moved back by up to this many days
VIEW_HOURS = 72  # a view comes up to this many hours before the order it is drawn from
DECISIONS_PER_PERSON = 1.5
DECISION_DAYS = 30
FIRST_USER_ID = 100_000
CHUNK = 100_000  # rows formatted at a time
DAY = 86_400.0

COLUMNS = {
    "people": ("person_id", "created_at", "merged_into", "generation"),
    "identities": ("kind", "value", "person_id", "created_at", "message_id"),
    "events": (
        "message_id",
        "type",
        "event",
        "user_id",
        "person_id",
        "timestamp",
        "received_at",
        "revenue",
        "payload",
    ),
    "interactions": ("person_id", "item_id", "kind", "at", "quantity", "message_id"),
    "consents": ("person_id", "purpose", "granted", "at", "channel", "actor", "message_id"),
    "decisions": (
        "decision_id",
        "person_id",
        "external_id",
        "placement",
        "model_version",
        "personalized",
        "items",
        "reasons",
        "at",
        "unit",
        "cohort",
        "experiment",
        "arm",
        "propensity",
    ),
    "profile_dirty": ("person_id",),
}


@dataclass(frozen=True)
class Shape:
    people: int = 100_000
    events: int = 1_000_000
    seed: int = 0


@dataclass
class Real:
    """The demo shop's real customers (people with an order or a refund), as arrays a new person copies.
    Events and lines are ordered by customer; `*_start`/`*_count` give each customer's slice."""

    person_ids: np.ndarray
    event_at: np.ndarray  # seconds since the epoch
    event_message: list[str]
    event_payload: list[dict[str, Any]]
    event_start: np.ndarray
    event_count: np.ndarray
    line_item: list[str]
    line_kind: np.ndarray
    line_at: np.ndarray
    line_quantity: np.ndarray
    line_message: list[str]
    line_start: np.ndarray
    line_count: np.ndarray
    purchases: list[np.ndarray]  # per customer: their purchase lines (rows of `line_*`)
    catalog: dict[str, tuple[str, str, float | None]]  # item -> title, category, price
    consents: dict[int, list[tuple[Any, ...]]]  # customer index -> (purpose, granted, at, channel, actor)
    decisions: list[dict[str, Any]]
    existing_events: int
    next_person_id: int


def read_real(store: Store) -> Real:
    """The demo shop's real customers, read whole (a few thousand events, some 50,000 lines)."""
    with store.engine.connect() as conn:
        event_rows = conn.execute(
            select(events.c.person_id, events.c.timestamp, events.c.message_id, events.c.payload)
            .where(events.c.type != "identify")  # an identify carries an email: never copied
            .order_by(events.c.person_id, events.c.timestamp, events.c.id)
        ).all()
        line_rows = conn.execute(
            select(*(interactions.c[name] for name in COLUMNS["interactions"])).order_by(
                interactions.c.person_id, interactions.c.at, interactions.c.id
            )
        ).all()
        catalog = {
            item: (title, category, price)
            for item, title, category, price in conn.execute(
                select(items.c.item_id, items.c.title, items.c.category, items.c.price)
            )
        }
        consent_rows = conn.execute(
            select(
                consents.c.person_id,
                consents.c.purpose,
                consents.c.granted,
                consents.c.at,
                consents.c.channel,
                consents.c.actor,
            ).order_by(consents.c.id)
        ).all()
        decision_rows = conn.execute(
            select(
                decisions.c.placement, decisions.c.model_version, decisions.c["items"], decisions.c.reasons
            )
        ).all()
        existing = int(conn.execute(text("SELECT COUNT(*) FROM events")).scalar_one())
        top = int(conn.execute(text("SELECT MAX(person_id) FROM people")).scalar_one())
    person_ids = np.unique([row.person_id for row in event_rows])
    index = {int(p): i for i, p in enumerate(person_ids)}
    customers = np.arange(len(person_ids))
    event_owner = np.array([index[row.person_id] for row in event_rows])
    line_rows = [row for row in line_rows if row.person_id in index]
    line_owner = np.array([index[row.person_id] for row in line_rows])
    line_kind = np.array([row.kind for row in line_rows], dtype=np.int64)
    starts = np.searchsorted(line_owner, customers)
    ends = np.searchsorted(line_owner, customers, side="right")
    bought = np.flatnonzero(line_kind == PURCHASE)
    by_customer: dict[int, list[tuple[Any, ...]]] = {}
    for row in consent_rows:
        if row.person_id in index:
            by_customer.setdefault(index[row.person_id], []).append(tuple(row)[1:])
    return Real(
        person_ids=person_ids,
        event_at=np.array([row.timestamp.timestamp() for row in event_rows]),
        event_message=[row.message_id for row in event_rows],
        event_payload=[orjson.loads(row.payload) for row in event_rows],
        event_start=np.searchsorted(event_owner, customers),
        event_count=np.bincount(event_owner, minlength=len(person_ids)),
        line_item=[row.item_id for row in line_rows],
        line_kind=line_kind,
        line_at=np.array([row.at.timestamp() for row in line_rows]),
        line_quantity=np.array([row.quantity for row in line_rows]),
        line_message=[row.message_id for row in line_rows],
        line_start=starts,
        line_count=ends - starts,
        purchases=[bought[(bought >= s) & (bought < e)] for s, e in zip(starts, ends, strict=True)],
        catalog=catalog,
        consents=by_customer,
        decisions=[row._asdict() for row in decision_rows],
        existing_events=existing,
        next_person_id=top + 1,
    )


@dataclass(frozen=True)
class Views:
    """The product views added: each one's new person, the real purchase line it views, its time."""

    owner: np.ndarray
    line: np.ndarray
    at: np.ndarray


@dataclass(frozen=True)
class Plan:
    """Who each new person copies, how far back in time (whole seconds), and their views."""

    source: np.ndarray
    shift: np.ndarray
    views: Views
    first_person_id: int
    seed: int

    @property
    def n(self) -> int:
        return len(self.source)

    def person(self, clone: int) -> int:
        return self.first_person_id + clone

    def made(self, real: Real) -> np.ndarray:
        """Each new person's creation: before their first copied event and any view of it."""
        return real.event_at[real.event_start[self.source]] - self.shift - VIEW_HOURS * 3600


@dataclass
class Built:
    """What the build made and how long each step took (seconds)."""

    people: int
    events: int
    interactions: int
    decisions: int
    seconds: dict[str, float]
    personas: str


def plan(real: Real, shape: Shape) -> Plan:
    """Who each new person copies, how far back, and the views that bring the events to `shape.events`."""
    rng = np.random.default_rng(shape.seed)
    clones = max(0, shape.people - (real.next_person_id - 1))
    source = rng.integers(0, len(real.person_ids), size=clones)
    shift = np.floor(rng.uniform(0, SHIFT_DAYS * DAY, size=clones))
    copied = int(real.event_count[source].sum())
    wanted = max(0, shape.events - real.existing_events - copied)
    bought = np.array([len(p) for p in real.purchases], dtype=np.float64)[source]
    per_clone = rng.multinomial(wanted, bought / bought.sum()) if wanted else np.zeros(clones, np.int64)
    owner = np.repeat(np.arange(clones), per_clone)
    line = np.empty(len(owner), dtype=np.int64)
    ends = np.cumsum(per_clone)
    for clone in np.flatnonzero(per_clone):
        options = real.purchases[source[clone]]
        line[ends[clone] - per_clone[clone] : ends[clone]] = options[
            rng.integers(0, len(options), size=per_clone[clone])
        ]
    before = np.floor(rng.uniform(0, VIEW_HOURS * 3600, size=len(owner)))
    views = Views(owner, line, real.line_at[line] - shift[owner] - before)
    return Plan(source, shift, views, real.next_person_id, shape.seed)


def _slices(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each owner i, the rows starts[i] to starts[i] + counts[i] - 1: (owner of each row, row)."""
    owner = np.repeat(np.arange(len(starts)), counts)
    offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return owner, offsets + np.arange(int(counts.sum()))


def stamps(seconds: np.ndarray) -> list[str]:
    """Seconds since the epoch as the store keeps a UtcDateTime on SQLite."""
    micro = np.round(seconds * 1e6).astype("int64").astype("datetime64[us]")
    return [s.replace("T", " ") for s in np.datetime_as_string(micro, unit="us").tolist()]


def iso(seconds: np.ndarray) -> list[str]:
    """Seconds since the epoch as a message's ISO 8601 timestamp."""
    whole = np.round(seconds).astype("int64").astype("datetime64[s]")
    return [s + "Z" for s in np.datetime_as_string(whole, unit="s").tolist()]


def user_id(clone: int) -> str:
    return str(FIRST_USER_ID + clone)


@dataclass(frozen=True)
class Timeline:
    """Copied rows and views merged in time order: which new person, which real row (or view), when."""

    clone: np.ndarray
    ref: np.ndarray  # the real row copied, or the view's number
    view: np.ndarray
    at: np.ndarray

    @classmethod
    def of(cls, owner: np.ndarray, rows: np.ndarray, at: np.ndarray, views: Views) -> Timeline:
        order = np.argsort(np.concatenate((at, views.at)), kind="stable")
        return cls(
            np.concatenate((owner, views.owner))[order],
            np.concatenate((rows, np.arange(len(views.owner))))[order],
            np.concatenate((np.zeros(len(rows), bool), np.ones(len(views.owner), bool)))[order],
            np.concatenate((at, views.at))[order],
        )

    def chunks(self) -> Iterator[tuple[int, int, list[str]]]:
        """(start, end, the rows' times as stored), CHUNK rows at a time."""
        for start in range(0, len(self.at), CHUNK):
            end = min(start + CHUNK, len(self.at))
            yield start, end, stamps(self.at[start:end])


def people_rows(real: Real, p: Plan) -> Iterator[tuple[Any, ...]]:
    made = stamps(p.made(real))
    generation = np.random.default_rng(p.seed + 1).integers(1, 2**62, size=p.n)
    for clone in range(p.n):
        yield (p.person(clone), made[clone], None, int(generation[clone]))


def identity_rows(real: Real, p: Plan) -> Iterator[tuple[Any, ...]]:
    made = stamps(p.made(real))
    for clone in range(p.n):
        yield ("user_id", user_id(clone), p.person(clone), made[clone], None)


def event_rows(real: Real, p: Plan) -> Iterator[tuple[Any, ...]]:
    """The copied orders and refunds, and the views, in time order."""
    owner, rows = _slices(real.event_start[p.source], real.event_count[p.source])
    timeline = Timeline.of(owner, rows, real.event_at[rows] - p.shift[owner], p.views)
    for start, end, column in timeline.chunks():
        sent = iso(timeline.at[start:end])
        for i in range(end - start):
            clone, ref = int(timeline.clone[start + i]), int(timeline.ref[start + i])
            uid = user_id(clone)
            if timeline.view[start + i]:
                message, payload = f"sim{clone}:view:{ref}", _view(real, int(p.views.line[ref]), uid)
            else:
                message = f"sim{clone}:{real.event_message[ref]}"
                payload = dict(real.event_payload[ref], userId=uid)
            payload |= {"messageId": message, "timestamp": sent[i], "originalTimestamp": sent[i]}
            payload["receivedAt"] = sent[i]
            yield (
                message,
                payload["type"],
                payload.get("event"),
                uid,
                p.person(clone),
                column[i],
                column[i],
                kept_revenue(payload["type"], payload.get("event"), payload),  # as appending keeps it
                orjson.dumps(payload).decode(),
            )


def _view(real: Real, line: int, uid: str) -> dict[str, Any]:
    item = real.line_item[line]
    title, category, price = real.catalog.get(item, ("", "", None))
    return {
        "type": "track",
        "event": "Product Viewed",
        "userId": uid,
        "properties": {"product_id": item, "name": title, "price": price, "category": category},
        "context": {"library": {"name": "shopkeeper-benchmark-resampled", "version": "0"}},
    }


def interaction_rows(real: Real, p: Plan) -> Iterator[tuple[Any, ...]]:
    """The copied lines (every kind), and a view line for each view, in time order."""
    owner, rows = _slices(real.line_start[p.source], real.line_count[p.source])
    timeline = Timeline.of(owner, rows, real.line_at[rows] - p.shift[owner], p.views)
    for start, end, column in timeline.chunks():
        for i in range(end - start):
            clone, ref = int(timeline.clone[start + i]), int(timeline.ref[start + i])
            if timeline.view[start + i]:
                item = real.line_item[int(p.views.line[ref])]
                yield (p.person(clone), item, VIEW, column[i], 1.0, f"sim{clone}:view:{ref}")
            else:
                message = f"sim{clone}:{real.line_message[ref]}"
                kind, quantity = int(real.line_kind[ref]), float(real.line_quantity[ref])
                yield (p.person(clone), real.line_item[ref], kind, column[i], quantity, message)


def consent_rows(real: Real, p: Plan) -> Iterator[tuple[Any, ...]]:
    for clone in range(p.n):
        for purpose, granted, at, channel, actor in real.consents.get(int(p.source[clone]), []):
            moved = stamps(np.array([at.timestamp() - p.shift[clone]]))[0]
            yield (p.person(clone), purpose, granted, moved, channel, actor, None)


def decision_rows(real: Real, p: Plan, now: datetime, settings: Settings) -> Iterator[tuple[Any, ...]]:
    """About 1.5 decisions a new person in the last 30 days (none before they were made), each a copy of
    one of the demo's real decisions, in the cohort the real holdout puts the person in."""
    rng = np.random.default_rng(p.seed + 2)
    owner = np.repeat(np.arange(p.n), rng.poisson(DECISIONS_PER_PERSON, size=p.n))
    at = np.maximum(
        now.timestamp() - rng.uniform(0, DECISION_DAYS * DAY, size=len(owner)), p.made(real)[owner] + 60
    )
    order = np.argsort(at, kind="stable")
    units = [user_id(c) for c in range(p.n)]
    holdout = holdout_from(settings.holdout_share, settings.holdout_salt)
    held = holdout.mask(units) if units else np.zeros(0, bool)
    copied = rng.integers(0, len(real.decisions), size=len(owner))
    column = stamps(at[order])
    for i, n in enumerate(order):
        clone = int(owner[n])
        real_one = real.decisions[copied[n]]
        cohort, share = (HOLDOUT, holdout.share) if held[clone] else (PERSONALIZED, 1 - holdout.share)
        yield (
            str(uuid.uuid4()),
            p.person(clone),
            units[clone],
            real_one["placement"],
            real_one["model_version"],
            int(cohort == PERSONALIZED),
            real_one["items"],
            real_one["reasons"],
            column[i],
            units[clone],
            cohort,
            None,
            cohort,
            share,
        )


def build(url: str, shape: Shape, say: Callable[[str], None]) -> Built:
    """Add the resampled people to the shop at `url` (a copy of the demo shop), then let the real code
    rebuild their profiles, find personas and save an audience. `say` prints progress."""
    seconds: dict[str, float] = {}
    now = datetime.now(UTC)
    settings = Settings().with_database(url)
    store = Store.open(url)
    try:
        started = time.perf_counter()
        real = read_real(store)
        p = plan(real, shape)
        rows = {
            "people": people_rows(real, p),
            "identities": identity_rows(real, p),
            "events": event_rows(real, p),
            "interactions": interaction_rows(real, p),
            "consents": consent_rows(real, p),
            "decisions": decision_rows(real, p, now, settings),
            "profile_dirty": ((p.person(c),) for c in range(p.n)),
        }
        load(store, rows, COLUMNS, analyze=False, stamped=True)
        seconds["resample and write the rows"] = time.perf_counter() - started
        say(
            f"wrote {p.n:,} resampled people and their rows in {seconds['resample and write the rows']:.0f} s"
        )
        started = time.perf_counter()
        ProfileBuilder(store).refresh_dirty()
        seconds["rebuild their profiles (ProfileBuilder)"] = time.perf_counter() - started
        say(f"rebuilt their profiles in {seconds['rebuild their profiles (ProfileBuilder)']:.0f} s")
        started = time.perf_counter()
        with store.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        seconds["ANALYZE"] = time.perf_counter() - started
        with store.engine.connect() as conn:
            totals = {
                table: int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
                for table in ("people", "events", "interactions", "decisions")
            }
    finally:
        store.close()
    with Shop.from_settings(settings) as shop:
        started = time.perf_counter()
        found = shop.personas.discover()
        seconds["shop.personas.discover()"] = time.perf_counter() - started
        say(f"found {len(found['personas'])} personas in {seconds['shop.personas.discover()']:.0f} s")
        started = time.perf_counter()
        shop.audiences.put("wrap-regulars", NARROW, "Regulars who bought gift wrap lately")
        seconds["shop.audiences.put(wrap-regulars)"] = time.perf_counter() - started
    personas = f"{found['k']} personas covering {found['coverage']:.0%} of {found['customers']:,} customers"
    return Built(
        totals["people"], totals["events"], totals["interactions"], totals["decisions"], seconds, personas
    )

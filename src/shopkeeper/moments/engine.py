"""The moment engine: it follows the event log and the catalog's history, and turns what matters to one
person into a moment in the outbox.

Each `step` reads what arrived since its cursors, records wishes, asks every rule's trigger for
candidates, judges each with `respect`, and writes the moments, their exposures, and the cursors that
passed them, in one write transaction: a crash at any point leaves either all of it or none, and the
next step starts where the last commit left off. A moment's `dedupe` key makes it once, whatever runs twice.

The engine starts at the end of the log the first time it runs (a shop's history is not news), and an
event or change older than `FRESH` when read makes no moment (an import of last year's orders is not a
reason to write to anyone).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection

from shopkeeper.errors import InvalidInput, NotFound
from shopkeeper.experiments.service import Targeting, matches, unit_from
from shopkeeper.moments import triggers
from shopkeeper.moments.respect import RESPECT_TRAITS, WORDS, Counter, Person, RespectConfig, Verdict, judge
from shopkeeper.moments.rules import PARAMS, Rule, default_rules, parse_rule
from shopkeeper.privacy.consent import Purposes
from shopkeeper.profiles.builder import ProfileBuilder
from shopkeeper.profiles.traits import resolve
from shopkeeper.store import Store
from shopkeeper.store.engine import trial_transaction, write_transaction
from shopkeeper.store.moment_people import add_many, existing, newest_timezones, people_rows, recent_contacts
from shopkeeper.store.moments import Variant, Wish
from shopkeeper.store.outbox import LIVE, OutboxRow, log_exposures

FRESH = timedelta(days=2)
REFRESH_AT_MOST = 1000  # people a step brings up to date before judging them (see `refresh_in`)
CONTACT_MEMORY = timedelta(days=92)  # the longest look back of the budget: a stated quarterly frequency
BATCH = 1000
EVENTS, CHANGES = "events", "changes"
FACTS = triggers.FACTS


@dataclass(frozen=True)
class Stepped:
    """What one step read and made."""

    events: int
    changes: int
    made: int
    suppressed: int
    scanned: int = 0

    @property
    def busy(self) -> bool:
        return self.events + self.changes > 0


@dataclass(frozen=True)
class _SendFacts:
    """What the re-check of a batch of back-in-stock moments reads once: the items' variants, the wishes."""

    variants: dict[str, list[Variant]]
    wishes: dict[int, Wish]


@dataclass(frozen=True)
class Made:
    row_id: int
    candidate: triggers.Candidate
    verdict: Verdict


class MomentEngine:
    """Rules, the step that makes moments, a rule's replay, and the re-check before a moment goes."""

    def __init__(
        self,
        store: Store,
        purposes: Purposes,
        config: RespectConfig,
        *,
        defaults: bool = True,
        builder: ProfileBuilder | None = None,
        audiences: Targeting | None = None,
    ) -> None:
        self._store = store
        self._audiences = audiences  # rules' `audience` and `where` beyond one trait (None: one trait only)
        self._purposes = purposes
        self.config = config
        self._defaults = defaults
        self._builder = builder  # rebuilds the traits of people whose events changed (None: read as stored)

    # ---- rules ------------------------------------------------------------------------------------------

    def rules(self, conn: Connection | None = None) -> dict[str, Rule]:
        """Every rule in force or switched off: the defaults (when on), replaced by stored ones by name."""
        found = default_rules() if self._defaults else {}
        for name, (body, origin, _at) in self._store.moments.rules(conn).items():
            found[name] = parse_rule(name, body, origin=origin)
        return dict(sorted(found.items()))

    def rule(self, name: str) -> Rule:
        found = self.rules().get(name)
        if found is None:
            raise NotFound(f"no moment rule named {name!r}", field="name")
        return found

    def check_rule(self, name: str, raw: Any, *, origin: str, where: str = "") -> Rule:
        """A rule as `save_rule` would save it, checked against this shop (its audiences) too."""
        rule = parse_rule(name, raw, origin=origin, where=where)
        needs_audiences = rule.audience is not None or (rule.where is not None and not one_trait(rule.where))
        if needs_audiences and self._audiences is None:
            raise InvalidInput(
                "this engine reads no audiences: use `where` with a condition on one trait",
                field=f"{where}audience" if rule.audience is not None else f"{where}where",
            )
        if rule.audience is not None and self._audiences is not None:
            try:
                self._audiences.target(rule.audience, field=f"{where}audience")
            except NotFound:
                raise InvalidInput(
                    f"no audience named {rule.audience!r}; `shopkeeper audiences list` shows them",
                    field=f"{where}audience",
                ) from None
        unknown = [p for p in rule.consent if p not in self._purposes.names]
        if unknown:
            raise InvalidInput(
                f"consent: {unknown[0]!r} is not one of this shop's purposes "
                f"({', '.join(self._purposes.names)})",
                field=f"{where}consent",
            )
        return rule

    def save_rule(self, name: str, raw: Any, *, origin: str, where: str = "") -> Rule:
        rule = self.check_rule(name, raw, origin=origin, where=where)
        self._save([rule], origin)
        return rule

    def save_rules(self, bodies: Mapping[str, Any], *, origin: str) -> list[Rule]:
        """Check every rule (a bad field is named under its rule's name: `price_drop.params.min_percent`),
        then save them all in one transaction: all of them, or none."""
        rules = [self.check_rule(str(n), raw, origin=origin, where=f"{n}.") for n, raw in bodies.items()]
        self._save(rules, origin)
        return rules

    def _save(self, rules: list[Rule], origin: str) -> None:
        now = datetime.now(UTC)
        with write_transaction(self._store.engine) as conn:
            for rule in rules:
                self._store.moments.save_rule(conn, rule.name, rule.body(), origin, now)

    # ---- the step ----------------------------------------------------------------------------------------

    def step(self, now: datetime | None = None, *, batch: int = BATCH) -> Stepped:
        """Read what arrived since the last step and make its moments (see the module docstring)."""
        now = now or datetime.now(UTC)
        moments = self._store.moments
        with self._store.engine.connect() as conn:  # most steps find nothing new: a read, no write lock
            ends = moments.log_end(conn)
            if (moments.cursor(conn, EVENTS), moments.cursor(conn, CHANGES)) == ends:
                return Stepped(0, 0, 0, 0)
        with write_transaction(self._store.engine) as conn:
            after_event, after_change = moments.cursor(conn, EVENTS), moments.cursor(conn, CHANGES)
            if after_event is None or after_change is None:
                last_event, last_change = moments.log_end(conn)
                moments.set_cursor(conn, EVENTS, last_event, now)
                moments.set_cursor(conn, CHANGES, last_change, now)
                return Stepped(0, 0, 0, 0)
            new_events = moments.events_after(conn, after_event, batch)
            new_changes = moments.changes_after(conn, after_change, batch)
            if not new_events and not new_changes:
                return Stepped(0, 0, 0, 0)
            world = triggers.World(conn, self._store, now, refresh=self.refresh_in)
            live = [r for r in self.rules(conn).values() if r.enabled]
            candidates: list[triggers.Candidate] = []
            for event in new_events:
                if event.timestamp >= now - FRESH:
                    triggers.record_wishes(world, event)
                    candidates += triggers.on_event(world, live, event)
            recent = [c for c in new_changes if c.at >= now - FRESH]
            world.preload(recent)
            for change in recent:
                candidates += triggers.on_change(world, live, change)
            made = self.make(conn, candidates, now)
            if new_events:
                moments.set_cursor(conn, EVENTS, new_events[-1].id, now)
            if new_changes:
                moments.set_cursor(conn, CHANGES, new_changes[-1].id, now)
        suppressed = sum(1 for m in made if m.verdict.status == "suppressed")
        return Stepped(len(new_events), len(new_changes), len(made) - suppressed, suppressed)

    def daily(self, now: datetime | None = None) -> int:
        """The day's scans (winbacks, anniversaries), once a day per rule; wishes past their time expire,
        and snoozed tasks wake. Returns the moments made."""
        now = now or datetime.now(UTC)
        made = 0
        with write_transaction(self._store.engine) as conn:
            self._store.moments.expire_wishes(conn, now)
            self._store.outbox.wake_snoozed(conn, now)
            today = now.date().toordinal()
            for rule in self.rules(conn).values():
                if not rule.enabled or rule.trigger not in ("winback", "milestone"):
                    continue
                name = f"scan:{rule.name}"
                if (self._store.moments.cursor(conn, name) or 0) >= today:
                    continue
                world = triggers.World(conn, self._store, now)
                made += len(self.make(conn, triggers.scan(world, rule), now))
                self._store.moments.set_cursor(conn, name, today, now)
        return made

    def make(self, conn: Connection, candidates: list[triggers.Candidate], now: datetime) -> list[Made]:
        """Judge and write candidates, the highest priority first, inside the caller's write transaction,
        reading their people and contacts once for the batch. A candidate whose dedupe key is in the
        outbox already (or earlier in the batch) is skipped."""
        if not candidates:
            return []
        taken = existing(conn, [c.dedupe for c in candidates])
        fresh: list[triggers.Candidate] = []
        for candidate in sorted(candidates, key=lambda c: (-c.rule.priority, c.at, c.dedupe)):
            if candidate.dedupe[:255] not in taken:
                taken.add(candidate.dedupe[:255])
                fresh.append(candidate)
        self.refresh_in(conn, {c.person_id for c in fresh}, at_most=REFRESH_AT_MOST)
        conditions = trait_keys(c.rule for c in fresh)
        people = self.people(conn, {c.person_id for c in fresh}, now, extra=conditions)
        contacts = recent_contacts(conn, list(people), now - CONTACT_MEMORY)
        judged: list[tuple[triggers.Candidate, Verdict, Person]] = []
        for candidate in fresh:
            person = people.get(candidate.person_id)
            if person is None or not self._in_condition(conn, candidate.rule, person):
                continue
            due = max(candidate.at + timedelta(seconds=candidate.rule.delay_seconds), now)
            verdict = (
                Verdict("suppressed", candidate.rule.channels[0], candidate.suppress, due)
                if candidate.suppress
                else judge(self.config, person, candidate.rule, due, _counter(contacts))
            )
            if verdict.status in LIVE and not candidate.rule.transactional:
                contacts.setdefault(person.person_id, []).append((now, verdict.channel, 0))
            judged.append((candidate, verdict, person))
        ids = add_many(conn, [_row(c, v, now) for c, v, _ in judged])
        self._store.moments.mark_notified(
            conn, [(c.wish_id, c.at) for c, _, _ in judged if c.wish_id is not None and c.suppress is None]
        )
        log_exposures(
            conn,
            [
                _exposure(c, v, p, now)
                for c, v, p in judged
                if v.status != "suppressed" or v.reason == "holdout"
            ],
        )
        return [Made(ids[c.dedupe[:255]], c, v) for c, v, _ in judged]

    def people(
        self, conn: Connection, person_ids: Iterable[int], now: datetime, *, extra: Iterable[str] = ()
    ) -> dict[int, Person]:
        """What respect reads of these people (the traits it needs, and `extra` ones a rule's condition
        reads), in a few queries; a person who is gone (erased) is left out."""
        names = self._purposes.names
        rows = people_rows(conn, person_ids, names, sorted({*RESPECT_TRAITS, *extra}))
        resolved = {p: {k: t.value for k, t in resolve(r.traits, now).items()} for p, r in rows.items()}
        unzoned = [p for p, values in resolved.items() if not isinstance(values.get("timezone"), str)]
        zones = newest_timezones(conn, unzoned) if unzoned else {}
        found = {}
        for person_id, stored in rows.items():
            values = resolved[person_id]
            email = next((v for kind, v in stored.external if kind == "email"), None)
            if email is None and isinstance(values.get("email"), str) and "@" in values["email"]:
                email = values["email"]
            zone = values.get("timezone") if isinstance(values.get("timezone"), str) else zones.get(person_id)
            found[person_id] = Person(
                person_id=person_id,
                ref=next((v for kind, v in stored.external if kind == "user_id"), stored.external[0][1]),
                unit=unit_from(stored.unit_ids, stored.external[0][1]),
                traits=values,
                consent={**self._purposes.defaults(names), **stored.consent},
                email=email,
                timezone=zone,
            )
        return found

    def refresh_in(self, conn: Connection, person_ids: Iterable[int], *, at_most: int | None = None) -> None:
        """Bring the traits of these people whose events changed up to date, inside the caller's write
        transaction: a stated pause, a new order's revenue, a trait a rule's condition reads. With
        `at_most`, only when that few need it: a step that wakes thousands of wishes judges them on their
        traits as stored, and the worker brings each person up to date before anything is sent to them."""
        if self._builder is not None:
            dirty = self._store.traits.dirty_among(conn, person_ids)
            if dirty and (at_most is None or len(dirty) <= at_most):
                self._builder.rebuild_in(conn, dirty)

    def refresh(self, person_ids: Iterable[int]) -> None:
        """`refresh_in`, in a write transaction of its own, when any of them needs it (the re-check)."""
        if self._builder is None:
            return
        with self._store.engine.connect() as conn:
            dirty = self._store.traits.dirty_among(conn, person_ids)
        if dirty:
            self._builder.rebuild(dirty)

    def person(self, conn: Connection, person_id: int, now: datetime) -> Person | None:
        """What respect reads of a person (and every rule's condition); None when they are gone (erased)."""
        conditions = trait_keys(self.rules(conn).values())
        return self.people(conn, [person_id], now, extra=conditions).get(person_id)

    def reach_of(self, rule: Rule) -> dict[str, Any] | None:
        """The reach of the rule's audience and condition together (None: it targets everyone, or this
        engine reads no audiences)."""
        if self._audiences is None or (rule.audience is None and rule.where is None):
            return None
        parts: list[dict[str, Any]] = [] if rule.where is None else [rule.where]
        if rule.audience is not None:
            parts.append(self._audiences.condition_of({"audience": rule.audience}))
        target = parts[0] if len(parts) == 1 else {"all": parts}
        return self._audiences.target_reach(target)

    def _in_condition(self, conn: Connection, rule: Rule, person: Person) -> bool:
        """Whether the person is in the rule's audience and meets its `where` (one trait, read with the
        person; anything more, through the audiences)."""
        where = rule.where
        if where is not None and one_trait(where):
            if not matches(where, person.traits.get(where["trait"])):
                return False
        elif where is not None and (
            self._audiences is None or not self._audiences.contains(conn, where, person.person_id)
        ):
            return False
        if rule.audience is None:
            return True
        target = {"audience": rule.audience}
        return self._audiences is not None and self._audiences.contains(conn, target, person.person_id)

    # ---- a rule's replay ----------------------------------------------------------------------------

    def replay(self, name: str, person_id: int) -> list[dict[str, Any]]:
        """What `name` would have done for this person: their recorded events and the catalog changes of
        the items they touched, replayed in time order through the rule (and the wishes they record), in
        a transaction that is rolled back. Stock is read as it was at each event; their traits, consent
        and the outbox as they are now. Each line says what fired, when, and why not otherwise."""
        rule = self.rule(name)
        lines: list[dict[str, Any]] = []
        with trial_transaction(self._store.engine) as conn:
            everyone = self._store.identities.with_merged(person_id, conn)
            happened = self._store.moments.events_of(conn, everyone)
            touched = {i for e in happened for p in triggers.products(e) if (i := triggers.item_id_of(p))}
            touched |= {w.item_id for w in self._store.moments.wishes_of(conn, everyone)}
            changes = FACTS.changes_of(conn, sorted(touched)) if touched else []
            first = happened[0].timestamp if happened else datetime.now(UTC)
            timeline: list[tuple[datetime, int, Any]] = [(e.timestamp, 0, e) for e in happened]
            timeline += [(c.at, 1, c) for c in changes if c.at >= first]
            for at, kind, thing in sorted(timeline, key=lambda t: (t[0], t[1], t[2].id)):
                world = triggers.World(conn, self._store, at, history=True)
                if kind == 0:
                    recorded = triggers.record_wishes(world, thing)
                    candidates = triggers.on_event(world, [rule], thing)
                    what = f"{thing.type} {thing.event or ''}".strip()
                    lines += [_line(at, what, "wish", f"wish recorded ({w.source})") for w in recorded]
                else:
                    candidates = triggers.on_change(world, [rule], thing)
                    what = (
                        f"{thing.field} of {thing.item_id} {thing.variant_id}".strip()
                        + f": {thing.old_value} -> {thing.new_value}"
                    )
                mine = [c for c in candidates if c.person_id in everyone]
                lines += self._tried(conn, mine, at, what)
            if rule.trigger in ("winback", "milestone"):
                now = datetime.now(UTC)
                found = [
                    c
                    for c in triggers.scan(triggers.World(conn, self._store, now), rule)
                    if c.person_id in everyone
                ]
                lines += self._tried(conn, found, now, "today's scan")
        return lines

    def _tried(
        self, conn: Connection, candidates: list[triggers.Candidate], at: datetime, what: str
    ) -> list[dict[str, Any]]:
        lines = []
        for c in candidates:
            if self._store.outbox.exists(conn, c.dedupe):
                lines.append(_line(at, what, "duplicate", "made already (the outbox has this moment)"))
        for m in self.make(conn, candidates, at):
            v = m.verdict
            words = WORDS.get(v.reason or "", "would be sent")
            lines.append(
                {
                    **_line(at, what, v.status, words),
                    "channel": v.channel,
                    "reason": v.reason,
                    "due_at": v.due_at.isoformat(),
                    "item_id": m.candidate.item_id,
                    "variant_id": m.candidate.variant_id,
                }
            )
        return lines

    # ---- at send time ----------------------------------------------------------------------------------

    def recheck(self, conn: Connection, row: OutboxRow, now: datetime) -> Verdict:
        """The verdict on one moment that is due (see `recheck_many`)."""
        return self.recheck_many(conn, [row], now)[0][1]

    def recheck_many(
        self, conn: Connection, rows: list[OutboxRow], now: datetime
    ) -> list[tuple[OutboxRow, Verdict, Person | None]]:
        """The verdict on moments that are due, with their people, read once for the batch: respect again
        (the person may have withdrawn consent, paused, or been written to meanwhile), then each
        trigger (still in stock, still cheaper, cart still not bought), then the rule's audience and
        condition (still in them)."""
        rules = self.rules(conn)
        conditions = trait_keys(rules.values())
        people = self.people(conn, {r.person_id for r in rows}, now, extra=conditions)
        contacts = recent_contacts(conn, list(people), now - CONTACT_MEMORY)
        stocked = [r for r in rows if r.trigger == "back_in_stock" and r.item_id]
        facts = _SendFacts(
            variants=self._store.moments.variants(conn, {r.item_id for r in stocked if r.item_id}),
            wishes={
                w.id: w for w in self._store.moments.wishes_of(conn, sorted({r.person_id for r in stocked}))
            },
        )
        checked: list[tuple[OutboxRow, Verdict, Person | None]] = []
        for row in rows:
            person = people.get(row.person_id)
            if person is None:
                checked.append((row, Verdict("suppressed", row.channel, "erased", now), None))
                continue
            rule = rules.get(row.rule) or gone_rule(row)
            verdict = judge(self.config, person, rule, now, _counter(contacts, excluding=row.id))
            if verdict.status != "suppressed":
                reason = self._trigger_still_holds(conn, row, facts)
                if reason is None and not self._in_condition(conn, rule, person):
                    reason = "left_audience"
                if reason is not None:
                    verdict = Verdict("suppressed", verdict.channel, reason, now)
            checked.append((row, verdict, person))
        return checked

    def _trigger_still_holds(self, conn: Connection, row: OutboxRow, facts: _SendFacts) -> str | None:
        moments = self._store.moments
        if row.trigger == "back_in_stock" and row.item_id:
            variants = facts.variants.get(row.item_id, [])
            variant = next((v for v in variants if v.variant_id == row.variant_id), None)
            if variant is None or (variant.stock is not None and variant.stock <= 0):
                return "out_of_stock"
            wish = None if row.wish_id is None else facts.wishes.get(row.wish_id)
            if wish is None or wish.status not in ("open", "notified"):
                return "wish_closed"
        if row.trigger == "price_drop" and row.item_id:
            price = self._price(conn, row.item_id, row.variant_id)
            if price is None or price > float(row.context.get("after", 0)) + 1e-9:
                return "no_longer_cheaper"
        if row.trigger == "abandoned_cart":
            cart_at = datetime.fromisoformat(row.context["cart_at"])
            everyone = self._store.identities.with_merged(row.person_id, conn)
            if any(moments.bought_after(conn, p, cart_at) for p in everyone):
                return "purchased"
        return None

    def _price(self, conn: Connection, item_id: str, variant_id: str | None) -> float | None:
        facts = self._store.moments.item_facts(conn, [item_id]).get(item_id)
        if facts is None:
            return None
        if variant_id:
            for v in self._store.moments.variants(conn, [item_id]).get(item_id, []):
                if v.variant_id == variant_id and v.price is not None:
                    return v.price
        price = facts["price"]
        return None if price is None else float(price)


def _counter(contacts: dict[int, list[tuple[datetime, str, int]]], excluding: int | None = None) -> Counter:
    """Counts a person's live messages since a time (on a channel) from the rows read for the batch."""

    def count(person_id: int, since: datetime, channel: str | None) -> int:
        return sum(
            1
            for at, on, outbox_id in contacts.get(person_id, ())
            if at >= since and (channel is None or on == channel) and outbox_id != excluding
        )

    return count


def gone_rule(row: OutboxRow) -> Rule:
    """The rule of a moment whose rule was deleted or switched off after it was made: respect is checked
    again as for any moment, on the channel it was given, with the trigger's default params."""
    return Rule(
        name=row.rule,
        trigger=row.trigger,
        channels=(row.channel or "staff",),
        template=row.template,
        delay_seconds=0,
        priority=row.priority,
        params=PARAMS[row.trigger](),
        audience=None,
        where=None,
        consent=(),
        transactional=row.transactional,
        enabled=True,
        description=None,
        origin="gone",
    )


def _line(at: datetime, what: str, outcome: str, why: str) -> dict[str, Any]:
    return {"at": at.isoformat(), "what": what, "outcome": outcome, "why": why}


def one_trait(condition: dict[str, Any]) -> bool:
    """Whether a condition is a test of one resolved trait (read with the person, no audience needed)."""
    return "trait" in condition and set(condition) <= {"trait", "equals", "contains", "gte", "lte"}


def trait_keys(rules: Iterable[Rule]) -> set[str]:
    """The traits the rules' one-trait conditions read."""
    return {r.where["trait"] for r in rules if r.where is not None and one_trait(r.where)}


def _row(candidate: triggers.Candidate, verdict: Verdict, now: datetime) -> dict[str, Any]:
    rule = candidate.rule
    return {
        "person_id": candidate.person_id,
        "rule": rule.name,
        "trigger": rule.trigger,
        "channel": verdict.channel,
        "status": verdict.status,
        "reason": verdict.reason,
        "dedupe": candidate.dedupe,
        "item_id": candidate.item_id,
        "variant_id": candidate.variant_id,
        "wish_id": candidate.wish_id,
        "priority": rule.priority,
        "transactional": int(rule.transactional),
        "context": {**candidate.context, "happened_at": candidate.at.isoformat()},
        "template": rule.template,
        "message_id": f"<{uuid.uuid4()}@shopkeeper>",
        "created_at": now,
        "due_at": verdict.due_at,
    }


def _exposure(
    candidate: triggers.Candidate, verdict: Verdict, person: Person, now: datetime
) -> dict[str, Any]:
    held_out = verdict.reason == "holdout"
    reason = {
        "code": verdict.reason or candidate.rule.trigger,
        "text": WORDS.get(verdict.reason or "", candidate.rule.trigger),
    }
    return {
        "decision_id": str(uuid.uuid4()),
        "person_id": candidate.person_id,
        "external_id": None,
        "placement": f"moment:{candidate.rule.name}"[:64],
        "model_version": None,
        "personalized": 0 if held_out else 1,
        "items": orjson.dumps([{"item_id": candidate.item_id}] if candidate.item_id else []).decode(),
        "reasons": orjson.dumps([reason]).decode(),
        "at": now,
        "unit": person.unit,
        "cohort": "holdout" if held_out else "personalized",
        "experiment": None,
        "arm": None,
        "propensity": None,
        "context": orjson.dumps({"moment": candidate.dedupe}).decode(),
    }

"""The facade's outreach half: the moment service, the outbox worker, and what they are handed (the moment
renderer, the items messages show, the prepared templates, staff picks and a person's links). `Shop`
inherits it; it reads the shop's settings, store and services and holds nothing of its own but caches.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shopkeeper.privacy.consent import Purposes
from shopkeeper.settings import Settings
from shopkeeper.store import Store

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from shopkeeper.channels.worker import OutboxWorker
    from shopkeeper.content.service import ContentService, Prepared
    from shopkeeper.decide.pipeline import Decider
    from shopkeeper.events.ingest import Ingestor
    from shopkeeper.moments.engine import MomentEngine
    from shopkeeper.moments.service import MomentService
    from shopkeeper.personas.audiences import AudienceService
    from shopkeeper.privacy.service import PrivacyService
    from shopkeeper.profiles.service import ProfileService
    from shopkeeper.store.catalog import Item

PREPARED_SECONDS = 5.0  # a template saved while the worker sends is used from at most this much later


class Outreach:
    """Moments, the worker and their helpers, for `Shop` (see the module docstring)."""

    store: Store
    settings: Settings
    purposes: Purposes
    _building: threading.RLock
    _moments: MomentService | None
    _prepared_cache: dict[str, tuple[float, Prepared]]
    _items_cache: dict[str, tuple[float, Item | None]]
    _link_secret: bytes | None

    if TYPE_CHECKING:  # the services `Shop` builds

        @property
        def profiles(self) -> ProfileService: ...

        @property
        def ingestor(self) -> Ingestor: ...

        @property
        def privacy(self) -> PrivacyService: ...

        @property
        def audiences(self) -> AudienceService: ...

        @property
        def decider(self) -> Decider: ...

        @property
        def content(self) -> ContentService: ...

    @property
    def moments(self) -> MomentService:
        """Moment rules, wishes, the outbox and the staff inbox; `moments.engine` makes moments."""
        if self._moments is not None:
            return self._moments
        with self._building:
            if self._moments is None:
                from shopkeeper.moments.service import MomentService  # noqa: PLC0415 (on first use)

                self._moments = MomentService(
                    self.store,
                    self._moment_engine(),
                    find=self.privacy.find,
                    track=self._track_one,
                )
            return self._moments

    def _track_one(self, message: dict[str, Any]) -> None:
        self.ingestor.ingest([message], where="")

    def _moment_engine(self) -> MomentEngine:
        from zoneinfo import ZoneInfo  # noqa: PLC0415

        from shopkeeper.experiments.service import holdout_from  # noqa: PLC0415
        from shopkeeper.moments.engine import MomentEngine  # noqa: PLC0415
        from shopkeeper.moments.respect import RespectConfig, parse_budget, parse_quiet_hours  # noqa: PLC0415

        settings = self.settings
        channels = {"staff"} | ({"email"} if settings.smtp_host else set())
        channels |= {"webhook"} if settings.webhook_url else set()
        config = RespectConfig(
            budget=parse_budget(settings.contact_budget),
            quiet=parse_quiet_hours(settings.quiet_hours),
            shop_zone=ZoneInfo(settings.shop_timezone),
            holdout=holdout_from(settings.holdout_share, settings.holdout_salt),
            channels=frozenset(channels),
        )
        return MomentEngine(
            self.store,
            self.purposes,
            config,
            defaults=settings.default_rules,
            builder=self.profiles.builder,
            audiences=self.audiences,
        )

    def worker(self) -> OutboxWorker:
        """An outbox worker with the channels the settings set up (`shopkeeper worker` runs one)."""
        from shopkeeper.channels.outbound import channels_from  # noqa: PLC0415
        from shopkeeper.channels.worker import OutboxWorker, WorkerConfig  # noqa: PLC0415

        settings = self.settings
        email, webhook = channels_from(settings, self.store, self._unsubscribe_links)
        config = WorkerConfig(
            lease=timedelta(seconds=settings.outbox_lease_seconds),
            retry=timedelta(seconds=settings.outbox_retry_seconds),
            max_attempts=settings.outbox_max_attempts,
        )
        return OutboxWorker(
            self.store,
            self.moments.engine,
            config,
            ledger=self._delivery_ledger(),
            render=self._render_moment,
            person_ref=self.moments.person_ref,
            email=email,
            webhook=webhook,
            picks=self._staff_picks,
        )

    def _delivery_ledger(self) -> Engine | None:
        """On SQLite, an engine whose commits skip the fsync (`synchronous=NORMAL`) for the worker's
        record of each delivery; None elsewhere. Those commits still survive a crash of the process
        (kill -9), and what a power cut could lose of them is only the news that a message went: it is
        then sent again, with the same Message-ID, never lost. The moments themselves are written by
        the engine's step, through the store's own engine, with every commit synced."""
        database = self.store.engine.url.database
        if self.store.backend != "sqlite" or not database or database == ":memory:":
            return None
        from shopkeeper.store.engine import make_engine  # noqa: PLC0415

        return make_engine(self.settings.database_url, sqlite_synchronous="NORMAL")

    def _render_moment(self, row: Any, ref: str) -> Any:
        """A moment's email, made from its rule's template, with its item and the moment as context."""
        from shopkeeper.errors import NotFound  # noqa: PLC0415

        context: dict[str, Any] = {"moment": row.context}
        if row.item_id:
            known = self._item_for_messages(row.item_id)
            if known is not None:
                item: dict[str, Any] = {
                    "item_id": known.item_id,
                    "title": known.title,
                    "category": known.category,
                }
                item.update(
                    {k: v for k, v in (("price", known.price), ("currency", known.currency)) if v is not None}
                )
                for key in ("url", "image_url"):
                    if isinstance(known.attributes.get(key), str):
                        item[key] = known.attributes[key]
                context["item"] = item
        try:
            return self.content.render(self._prepared(row.template), ref, context)
        except NotFound as exc:
            from shopkeeper.content.service import Message  # noqa: PLC0415

            return Message(
                row.template, None, ref, None, None, None, None, None, [], f"no template: {exc.message}"
            )

    def _item_for_messages(self, item_id: str) -> Item | None:
        """An item as the worker's messages show it, read at most once every `PREPARED_SECONDS` (a
        restock's moments name the same few items; the content layer checks the price against the
        catalog's own, cached as long)."""
        now = time.monotonic()
        cached = self._items_cache.get(item_id)
        if cached is None or now - cached[0] > PREPARED_SECONDS:
            if len(self._items_cache) >= 10_000:
                self._items_cache.clear()
            cached = (now, self.store.catalog.get_many([item_id]).get(item_id))
            self._items_cache[item_id] = cached
        return cached[1]

    def _prepared(self, name: str) -> Prepared:
        """The latest version of a template, prepared (read and linted) at most once every
        `PREPARED_SECONDS` for the worker's sends: a batch renders from one version."""
        now = time.monotonic()
        cached = self._prepared_cache.get(name)
        if cached is None or now - cached[0] > PREPARED_SECONDS:
            cached = (now, self.content.prepare(name))
            self._prepared_cache[name] = cached
        return cached[1]

    def _staff_picks(self, ref: str) -> list[dict[str, Any]]:
        """The best next items for a staff task (not logged: staff see them, not the customer)."""
        return [
            {k: v for k, v in pick.items() if k in ("item_id", "title", "reason", "price", "category")}
            for pick in self._picks(ref, "staff", 3, False)
        ]

    def _unsubscribe_links(self, person_id: int) -> tuple[str, str]:
        """The person's preference-centre link, and the one-click unsubscribe URL (RFC 8058)."""
        generation = self.store.identities.generation_of(person_id)
        person = None if generation is None else (person_id, generation)
        centre = self._preferences_url(person)
        token = centre.split("#token=", 1)[1] if "#token=" in centre else ""
        base = centre.split("/preferences", 1)[0]
        return centre, f"{base}/unsubscribe?token={token}"

    def _preferences_url(self, person: tuple[int, int] | None) -> str:
        """The signed preference-centre link of the person (their person id and generation, as a link
        names them), at the shop's public URL (else this server's); for no person, the centre's page."""
        from shopkeeper.privacy.tokens import issue_token, signing_secret  # noqa: PLC0415
        from shopkeeper.store.identity import LinkedPerson  # noqa: PLC0415

        base = (self.settings.public_url or f"http://{self.settings.host}:{self.settings.port}").rstrip("/")
        if person is None:
            return f"{base}/preferences"
        if self._link_secret is None:  # read once: it never changes while the shop runs
            self._link_secret = signing_secret(self.store, self.settings)
        ttl = timedelta(days=self.settings.link_days)
        token = issue_token(self._link_secret, LinkedPerson(*person), ttl=ttl)
        return f"{base}/preferences#token={token}"

    def _picks(self, person: str | None, placement: str, n: int, exposure: bool) -> list[dict[str, Any]]:
        """decide's picks, as a template shows them: each with its first reason and its catalog facts (all
        read in one query)."""
        decision = self.decider.decide(
            user_id=person,
            anonymous_id=None if person else "template-preview",
            placement=placement,
            n=n,
            log=exposure,
        )
        known = self.store.catalog.get_many([chosen.item_id for chosen in decision.items])
        picks = []
        for chosen in decision.items:
            entry: dict[str, Any] = {"item_id": chosen.item_id, "title": chosen.title}
            if chosen.reasons:
                entry["reason"] = chosen.reasons[0].text
            item = known.get(chosen.item_id)
            if item is not None:
                entry.update({"category": item.category, "price": item.price, "currency": item.currency})
                for key in ("url", "image_url"):
                    if isinstance(item.attributes.get(key), str):
                        entry[key] = item.attributes[key]
            picks.append({k: v for k, v in entry.items() if v is not None})
        return picks

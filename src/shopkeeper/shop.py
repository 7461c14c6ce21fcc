"""`Shop`: the facade for people who embed shopkeeper, and `Shop.from_settings`, the one place that
builds the store and the services from settings (the API, the CLI and an embedding program all use it).

Deciding and experiments are built on first use: a command that only reads a profile or makes a key
never imports the recommenders (scikit-learn, implicit, scipy), which take seconds to load. Profiles,
ingestion and the privacy service are built on first use too, so that a command starts fast (issue 13,
item 10); a server builds all of them at start.
"""

from __future__ import annotations

import gc
import threading
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shopkeeper.privacy.consent import Purposes
from shopkeeper.settings import Settings
from shopkeeper.store import Store
from shopkeeper.store.engine import Timeouts
from shopkeeper.store.event_log import IngestResult
from shopkeeper.store.identity import Merge, PersonSummary

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from shopkeeper.channels.worker import OutboxWorker
    from shopkeeper.content.service import ContentService, Message, Prepared
    from shopkeeper.content.template import Template
    from shopkeeper.decide.log import Decision
    from shopkeeper.decide.pipeline import Decider
    from shopkeeper.events.ingest import Ingestor
    from shopkeeper.experiments.service import ExperimentService
    from shopkeeper.moments.engine import MomentEngine
    from shopkeeper.moments.service import MomentService
    from shopkeeper.personas.audiences import AudienceService
    from shopkeeper.personas.service import PersonaService
    from shopkeeper.privacy.service import Actor, PrivacyService
    from shopkeeper.profiles.service import Profile, ProfileService
    from shopkeeper.store.catalog import Item
    from shopkeeper.store.models import ModelVersion


PREPARED_SECONDS = 5.0  # a template saved while the worker sends is used from at most this much later


def open_store(settings: Settings, *, serving: bool = False, bulk: bool = False) -> Store:
    """Open (and migrate) the store the settings name. `serving`: a server's store, whose PostgreSQL
    round trips are bounded by the settings' timeouts, so that a request answers 503 instead of waiting.
    A command's long statements (an import, a training, a purge) are not bounded.

    `bulk`: a command that acknowledges once, at its end (an import): its SQLite commits skip the
    fsync, and it calls `Store.sync()` before it reports success (see there)."""
    timeouts = None
    if serving:
        timeouts = Timeouts(
            connect=settings.database_connect_timeout,
            statement=settings.database_statement_timeout,
            pool=settings.database_pool_timeout,
        )
    return Store.open(
        settings.database_url,
        sqlite_synchronous="NORMAL" if bulk else settings.sqlite_synchronous,
        key_cache_seconds=settings.key_cache_seconds,
        timeouts=timeouts,
    )


class Shop:
    """A shop: its event log, its people, their rights, and its decisions.

    >>> shop = Shop.open("sqlite:///shop.db")
    >>> shop.track(user_id="17850", event="Order Completed", properties={"revenue": 15.3})
    """

    def __init__(
        self, store: Store, settings: Settings, *, owns_store: bool = True, serving: bool = False
    ) -> None:
        self.store = store
        self.settings = settings
        self.owns_store = owns_store  # close() closes the store too
        self._serving = serving
        self.purposes = Purposes(settings.consent_purposes, settings.consent_default)
        self._building = threading.RLock()
        self._profiles: ProfileService | None = None
        self._ingestor: Ingestor | None = None
        self._privacy: PrivacyService | None = None
        self._decider: Decider | None = None
        self._experiments: ExperimentService | None = None
        self._content: ContentService | None = None
        self._moments: MomentService | None = None
        self._personas: PersonaService | None = None
        self._audiences: AudienceService | None = None
        self._prepared_cache: dict[str, tuple[float, Prepared]] = {}
        self._items_cache: dict[str, tuple[float, Item | None]] = {}
        self._link_secret: bytes | None = None
        if serving:  # a server builds everything at start, before it freezes its heap; a command on first use
            self.privacy  # noqa: B018 (and with it the ingestor)
            self.decider  # noqa: B018 (and with it the models)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, store: Store | None = None, serving: bool = False
    ) -> Shop:
        """Build the shop and every service from `settings`. It opens (and migrates) the store unless one
        is given; a given store stays its owner's to close.

        `serving`: for a server process. Its store's round trips are bounded by the settings' timeouts,
        the decision pipeline is built at once, and once decisions for a new model are prepared the
        collector stops walking them (`gc.freeze`).
        """
        settings = settings or Settings()
        if store is None:
            return cls(open_store(settings, serving=serving), settings, serving=serving)
        return cls(store, settings, owns_store=False, serving=serving)

    @classmethod
    def open(cls, url: str | None = None, *, settings: Settings | None = None) -> Shop:
        """Open (creating and migrating if needed) the shop at `url`, or at the configured database."""
        return cls.from_settings((settings or Settings()).with_database(url))

    @property
    def profiles(self) -> ProfileService:
        """People's profiles: their traits, resolved from what they said, did and what was guessed."""
        if self._profiles is not None:
            return self._profiles
        with self._building:
            if self._profiles is None:
                from shopkeeper.profiles.service import ProfileService  # noqa: PLC0415 (on first use)

                self._profiles = ProfileService(self.store)
            return self._profiles

    @property
    def ingestor(self) -> Ingestor:
        """Stores events: the Segment spec's messages, checked and appended to the log."""
        if self._ingestor is not None:
            return self._ingestor
        with self._building:
            if self._ingestor is None:
                from shopkeeper.events.ingest import Ingestor  # noqa: PLC0415 (on first use: issue 13, item 10)
                from shopkeeper.privacy.consent import consent_recorder  # noqa: PLC0415

                self._ingestor = Ingestor(
                    self.store,
                    record_consent=consent_recorder(self.purposes),
                    max_message_bytes=self.settings.max_message_bytes,
                )
            return self._ingestor

    @property
    def privacy(self) -> PrivacyService:
        """A person's rights: preferences, consent, explanations (and, with `privacy.rights`, export and
        erasure)."""
        if self._privacy is not None:
            return self._privacy
        with self._building:
            if self._privacy is None:
                from shopkeeper.privacy.service import PrivacyService  # noqa: PLC0415 (on first use)

                self._privacy = PrivacyService(
                    self.store,
                    self.profiles,
                    self.ingestor,
                    self.purposes,
                    on_change=self._forget,
                    settle=self.close_decisions,  # an export or erasure first stores earlier decisions
                )
            return self._privacy

    @property
    def experiments(self) -> ExperimentService:
        """A/B tests, bandits and the universal holdout (its share and salt from the settings)."""
        with self._building:
            if self._experiments is None:
                from shopkeeper.experiments.service import (  # noqa: PLC0415 (numpy, scipy: on first use)
                    ExperimentService,
                    holdout_from,
                )

                holdout = holdout_from(self.settings.holdout_share, self.settings.holdout_salt)
                self._experiments = ExperimentService(
                    self.store, self.profiles, holdout=holdout, targeting=self.audiences
                )
            return self._experiments

    @property
    def personas(self) -> PersonaService:
        """Personas: the few groups that cover most customers, and each customer's."""
        with self._building:
            if self._personas is None:
                from shopkeeper.personas.service import PersonaService  # noqa: PLC0415 (scikit-learn: on use)

                self._personas = PersonaService(
                    self.store,
                    small_shop=self.settings.personas_small_shop,
                    refresh=self.profiles.builder.refresh_dirty,
                )
            return self._personas

    @property
    def audiences(self) -> AudienceService:
        """Saved audiences, their reach and the reach guard; targeting for experiments, moments, decide."""
        with self._building:
            if self._audiences is None:
                from shopkeeper.experiments.service import holdout_from  # noqa: PLC0415
                from shopkeeper.personas.audiences import AudienceService  # noqa: PLC0415

                holdout = holdout_from(self.settings.holdout_share, self.settings.holdout_salt)
                self._audiences = AudienceService(
                    self.store,
                    self.purposes,
                    holdout,
                    warn_share=self.settings.audience_warn_share,
                    refresh=self.profiles.builder.refresh_dirty,
                )
            return self._audiences

    @property
    def decider(self) -> Decider:
        """The decision pipeline, built on first use (it loads the recommenders)."""
        if self._decider is not None:
            return self._decider
        with self._building:
            if self._decider is None:
                from shopkeeper.decide.pipeline import Decider  # noqa: PLC0415 (the recommenders: on first use)
                from shopkeeper.decide.placements import placements_from  # noqa: PLC0415
                from shopkeeper.recommend import load_model  # noqa: PLC0415

                self._decider = Decider(
                    self.store,
                    self.profiles,
                    load_model,
                    placements=placements_from(self.settings.placements_json),
                    purposes=self.purposes,
                    warm_people=self.settings.warm_people,
                    experiments=self.experiments,
                    on_prepared=_freeze_heap if self._serving else None,
                )
            return self._decider

    @property
    def content(self) -> ContentService:
        """Templates, and messages made from them with every merge field guarded."""
        if self._content is not None:
            return self._content
        with self._building:
            if self._content is None:
                from shopkeeper.content.sensitive import DEFAULT_SENSITIVE, Sensitive  # noqa: PLC0415
                from shopkeeper.content.service import ContentService  # noqa: PLC0415 (Jinja2: on first use)

                sensitive = Sensitive(self.settings.sensitive_categories or DEFAULT_SENSITIVE)
                self._content = ContentService(
                    self.store,
                    self.profiles,
                    self.purposes,
                    sensitive=sensitive,
                    pick=self._picks,
                    link=self._preferences_url,
                    shop_name=self.settings.shop_name,
                )
            return self._content

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

    def render(
        self,
        template: str | Template | dict[str, Any],
        person: str,
        context: dict[str, Any] | None = None,
        *,
        variant: str | None = None,
    ) -> Message:
        """`template` (a saved template's name, or a template as JSON) for the person known by `person`,
        every merge field guarded. `context`: the moment's `item`, `items` and `moment`; without `items`,
        decide's picks for the channel are shown (and logged as an exposure). A message that cannot be
        made well is not made: `aborted` says why."""
        return self.content.render(template, person, context, variant=variant)

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

    def __enter__(self) -> Shop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close_decisions(self) -> None:
        """Wait until every decision made so far is stored (they are written in the background)."""
        if self._decider is not None:
            self._decider.log.flush()

    def close(self) -> None:
        """Stop preparing decisions, store the waiting ones, and close the store if this shop opened it."""
        if self._decider is not None:
            self._decider.close()
            self._decider.log.flush()
        if self.owns_store:
            self.store.close()

    def ingest(self, messages: list[dict[str, Any]]) -> IngestResult:
        """Store raw Segment-spec messages (each with its `type`), as /v1/batch does."""
        return self.ingestor.ingest(messages)

    def track(
        self,
        event: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        properties: dict[str, Any] | None = None,
        **fields: Any,
    ) -> IngestResult:
        return self._one("track", user_id, anonymous_id, event=event, properties=properties or {}, **fields)

    def identify(
        self,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        traits: dict[str, Any] | None = None,
        **fields: Any,
    ) -> IngestResult:
        return self._one("identify", user_id, anonymous_id, traits=traits or {}, **fields)

    def page(
        self,
        name: str | None = None,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        properties: dict[str, Any] | None = None,
        **fields: Any,
    ) -> IngestResult:
        return self._one("page", user_id, anonymous_id, name=name, properties=properties or {}, **fields)

    def screen(
        self,
        name: str | None = None,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        properties: dict[str, Any] | None = None,
        **fields: Any,
    ) -> IngestResult:
        return self._one("screen", user_id, anonymous_id, name=name, properties=properties or {}, **fields)

    def group(
        self,
        group_id: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        traits: dict[str, Any] | None = None,
        **fields: Any,
    ) -> IngestResult:
        return self._one("group", user_id, anonymous_id, groupId=group_id, traits=traits or {}, **fields)

    def alias(self, previous_id: str, user_id: str, **fields: Any) -> IngestResult:
        """Say that `previous_id` and `user_id` are one person: the one way to merge two known users."""
        return self._one("alias", user_id, None, previousId=previous_id, **fields)

    def person(self, external_id: str) -> PersonSummary:
        """What is known about the person behind any of their ids. Raises NotFound."""
        return self.store.person_summary(external_id)

    def merges(self) -> list[Merge]:
        return self.store.identities.merges()

    def profile(self, external_id: str) -> Profile:
        """The person's resolved traits, each with its source, evidence and age. Raises NotFound."""
        return self.profiles.get(external_id)

    def train(self) -> ModelVersion:
        """Fit the default model on the whole event log and publish it as a new version."""
        from shopkeeper.recommend import train_default  # noqa: PLC0415 (the recommenders: on first use)
        from shopkeeper.training import train  # noqa: PLC0415

        published = train(self.store, train_default)
        if self._decider is not None:
            self._decider.refresh()
        return published

    def decide(
        self,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        placement: str = "web",
        n: int | None = None,
        context: dict[str, Any] | None = None,
    ) -> Decision:
        """What to show this person in this placement, with reasons; logged as an exposure."""
        return self.decider.decide(
            user_id=user_id, anonymous_id=anonymous_id, placement=placement, n=n, context=context
        )

    def _deciding(self) -> Decider:
        return self.decider

    def _forget(self, person_ids: list[int]) -> None:
        if self._decider is not None:
            self._decider.forget(person_ids)

    def _erased(self, person_ids: list[int]) -> None:
        if self._decider is not None:
            self._decider.erased(person_ids)

    # ---- a person's rights, acting as the shop (the CLI's and an embedding program's view) ----------

    def state_preferences(self, external_id: str, preferences: dict[str, Any]) -> dict[str, Any]:
        """Set stated traits (they beat any observed or guessed value). Returns the person's profile."""
        return self.privacy.state_preferences(external_id, preferences, self.privacy_actor)

    def set_consent(self, external_id: str, changes: dict[str, bool]) -> dict[str, Any]:
        """Record consent per purpose to the ledger. Returns the choices now and their history."""
        return self.privacy.set_consent(external_id, changes, self.privacy_actor)

    @property
    def privacy_actor(self) -> Actor:
        """The shop itself, acting in process (the CLI, an embedding program)."""
        from shopkeeper.privacy.service import Actor  # noqa: PLC0415 (loaded with the privacy service)

        return Actor("cli", "the shop (in process)")

    def explain(self, external_id: str) -> dict[str, Any]:
        return self.privacy.explain(external_id, self.privacy_actor)

    def export(self, external_id: str) -> dict[str, Any]:
        """Everything about a person, as JSON, with a readable summary."""
        from shopkeeper.privacy import rights  # noqa: PLC0415 (on first use)

        return rights.export(self.privacy, self.profiles, self.store, external_id, self.privacy_actor)

    def erase(self, external_id: str) -> dict[str, Any]:
        """Erase the person everywhere. Raises NotFound for an unknown id."""
        from shopkeeper.privacy import rights  # noqa: PLC0415 (on first use)

        return rights.erase(self.privacy, self.store, external_id, self.privacy_actor, forget=self._erased)

    def _one(self, type_: str, user_id: str | None, anonymous_id: str | None, **fields: Any) -> IngestResult:
        message: dict[str, Any] = {"type": type_, **{k: v for k, v in fields.items() if v is not None}}
        if user_id is not None:
            message["userId"] = user_id
        if anonymous_id is not None:
            message["anonymousId"] = anonymous_id
        for key in ("timestamp", "sentAt"):
            if isinstance(message.get(key), datetime):
                message[key] = message[key].isoformat()
        return self.ingestor.ingest([message], where="")


def _freeze_heap() -> None:
    """Once decisions are prepared, keep the kept people out of the full garbage collections too, as
    start-up objects are (`gc.freeze`): walking them would stall every request for tens of ms."""
    gc.collect()
    gc.freeze()

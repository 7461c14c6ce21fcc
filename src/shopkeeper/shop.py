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
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shopkeeper.privacy.consent import Purposes
from shopkeeper.settings import Settings
from shopkeeper.shop_outreach import Outreach
from shopkeeper.store import Store
from shopkeeper.store.engine import Timeouts
from shopkeeper.store.event_log import IngestResult
from shopkeeper.store.identity import Merge, PersonSummary

if TYPE_CHECKING:
    from shopkeeper.content.service import ContentService, Message, Prepared
    from shopkeeper.content.template import Template
    from shopkeeper.decide.log import Decision
    from shopkeeper.decide.pipeline import Decider
    from shopkeeper.events.ingest import Ingestor
    from shopkeeper.experiments.service import ExperimentService
    from shopkeeper.moments.service import MomentService
    from shopkeeper.personas.audiences import AudienceService
    from shopkeeper.personas.service import PersonaService
    from shopkeeper.privacy.service import Actor, PrivacyService
    from shopkeeper.profiles.service import Profile, ProfileService
    from shopkeeper.store.catalog import Item
    from shopkeeper.store.models import ModelVersion


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


class Shop(Outreach):
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

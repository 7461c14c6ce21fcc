"""`Shop`: the one facade for people who embed shopkeeper in their own Python process."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shopkeeper.decide.log import Decision
from shopkeeper.decide.pipeline import Decider
from shopkeeper.events.ingest import Ingestor
from shopkeeper.experiments.service import ExperimentService, holdout_from
from shopkeeper.privacy import rights
from shopkeeper.privacy.consent import Purposes
from shopkeeper.privacy.service import Actor, PrivacyService
from shopkeeper.profiles.service import Profile, ProfileService
from shopkeeper.recommend import load_model, train_default
from shopkeeper.settings import Settings
from shopkeeper.store import Store
from shopkeeper.store.event_log import IngestResult
from shopkeeper.store.identity import Merge, PersonSummary
from shopkeeper.store.models import ModelVersion
from shopkeeper.training import train as train_bundle

SHOP = Actor("cli", "the shop (in process)")


class Shop:
    """A shop: its event log, its people and (in later versions) its decisions.

    >>> shop = Shop.open("sqlite:///shop.db")
    >>> shop.track(user_id="17850", event="Order Completed", properties={"revenue": 15.3})
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.purposes = Purposes(settings.consent_purposes, settings.consent_default)
        self._ingestor = Ingestor(store, max_message_bytes=settings.max_message_bytes, purposes=self.purposes)
        self.profiles = ProfileService(store)
        self._decider: Decider | None = None
        self.privacy = PrivacyService(
            store,
            self.profiles,
            self._ingestor,
            self.purposes,
            on_change=self._forget,
            settle=self.close_decisions,
        )

    @classmethod
    def open(cls, url: str | None = None, *, settings: Settings | None = None) -> Shop:
        """Open (creating and migrating if needed) the shop at `url`, or at the configured database."""
        settings = (settings or Settings()).with_database(url)
        store = Store.open(
            settings.database_url,
            sqlite_synchronous=settings.sqlite_synchronous,
            key_cache_seconds=settings.key_cache_seconds,
        )
        return cls(store, settings)

    def __enter__(self) -> Shop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close_decisions(self) -> None:
        """Wait until every decision made so far is stored (they are written in the background)."""
        if self._decider is not None:
            self._decider.log.flush()

    def close(self) -> None:
        if self._decider is not None:
            self._decider.close()
            self._decider.log.flush()
        self.store.close()

    def ingest(self, messages: list[dict[str, Any]]) -> IngestResult:
        """Store raw Segment-spec messages (each with its `type`), as /v1/batch does."""
        return self._ingestor.ingest(messages)

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
        published = train_bundle(self.store, train_default)
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
        return self._deciding().decide(
            user_id=user_id, anonymous_id=anonymous_id, placement=placement, n=n, context=context
        )

    def _deciding(self) -> Decider:
        if self._decider is None:
            self._decider = Decider(
                self.store,
                self.profiles,
                load_model,
                placements=self.settings.placements(),
                purposes=self.purposes,
                warm_people=self.settings.warm_people,
                experiments=ExperimentService(
                    self.store,
                    self.profiles,
                    holdout=holdout_from(self.settings.holdout_share, self.settings.holdout_salt),
                ),
            )
        return self._decider

    def _forget(self, person_ids: list[int]) -> None:
        if self._decider is not None:
            self._decider.forget(person_ids)

    def _erased(self, person_ids: list[int]) -> None:
        if self._decider is not None:
            self._decider.erased(person_ids)

    # ---- a person's rights, acting as the shop (the CLI's and an embedding program's view) ----------

    def state_preferences(self, external_id: str, preferences: dict[str, Any]) -> dict[str, Any]:
        """Set stated traits (they beat any observed or guessed value). Returns the person's profile."""
        return self.privacy.state_preferences(external_id, preferences, SHOP)

    def set_consent(self, external_id: str, changes: dict[str, bool]) -> dict[str, Any]:
        """Record consent per purpose to the ledger. Returns the choices now and their history."""
        return self.privacy.set_consent(external_id, changes, SHOP)

    @property
    def privacy_actor(self) -> Actor:
        return SHOP

    def explain(self, external_id: str) -> dict[str, Any]:
        return self.privacy.explain(external_id, SHOP)

    def export(self, external_id: str) -> dict[str, Any]:
        """Everything about a person, as JSON, with a readable summary."""
        return rights.export(self.privacy, self.profiles, self.store, external_id, SHOP)

    def erase(self, external_id: str) -> dict[str, Any]:
        """Erase the person everywhere. Raises NotFound for an unknown id."""
        return rights.erase(self.privacy, self.store, external_id, SHOP, forget=self._erased)

    def _one(self, type_: str, user_id: str | None, anonymous_id: str | None, **fields: Any) -> IngestResult:
        message: dict[str, Any] = {"type": type_, **{k: v for k, v in fields.items() if v is not None}}
        if user_id is not None:
            message["userId"] = user_id
        if anonymous_id is not None:
            message["anonymousId"] = anonymous_id
        for key in ("timestamp", "sentAt"):
            if isinstance(message.get(key), datetime):
                message[key] = message[key].isoformat()
        return self._ingestor.ingest([message], where="")

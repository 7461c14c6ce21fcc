"""What the app holds for its lifetime: settings, the store and the ingestor."""

from __future__ import annotations

from dataclasses import dataclass

from shopkeeper.decide import Decider
from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.service import PrivacyService
from shopkeeper.profiles.service import ProfileService
from shopkeeper.settings import Settings
from shopkeeper.store import Store


@dataclass
class AppState:
    settings: Settings
    store: Store
    ingestor: Ingestor
    owns_store: bool
    profiles: ProfileService
    decider: Decider
    privacy: PrivacyService
    secret: bytes  # signs person links

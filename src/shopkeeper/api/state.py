"""What the app holds for its lifetime: settings, the store and the ingestor."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from shopkeeper.decide.pipeline import Decider
from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.service import PrivacyService
from shopkeeper.profiles.service import ProfileService
from shopkeeper.settings import Settings
from shopkeeper.store import Store

DECIDING_THREADS = 2  # one computes while the other waits on the database


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
    # decide's own small pool: a decision is a millisecond of Python; spread over the general pool's 40
    # threads, a burst of them time-slices the GIL and every one of them waits for all the others
    deciding: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(DECIDING_THREADS, thread_name_prefix="shopkeeper-decide")
    )

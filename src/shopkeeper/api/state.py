"""What the app holds for its lifetime: the shop (settings, store, services) and what only HTTP needs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from starlette.requests import Request

from shopkeeper.decide.pipeline import Decider
from shopkeeper.events.ingest import Ingestor
from shopkeeper.privacy.service import PrivacyService
from shopkeeper.profiles.service import ProfileService
from shopkeeper.settings import Settings
from shopkeeper.shop import Shop
from shopkeeper.store import Store

DECIDING_THREADS = 2  # one computes while the other waits on the database


@dataclass
class AppState:
    shop: Shop  # built by Shop.from_settings, as the CLI's
    secret: bytes  # signs person links
    # decide's own small pool: a decision is a millisecond of Python; spread over the general pool's 40
    # threads, a burst of them time-slices the GIL and every one of them waits for all the others
    deciding: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(DECIDING_THREADS, thread_name_prefix="shopkeeper-decide")
    )

    @property
    def settings(self) -> Settings:
        return self.shop.settings

    @property
    def store(self) -> Store:
        return self.shop.store

    @property
    def ingestor(self) -> Ingestor:
        return self.shop.ingestor

    @property
    def profiles(self) -> ProfileService:
        return self.shop.profiles

    @property
    def decider(self) -> Decider:
        return self.shop.decider

    @property
    def privacy(self) -> PrivacyService:
        return self.shop.privacy


def app_state(request: Request) -> AppState:
    """What the app serving this request holds."""
    state: AppState = request.app.state.shopkeeper
    return state

"""shopkeeper: a self-hosted personalization engine for small and mid-size shops."""

from shopkeeper.decide.log import DecidedItem, Decision
from shopkeeper.decide.reasons import Reason
from shopkeeper.errors import (
    AuthenticationError,
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ShopkeeperError,
    StoreError,
)
from shopkeeper.settings import Settings
from shopkeeper.shop import Shop
from shopkeeper.store.event_log import IngestResult
from shopkeeper.store.identity import Identity, Merge, PersonSummary
from shopkeeper.store.keys import ApiKey

__all__ = [
    "ApiKey",
    "AuthenticationError",
    "Conflict",
    "DecidedItem",
    "Decision",
    "Identity",
    "IngestResult",
    "InvalidInput",
    "Merge",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "PersonSummary",
    "Reason",
    "Settings",
    "Shop",
    "ShopkeeperError",
    "StoreError",
]

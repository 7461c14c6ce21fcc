"""shopkeeper: a self-hosted personalization engine for small and mid-size shops."""

from shopkeeper.decisions import DecidedItem, Decision, Reason
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
from shopkeeper.records import ApiKey, Identity, IngestResult, Merge, PersonSummary
from shopkeeper.settings import Settings
from shopkeeper.shop import Shop

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

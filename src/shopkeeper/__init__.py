"""shopkeeper: a self-hosted personalization engine for small and mid-size shops.

The public names load on first use (PEP 562), so that `import shopkeeper` (and with it every `shopkeeper`
command) does not pay for the store, the decision log and their imports before it needs them.
"""

# Aliased with a leading underscore: every public name here is in `__all__` (tests/test_public_api.py).
import importlib as _importlib
import typing as _typing

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

if _typing.TYPE_CHECKING:
    from shopkeeper.decide.log import DecidedItem, Decision
    from shopkeeper.decide.reasons import Reason
    from shopkeeper.settings import Settings
    from shopkeeper.shop import Shop
    from shopkeeper.store.event_log import IngestResult
    from shopkeeper.store.identity import Identity, Merge, PersonSummary
    from shopkeeper.store.keys import ApiKey

# Each lazily loaded public name, and the module that defines it.
_LAZY = {
    "ApiKey": "shopkeeper.store.keys",
    "DecidedItem": "shopkeeper.decide.log",
    "Decision": "shopkeeper.decide.log",
    "Identity": "shopkeeper.store.identity",
    "IngestResult": "shopkeeper.store.event_log",
    "Merge": "shopkeeper.store.identity",
    "PersonSummary": "shopkeeper.store.identity",
    "Reason": "shopkeeper.decide.reasons",
    "Settings": "shopkeeper.settings",
    "Shop": "shopkeeper.shop",
}

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


def __getattr__(name: str) -> object:
    """Import a public name's module on first use, and keep the name here so that the next use is plain."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

"""The slow figures the pages show, through the dashboard's snapshots (`web.snapshots`): an experiment's
report, every audience's size, and an audience's reach. Each is kept under what it is computed from,
besides the events (`definitions`): the saved audiences, the personas and every experiment's state. So a
change to any of those, made anywhere (the dashboard, the API, the CLI), shows at once, while a task
claimed in the inbox leaves every kept figure as it is.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Request

from shopkeeper.experiments import HOLDOUT
from shopkeeper.shop import Shop
from shopkeeper.web.core import Dashboard, dashboard_of
from shopkeeper.web.snapshots import Snapshot

log = logging.getLogger(__name__)


def wants_fresh(request: Request) -> bool:
    """The page's "compute again now" link adds `fresh=1`."""
    return request.query_params.get("fresh") == "1"


Figure = tuple[tuple[Any, ...], Callable[[], Any]]  # its key (under the definitions), and how to compute it


def report(request: Request, name: str) -> Snapshot:
    """An experiment's (or the holdout's) report and its sequential view: `report_over_time`."""
    return _snap(request, *_report(dashboard_of(request).shop, name))


def audience_sizes(request: Request) -> Snapshot:
    """Every saved audience with its size (`AudienceService.list`)."""
    return _snap(request, *_sizes(dashboard_of(request).shop))


def _report(shop: Shop, name: str) -> Figure:
    return ("report", name), lambda: shop.experiments.report_over_time(name)


def _sizes(shop: Shop) -> Figure:
    return ("sizes",), shop.audiences.list


def warm(board: Dashboard) -> threading.Thread | None:
    """Compute the overview's figures (the holdout's report, the audiences' sizes) in the background as
    the server starts, so that its first view does not wait for them; as the model is loaded."""
    if board.settings.dashboard_snapshot_seconds <= 0:
        return None

    def run() -> None:
        try:
            now = definitions(board.shop)
            for key, compute in (_report(board.shop, HOLDOUT), _sizes(board.shop)):
                board.snapshots.get((now, *key), compute)
        except Exception as error:  # a store closed meanwhile, or down: the pages compute them when asked
            log.warning("the dashboard's figures could not be computed at start: %s", type(error).__name__)

    thread = threading.Thread(target=run, name="shopkeeper-figures", daemon=True)
    thread.start()
    return thread


def base(request: Request) -> Snapshot:
    """What every audience's reach is measured against (people known, active, buying; revenue): one
    figure of the whole shop, kept once for all audiences."""
    shop = dashboard_of(request).shop
    return _snap(request, ("base",), shop.audiences.base, shop_wide=True)


def saved(request: Request, name: str, where: Any, description: str | None) -> tuple[dict[str, Any], bool]:
    """Save an audience (`AudienceService.put`), measured against the kept base, and keep its reach for
    the page the marketer is sent to next."""
    shop = dashboard_of(request).shop
    started = time.monotonic()
    found, created = shop.audiences.put(name, where, description, base=base(request).value)
    dashboard_of(request).snapshots.keep(
        (definitions(shop), "reach", name), found, time.monotonic() - started
    )
    return found, created


def reach(request: Request, name: str) -> Snapshot:
    """A saved audience as `AudienceService.show` gives it: its row, condition and reach, measured
    against the shop-wide base (people known, active, buying; revenue), which is kept too, once for all
    audiences. NotFound (a 404 page) or InvalidInput (a malformed name: 400) when it is computed."""
    shop = dashboard_of(request).shop
    return _snap(request, ("reach", name), lambda: shop.audiences.show(name, base=base(request).value))


def oldest(*snapshots: Snapshot) -> Snapshot:
    """The one computed longest ago: what a page's "as of" names."""
    return min(snapshots, key=lambda s: s.taken)


def definitions(shop: Any) -> str:
    """A digest of what the figures are computed from besides the events: each saved audience (its
    condition), each persona (a run or a rename), and each experiment's state. Three small reads."""
    audiences = [(a.name, a.condition, a.updated_at) for a in shop.audiences.saved.list()]
    personas = [(p.persona_id, p.run_id, p.updated_at) for p in shop.store.personas.all()]
    experiments = [
        (e.name, e.status, e.stopped_at, e.weights, e.audience) for e in shop.store.experiments.list()
    ]
    text = orjson.dumps([audiences, personas, experiments], default=str, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()


def _snap(request: Request, key: tuple[Any, ...], compute: Any, *, shop_wide: bool = False) -> Snapshot:
    """The kept figure under `key` and the definitions (`shop_wide`: a figure of the whole shop, which
    no definition changes)."""
    board = dashboard_of(request)
    if not shop_wide:
        state = request.state
        if not hasattr(state, "definitions"):  # once a request, however many figures its page shows
            state.definitions = definitions(board.shop)
        key = (state.definitions, *key)
    return board.snapshots.get(key, compute, fresh=wants_fresh(request))

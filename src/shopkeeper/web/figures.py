"""The slow figures the pages show, through the dashboard's snapshots (`web.snapshots`): an experiment's
report, every audience's size, and an audience's reach. Each is keyed by what it is computed from (the
saved conditions), so that a changed audience is never shown with an old count.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from shopkeeper.personas.audiences import check_name
from shopkeeper.web.core import dashboard_of
from shopkeeper.web.snapshots import Snapshot


def wants_fresh(request: Request) -> bool:
    """The page's "compute again now" link adds `fresh=1`."""
    return request.query_params.get("fresh") == "1"


def report(request: Request, name: str) -> Snapshot:
    """An experiment's (or the holdout's) report and its sequential view: `report_over_time`."""
    shop = dashboard_of(request).shop
    return _snap(request, ("report", name), lambda: shop.experiments.report_over_time(name))


def audience_sizes(request: Request) -> Snapshot:
    """Every saved audience with its size (`AudienceService.list`)."""
    shop = dashboard_of(request).shop
    saved = tuple((row.name, _text(row.condition)) for row in shop.audiences.saved.list())
    return _snap(request, ("sizes", saved), shop.audiences.list)


def reach(request: Request, name: str) -> Snapshot:
    """A saved audience as `AudienceService.show` gives it: its row, condition and reach, measured
    against the shop-wide base (people known, active, buying; revenue), which is kept too, once for all
    audiences."""
    shop = dashboard_of(request).shop
    row = shop.audiences.saved.get(check_name(name))  # NotFound: a 404 page; a malformed name: 400

    def compute() -> Any:
        return shop.audiences.show(name, base=_snap(request, ("base",), shop.audiences.base).value)

    return _snap(request, ("reach", name, _text(row.condition)), compute)


def oldest(*snapshots: Snapshot) -> Snapshot:
    """The one computed longest ago: what a page's "as of" names."""
    return min(snapshots, key=lambda s: s.taken)


def _snap(request: Request, key: Any, compute: Any) -> Snapshot:
    return dashboard_of(request).snapshots.get(key, compute, fresh=wants_fresh(request))


def _text(condition: Any) -> str:
    return orjson.dumps(condition, option=orjson.OPT_SORT_KEYS).decode()

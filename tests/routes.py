"""Every route an app serves, as `METHOD /path`, through included routers and mounts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any


def routes_of(routes: list[Any], prefix: str = "") -> Iterator[str]:
    """`METHOD /path` for every route, those left out of the OpenAPI document included, through included
    routers and mounts. Path converters are dropped: `{person_ref:id}` is `{person_ref}`."""
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI >= 0.16x keeps included routers whole
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from routes_of(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif getattr(route, "methods", None):
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", prefix + route.path)
            yield from (f"{method} {path}" for method in sorted(route.methods - {"HEAD"}))
        elif getattr(route, "routes", None):  # a Mount
            yield from routes_of(route.routes, prefix + route.path)

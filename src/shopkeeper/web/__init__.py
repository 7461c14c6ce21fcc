"""The dashboard: server-rendered pages at `/dashboard` for the shop's owner, marketers and staff.

Pages are Jinja2 templates rendered on the server, with htmx for partial updates and uPlot for charts, both
vendored into `web/static/vendor/` (pinned and attributed there; `scripts/vendor-web-assets` fetches them
from npm). Nothing loads from another origin, and a strict Content-Security-Policy says so. Every form works
without JavaScript. `mount` adds the pages to the API's app; the pages reach the shop only through `Shop`.
"""

from __future__ import annotations

from shopkeeper.web.core import error_page
from shopkeeper.web.figures import warm
from shopkeeper.web.site import mount

__all__ = ["error_page", "mount", "warm"]

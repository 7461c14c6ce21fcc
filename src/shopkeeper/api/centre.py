"""The customer-facing preference centre: one static page that talks to the people API with a person's token.

The token travels in the URL fragment (`/preferences#token=...`): browsers never send a fragment to the
server, so it lands in no log and no Referer header. The page, its script and its style sheet ship inside
the package (`api/static/centre/`) and load nothing from elsewhere; a strict Content-Security-Policy says so.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from shopkeeper.errors import NotFound
from shopkeeper.web.core import CONTENT_SECURITY_POLICY as DASHBOARD_POLICY
from shopkeeper.web.core import SECURITY_HEADERS as DASHBOARD_HEADERS

router = APIRouter(tags=["preference centre"])

# Name -> media type: the only files served. Anything else is a 404, so no path ever reaches the disk.
STATIC_FILES: dict[str, str] = {
    "centre.js": "text/javascript; charset=utf-8",
    "words.js": "text/javascript; charset=utf-8",
    "centre.css": "text/css; charset=utf-8",
}

# The dashboard's policy, but this page posts no form: its script calls the API.
CONTENT_SECURITY_POLICY = DASHBOARD_POLICY.replace("form-action 'self'", "form-action 'none'")
SECURITY_HEADERS: dict[str, str] = {
    **DASHBOARD_HEADERS,
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
}


@cache
def _read(name: str) -> bytes:
    return files("shopkeeper.api").joinpath("static", "centre", name).read_bytes()


@router.get(
    "/preferences",
    summary="The preference centre page (open it with the link from `shopkeeper people link`)",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}, "description": "The page"}},
)
async def preference_centre() -> Response:
    """One HTML page; the person's token is in the URL fragment, which the server never sees."""
    return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@router.get("/preferences/static/{name}", include_in_schema=False)
async def preference_centre_static(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise NotFound(f"no file {name!r} in the preference centre", field="name")
    return Response(_read(name), media_type=media_type, headers=SECURITY_HEADERS)

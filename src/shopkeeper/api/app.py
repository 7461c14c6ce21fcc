"""The ASGI application factory. Never a module-level app: settings come in, the app comes out."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shopkeeper.api import (
    centre,
    decide,
    experiments,
    items,
    moments,
    people,
    personas,
    privacy,
    templates,
    tracking,
)
from shopkeeper.api.guards import BodyDeadline, UnexpectedErrors
from shopkeeper.api.limits import RateLimits, limits_from
from shopkeeper.api.logs import install_log_redaction
from shopkeeper.api.openapi import finish_openapi
from shopkeeper.api.schemas import ErrorBody, HealthOut, ReadyOut, ok
from shopkeeper.api.server import configure_header_timeout
from shopkeeper.api.state import AppState
from shopkeeper.channels.worker import run
from shopkeeper.decide.placements import placements_from
from shopkeeper.errors import ShopkeeperError, StoreUnavailable
from shopkeeper.privacy.tokens import signing_secret
from shopkeeper.settings import Settings
from shopkeeper.shop import Shop
from shopkeeper.store import Store
from shopkeeper.store.deadline import unavailable_from
from shopkeeper.web import error_page
from shopkeeper.web import mount as mount_dashboard
from shopkeeper.web import warm as warm_figures

log = logging.getLogger("shopkeeper.api")


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    """Build the app. It opens (and migrates) the store unless one is given, and closes what it opened."""
    settings = settings or Settings()
    install_log_redaction()
    shop = Shop.from_settings(settings, store=store, serving=True)
    state = AppState(shop, signing_secret(shop.store, settings))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.warm_people > 0:
            # Load the newest model now, not on the first decision, so preparing starts at once.
            threading.Thread(target=shop.decider.bundle, name="shopkeeper-load", daemon=True).start()
        warming = warm_figures(board)  # the dashboard overview's slow figures, likewise
        stop = threading.Event()
        moments = worker = None
        if settings.serve_worker:
            # Built here, so that a bad SMTP or webhook setting stops the start, said plainly.
            worker = shop.worker()
            moments = threading.Thread(
                target=run,
                args=(shop.moments.engine, worker),
                kwargs={"stop": stop.is_set},
                name="shopkeeper-moments",
                daemon=True,
            )
            moments.start()
        yield
        stop.set()
        if moments is not None and worker is not None:
            moments.join(timeout=settings.smtp_timeout * 3)
            if not moments.is_alive():
                worker.close()  # its SMTP connection; a thread still sending closes its own at exit
        state.deciding.shutdown(wait=True)
        if warming is not None:
            warming.join(timeout=10)  # before the store it reads is closed
        shop.close()  # stores the waiting decisions; closes the store only if it opened it

    app = FastAPI(
        title="shopkeeper",
        version=_version(),
        summary="A self-hosted personalization engine for small and mid-size shops.",
        lifespan=lifespan,
        redirect_slashes=False,  # ids may end in "/": never redirect one person's URL to another's
    )
    app.state.shopkeeper = state
    app.add_middleware(RateLimits, limits=limits_from(settings))
    app.include_router(tracking.router)
    # Longer paths under /v1/people/ first: a person's id may hold "/", so `/v1/people/{id}` would match them.
    app.include_router(moments.router)  # /wishes, and DELETE .../wishes/{id} before the erasure's DELETE
    app.include_router(privacy.router)  # before people
    app.include_router(people.router)
    app.include_router(items.router)
    app.include_router(decide.router)
    app.include_router(experiments.router)
    app.include_router(personas.router)
    app.include_router(templates.router)
    app.include_router(centre.router)
    board = mount_dashboard(app, shop, settings)  # /dashboard: the pages, for the shop's own people
    _add_health(app, state)
    _add_error_handlers(app)
    app.add_middleware(BodyDeadline, seconds=settings.body_timeout)
    app.add_middleware(UnexpectedErrors)  # the outermost of ours: it answers whatever the rest raise
    finish_openapi(
        app, purposes=list(shop.purposes.names), placements=sorted(placements_from(settings.placements_json))
    )
    return app


def app_from_env() -> FastAPI:
    """For `uvicorn --factory shopkeeper.api.app:app_from_env` (what `serve --workers N` runs)."""
    settings = Settings()
    configure_header_timeout(settings)
    app = create_app(settings)
    gc.collect()
    gc.freeze()  # start-up objects live as long as the worker: keep them out of full collections
    return app


def _add_health(app: FastAPI, state: AppState) -> None:
    @app.get(
        "/healthz",
        tags=["health"],
        summary="The process is up",
        response_model=None,
        responses=ok(HealthOut, "It is up"),
    )
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="The database answers",
        responses={
            **ok(ReadyOut, "Ready: the database answers"),
            503: {"model": ErrorBody, "description": "The database does not answer"},
        },
    )
    async def readyz() -> JSONResponse:
        try:
            await run_in_threadpool(state.store.ping)
        except ShopkeeperError as exc:
            # The driver's words (host, port, why) are for the operator's log, never for the caller.
            log.warning("not ready: %s", exc.message)
            unavailable = StoreUnavailable("the database does not answer; retry later")
            return JSONResponse(
                unavailable.to_json(), status_code=503, headers={"Retry-After": str(unavailable.retry_after)}
            )
        return JSONResponse(
            {
                "status": "ready",
                "database": state.store.backend,
                # this process's model version, and the version whose decisions it has prepared
                "model_version": state.decider.version,
                "prepared_version": state.decider.warmed,
            }
        )


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route fully answers on this request's path (each one tried), sorted."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in app.router.routes
        )
    ]


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ShopkeeperError)
    async def on_shopkeeper_error(_: Request, exc: ShopkeeperError) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="shopkeeper"'} if exc.status == 401 else None
        if exc.status == 503:
            headers = {"Retry-After": str(StoreUnavailable.retry_after)}
        if exc.status == 408:
            headers = {"Connection": "close"}
        return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)

    @app.exception_handler(SQLAlchemyError)
    @app.exception_handler(OSError)
    async def on_store_failure(request: Request, exc: Exception) -> JSONResponse:
        # An outage, a timeout or a full disk is a 503 the client retries; anything else is unexpected.
        unavailable = unavailable_from(exc)
        if unavailable is None:
            raise exc
        route = getattr(request.scope.get("route"), "path", "?")
        log.warning("store unavailable (%s) on %s %s", type(exc).__name__, request.method, route)
        return await on_shopkeeper_error(request, unavailable)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or None
        message = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
        body = {"error": {"code": "invalid_input", "message": message, "field": field}}
        return JSONResponse(body, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = f"no route {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        if request.url.path.startswith("/dashboard/") and exc.status_code in (404, 405):
            # A person's browser, not a script: a page that says so, with the way back.
            words = (
                "there is no such page"
                if exc.status_code == 404
                else f"this page does not take {request.method}"
            )
            return await run_in_threadpool(error_page, request, exc.status_code, words)
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # Starlette names the methods of the first route that matched the path; name them all.
            allowed = _allowed_methods(app, request)
            if allowed:
                headers = {**(headers or {}), "Allow": ", ".join(allowed)}
                message = f"{request.method} is not allowed here: use {' or '.join(allowed)}"
        return JSONResponse(
            {"error": {"code": code, "message": message, "field": None}},
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(DataError)
    async def on_data_error(request: Request, exc: DataError) -> JSONResponse:
        # A value the database refuses (a safety net: input validation should have caught it).
        route = getattr(request.scope.get("route"), "path", "?")
        log.warning("database refused a value on %s %s", request.method, route)
        body = {
            "error": {"code": "invalid_input", "message": "a value the database cannot store", "field": None}
        }
        return JSONResponse(body, status_code=400)


def _version() -> str:
    try:
        return version("shopkeeper")
    except PackageNotFoundError:
        return "0.0.0"

"""`shopkeeper serve`: run the HTTP API."""

from __future__ import annotations

import gc
import os
from typing import TYPE_CHECKING, Annotated

import typer

from shopkeeper.cli._common import DbOption, console, safe_url, settings_for
from shopkeeper.cli._running import recorded, server_url
from shopkeeper.errors import InvalidInput

if TYPE_CHECKING:
    from shopkeeper.settings import Settings

WORKER_START_SECONDS = 60


def serve(
    db: DbOption = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Interface to listen on (default: 127.0.0.1)", show_default=False),
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default: 8000)", show_default=False)
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes; one per core is a good start.")
    ] = 1,
) -> None:
    """Serve the tracking and shop APIs (OpenAPI at /openapi.json, docs at /docs)."""
    settings = settings_for(db)
    host = host or settings.host
    port = port or settings.port
    if workers > 1 and settings.database_url.startswith("sqlite") and ":memory:" in settings.database_url:
        raise InvalidInput(
            "an in-memory SQLite database cannot be shared by several workers", field="--workers"
        )
    console.print(f"shopkeeper on http://{host}:{port}  (database {safe_url(settings.database_url)})")
    console.print(f"The dashboard: {server_url(host, port)}/dashboard", markup=False)
    if workers > 1:
        import uvicorn  # noqa: PLC0415 (the server's modules load only to serve)

        from shopkeeper.api.server import uvicorn_options  # noqa: PLC0415

        os.environ["SHOPKEEPER_DATABASE_URL"] = settings.database_url
        with recorded(settings.database_url, server_url(host, port)):
            uvicorn.run(
                "shopkeeper.api.app:app_from_env",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                **uvicorn_options(settings),
                # A worker loads numpy, scipy and the model before it answers uvicorn's health check; the
                # default 5 s is too short on a busy 2-core machine, and uvicorn then kills it as dead.
                timeout_worker_healthcheck=WORKER_START_SECONDS,
            )
        return
    run_server(settings, host, port)


def run_server(settings: Settings, host: str, port: int) -> None:
    """Serve one worker until interrupted."""
    import uvicorn  # noqa: PLC0415 (the server's modules load only to serve)

    from shopkeeper.api.app import create_app  # noqa: PLC0415
    from shopkeeper.api.server import uvicorn_options  # noqa: PLC0415

    app = create_app(settings)
    # Everything loaded so far lives as long as the process: keep it out of the collector's full
    # passes, which otherwise pause a busy server for up to ~100 ms.
    gc.collect()
    gc.freeze()
    if not app.state.shopkeeper.store.keys.list():
        console.print("No keys yet. Create one with: shopkeeper keys create --kind write")
    if not app.state.dashboard.accounts.list():
        console.print(
            "No dashboard users yet. Make the first with: shopkeeper users create EMAIL --role owner"
        )
    with recorded(settings.database_url, server_url(host, port)):
        uvicorn.run(app, host=host, port=port, **uvicorn_options(settings))

"""The FastAPI application factory: one place that wires the routers to the services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pathlib import Path
from typing import Literal

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from services.api import audit, health, networks, observability, partnerships, problems, projections
from services.api.deps import Services
from services.db import open_application
from services.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        database_url = settings.require_database_url()
        pool = ConnectionPool(
            database_url, min_size=1, max_size=8, open=True,
            kwargs={"autocommit": True, "row_factory": dict_row},
        )
        app = open_application(database_url, settings.db_schema)
        api.state.services = Services(settings=settings, app=app, pool=pool)
        try:
            yield
        finally:
            app.close()
            pool.close()

    api = FastAPI(
        title="Verkosto",
        version="1",
        summary="Event-sourced partnerships and networks: record what happened, ask what was known.",
        lifespan=lifespan,
    )
    problems.install(api)
    observability.install(api)
    api.include_router(health.router)
    api.include_router(partnerships.router)
    api.include_router(networks.router)
    api.include_router(projections.router)
    api.include_router(audit.router)

    static = Path(__file__).parent.parent / "static"
    page = (static / "page.html").read_text()  # one shell for every page; the script renders it

    @api.get("/dashboard", include_in_schema=False)
    def dashboard() -> RedirectResponse:
        return RedirectResponse("/dashboard/portfolio.html")

    @api.get("/dashboard/{name}.html", include_in_schema=False)
    def dashboard_page(name: Literal["portfolio", "lifecycle", "partnership", "networks"]) -> HTMLResponse:
        return HTMLResponse(page.replace("{page}", name))

    # Script and style ship inside the package: dashboards work offline.
    api.mount("/dashboard", StaticFiles(directory=static), name="dashboard")
    return api

"""The FastAPI application factory: one place that wires the routers to the services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services import composition
from services.api import (
    attention,
    audit,
    calendar,
    conditional,
    contract_doc,
    dashboard,
    directory,
    docs,
    graph,
    health,
    imports,
    limits,
    networks,
    observability,
    openapi,
    organisation,
    outage,
    partnerships,
    problems,
    projections,
    security,
)
from services.api.deps import Services
from services.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        pool = composition.read_pool(settings)
        app = outage.LazyApplication(lambda: composition.application(settings))
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
        docs_url=None,  # served by services/api/docs.py: FastAPI's own page loads a CDN
        redoc_url=None,
    )
    problems.install(api)
    outage.install(api)
    observability.install(api)
    limits.install(api, settings)
    openapi.install(api)
    conditional.install(api)  # ETag and 304 on the projection reads (services/api/conditional.py)
    api.include_router(health.router)
    api.include_router(contract_doc.router)  # /asyncapi.json, public like /openapi.json
    api.include_router(directory.router)  # before partnerships: /v1/partnerships/similar is no id
    api.include_router(partnerships.router)
    api.include_router(networks.router)
    api.include_router(networks.partnership_router)  # GET /v1/partnerships/{id}/networks
    api.include_router(organisation.router)
    # A read that names its moment is answered 304 before any work if nothing changed.
    api.include_router(projections.router, dependencies=[conditional.UnchangedSince])
    api.include_router(graph.router)  # /v1/graph and its measures per quarter
    api.include_router(audit.router)
    api.include_router(attention.router)  # /v1/attention, and /v1/people it is asked about
    api.include_router(imports.router)  # POST /v1/imports: partnerships from a CSV file
    api.include_router(calendar.router)  # POST /v1/imports/calendar: meetings as contacts (ICS)

    dashboard.install(api)  # sign-in, pages and their reads, then the static files
    docs.install(api, settings)  # /docs from packaged files (no CDN), unless disabled
    security.install(api)  # security headers on every response; no token in the access log
    return api

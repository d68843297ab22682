"""GET /metrics (Prometheus text format) and request latency, measured per route."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest

from services.metrics import Health, HealthCollector, failed, read_health


def install(api: FastAPI) -> None:
    registry = CollectorRegistry()
    latency = Histogram(
        "verkosto_http_request_seconds",
        "HTTP request latency",
        ["method", "route", "status"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    )

    def health() -> Health:
        # Never raises: a scrape answers whatever state the database is in, with the
        # figures it could not read as `verkosto_health_up{check=...} 0`.
        try:
            services = api.state.services
            with services.pool.connection(timeout=5) as conn:
                return read_health(conn, services.settings.db_schema)
        except Exception as error:
            return failed("database", error)

    registry.register(HealthCollector(health))

    @api.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        # The route's template, never the raw path: ids would explode the label space.
        template = getattr(route, "path", "unmatched")
        latency.labels(request.method, template, str(response.status_code)).observe(time.perf_counter() - started)
        return response

    @api.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

"""/asyncapi.json: the Kafka contract (contract/asyncapi.py), public like /openapi.json.

Like /openapi.json it is left out of the OpenAPI document (it describes Kafka, not HTTP)
and needs no token: it says what an integrator may send, nothing recorded.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from contract.asyncapi import Topics, document
from services.api.deps import ServicesDep
from services.settings import Settings

router = APIRouter()
DEFAULT_KAFKA_HOST = "localhost:9092"


def kafka_host(settings: Settings) -> str:
    """The first bootstrap server as host:port (AsyncAPI names one host, no scheme)."""
    first = (settings.kafka_bootstrap or "").split(",")[0].strip()
    return first.rsplit("://", 1)[-1] or DEFAULT_KAFKA_HOST


def topics(settings: Settings) -> Topics:
    return Topics(commands=settings.commands_topic, dlq=settings.dlq_topic, events=settings.events_topic)


@cache
def _document(names: Topics, host: str) -> dict[str, Any]:
    # Generated once per process: the contract changes only with the code.
    return document(names, host)


def document_for(settings: Settings) -> dict[str, Any]:
    return _document(topics(settings), kafka_host(settings))


@router.get("/asyncapi.json", include_in_schema=False)
def asyncapi(services: ServicesDep) -> JSONResponse:
    return JSONResponse(document_for(services.settings))

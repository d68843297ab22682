"""Turning one HTTP command into one outcome, the same way for every aggregate."""

from __future__ import annotations

import logging
from uuid import UUID

from fastapi import Response
from pydantic import BaseModel

from contract.commands import Command
from services.api.deps import Services
from services.api.problems import Problem, refused
from services.application import Rejected, Request
from services.auth import Principal

log = logging.getLogger(__name__)


class Receipt(BaseModel):
    id: UUID
    version: int
    position: int
    duplicate: bool


def record(services: Services, principal: Principal, command: Command, response: Response) -> Receipt:
    (outcome,) = services.app.execute([Request(command, actor=principal.name, source="api")])
    context = {"command_id": command.command_id, "actor": principal.name}
    if isinstance(outcome, Rejected):
        log.info("refused %s", type(command).__name__, extra={**context, "code": outcome.code})
        raise refused(outcome.code, outcome.message, outcome.details)
    log.info("recorded %s", type(command).__name__, extra=context)
    # A repeated command id answers with the first result and records nothing new.
    response.status_code = 200 if outcome.duplicate else 201
    return Receipt(
        id=outcome.aggregate_id,
        version=outcome.version,
        position=outcome.position,
        duplicate=outcome.duplicate,
    )


def bind(command: Command, field: str, aggregate_id: UUID) -> Command:
    """Puts the path's id on the command; a different id in the body is a client error."""
    given = getattr(command, field)
    if given is not None and given != aggregate_id:
        raise Problem(
            422,
            "validation_failed",
            "The request is not valid",
            f"body.{field}: differs from the id in the path",
            field=f"body.{field}",
            errors=[{"field": f"body.{field}", "message": "differs from the id in the path", "type": "mismatch"}],
        )
    return command.model_copy(update={field: aggregate_id})

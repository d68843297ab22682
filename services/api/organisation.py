"""The organisation's commands, and what it has defined: the shared criteria catalogue,
the operating model and the candidate networks it considers joining, each as it stood at
any date (valid time)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from contract.commands import body_of
from domain.network_candidates import readiness, unmet
from domain.operating_model import model_in_force
from domain.organisation import ORGANISATION_ID, Organisation
from services.api.bitemporal import AsOf
from services.api.commands import Receipt, record
from services.api.deps import HistoryReader, ServicesDep, Writer

router = APIRouter(prefix="/v1/organisation", tags=["organisation"])
# Only definitions: the organisation is founded by its first command, never by a sender.
OrganisationEventBody = body_of(Organisation)


def load(services: ServicesDep) -> Organisation | None:
    """The organisation, or None before its first command."""
    found = services.app.load_many({ORGANISATION_ID}).get(ORGANISATION_ID)
    return found if isinstance(found, Organisation) else None


@router.post("/events", status_code=201)
def record_event(
    body: Annotated[OrganisationEventBody, Body()], principal: Writer, services: ServicesDep, response: Response
) -> Receipt:
    """Define the organisation's shared criteria or its operating model, consider a candidate
    network or decide on a network in the plan (discriminated by `type`)."""
    return record(services, principal, body, response)


@router.get("/criteria")
def get_criteria(_: HistoryReader, services: ServicesDep, as_of: AsOf = None) -> dict[str, Any]:
    """The criteria catalogue in force at `as_of` (default now) and its version, or null if none was."""
    at = as_of or datetime.now(UTC)  # read once here; the domain only ever gets explicit times
    organisation = load(services)
    in_force = organisation.catalogue_at(at) if organisation else None
    catalogue = None
    if in_force is not None:
        catalogue = {
            "version": in_force.version,
            "effective_from": in_force.effective_from,
            "criteria": [c.model_dump(mode="json") for c in in_force.catalogue.criteria],
        }
    return {"as_of": at, "catalogue": catalogue}


@router.get("/operating-model")
def get_operating_model(_: HistoryReader, services: ServicesDep, as_of: AsOf = None) -> dict[str, Any]:
    """The operating model in force at `as_of` (default now): its 16 cells; version 0 is the shipped default."""
    at = as_of or datetime.now(UTC)
    organisation = load(services)
    definitions = organisation.models if organisation else []
    version, model = model_in_force(definitions, at)
    effective_from = next((effective for effective, v, _ in definitions if v == version), None)
    return {
        "as_of": at,
        "version": version,
        "effective_from": effective_from,
        "cells": [cell.model_dump(mode="json") for cell in model.cells],
    }


@router.get("/candidates")
def get_candidates(_: HistoryReader, services: ServicesDep, as_of: AsOf = None) -> dict[str, Any]:
    """The candidate networks as considered at `as_of` (default now): purposes, what entry
    requires of us and our readiness (met 1, partly met 0.5, missing 0, averaged), with the
    decision in force then, readiest first. The network plan ranks them by purpose fit too."""
    at = as_of or datetime.now(UTC)
    organisation = load(services)
    considered = organisation.candidates_at(at) if organisation else {}
    decided = organisation.decisions_at(at) if organisation else {}
    listed = []
    for candidate_id, c in considered.items():
        missing, partly = unmet(c.requirements)
        decision = decided.get(candidate_id)
        listed.append(
            {
                "candidate_id": candidate_id,
                "name": c.name,
                "purposes": [p.value for p in c.purposes],
                "requirements": c.requirements.model_dump(mode="json"),
                "note": c.note,
                "considered_at": c.meta.occurred_at,
                "version": c.originator_version,
                "readiness": readiness(c.requirements),
                "missing": list(missing),
                "partly_met": list(partly),
                "decision": None
                if decision is None
                else {
                    "decision": decision.decision.value,
                    "rationale": decision.rationale,
                    "decider": decision.decider,
                    "actor": decision.meta.actor,
                    "decided_at": decision.meta.occurred_at,
                    "version": decision.originator_version,
                },
            }
        )
    listed.sort(key=lambda c: (-c["readiness"], c["name"].casefold(), str(c["candidate_id"])))
    return {"as_of": at, "candidates": listed}

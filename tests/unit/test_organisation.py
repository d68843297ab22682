"""The organisation: the shared criteria catalogue and the operating model, versioned as
events; evaluations scored against the catalogue, in the domain and through the
application (on the in-memory fake of its persistence port)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from contract.commands import any_command
from domain.criteria import CatalogueInForce, CriteriaCatalogue, Criterion, check_scores
from domain.errors import (
    CriteriaNotScored,
    InvalidCatalogue,
    InvalidOutcomeFactor,
    NothingChanged,
    OccurredInFuture,
    ScoredAndSkipped,
    TooManyCriteria,
    UnknownCriterion,
)
from domain.operating_model import DEFAULT_MODEL, CellPolicy
from domain.organisation import ORGANISATION_ID, Organisation
from domain.partnership import Partnership
from services.application import Accepted, Rejected, Request
from tests.unit.builders import T0, meta, opened
from tests.unit.fakes import memory_app

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
FIT, REACH = Criterion(name="fit", description="How well they fit our aims"), Criterion(name="reach", description="x")


def criteria(n: int) -> tuple[Criterion, ...]:
    return tuple(Criterion(name=f"c{i}", description=f"criterion {i}") for i in range(n))


def founded() -> Organisation:
    organisation = Organisation.found(meta(-500))
    organisation.collect_events()
    return organisation


def model_with(cadence: int) -> tuple[CellPolicy, ...]:
    return tuple(cell.model_copy(update={"cadence_days": cadence}) for cell in DEFAULT_MODEL.cells)


# The catalogue -----------------------------------------------------------------------


def test_seven_criteria_make_a_catalogue_and_an_eighth_is_refused_with_a_stable_code() -> None:
    assert len(CriteriaCatalogue.of(criteria(7)).criteria) == 7
    with pytest.raises(TooManyCriteria) as refused:
        founded().define_criteria(criteria(8), meta(1))
    assert (refused.value.code, refused.value.details) == ("too_many_criteria", {"limit": 7, "given": 8})


def test_a_catalogue_names_each_criterion_once_and_has_at_least_one() -> None:
    for bad in [(), (FIT, FIT.model_copy(update={"description": "again"}))]:
        with pytest.raises(InvalidCatalogue) as refused:
            CriteriaCatalogue.of(bad)
        assert refused.value.code == "invalid_catalogue"


@pytest.mark.parametrize(
    ("name", "description"),
    [("Fit", "d"), ("fit-ness", "d"), ("1fit", "d"), ("f" * 41, "d"), ("", "d"), ("fit", ""), ("fit", "d" * 401)],
)
def test_a_criterion_is_a_short_snake_name_with_a_description(name: str, description: str) -> None:
    with pytest.raises(ValidationError):
        Criterion(name=name, description=description)


def test_the_longest_names_and_descriptions_are_accepted_but_not_unstorable_text() -> None:
    assert Criterion(name="f" * 40, description="d" * 400).name == "f" * 40
    with pytest.raises(ValidationError):
        Criterion(name="fit", description="a\x00b")


# Scoring against it ------------------------------------------------------------------


def test_an_unknown_criterion_is_refused_naming_it_and_the_catalogue() -> None:
    with pytest.raises(UnknownCriterion) as refused:
        check_scores(CriteriaCatalogue.of((FIT, REACH)), {"fit": 1.0, "reach": 1.0, "vibes": 10.0}, {})
    assert refused.value.code == "unknown_criterion"
    assert refused.value.details == {"unknown": ["vibes"], "catalogue": ["fit", "reach"]}


@pytest.mark.parametrize(
    ("factors", "skipped", "error", "code"),
    [
        ({"fit": 1.0}, {}, CriteriaNotScored, "criteria_not_scored"),
        ({"fit": 1.0}, {"reach": "  "}, CriteriaNotScored, "criteria_not_scored"),
        ({"fit": 1.0, "reach": 1.0}, {"reach": "no data"}, ScoredAndSkipped, "scored_and_skipped"),
        ({}, {"fit": "new", "reach": "new"}, CriteriaNotScored, "criteria_not_scored"),
        ({"fit": 1.0}, {"vibes": "why not"}, UnknownCriterion, "unknown_criterion"),
    ],
)
def test_every_criterion_is_scored_or_skipped_with_a_reason(
    factors: dict[str, float], skipped: dict[str, str], error: type[Exception], code: str
) -> None:
    with pytest.raises(error) as refused:
        check_scores(CriteriaCatalogue.of((FIT, REACH)), factors, skipped)
    assert refused.value.code == code  # type: ignore[attr-defined]


def test_a_missing_criterion_is_named() -> None:
    with pytest.raises(CriteriaNotScored) as refused:
        check_scores(CriteriaCatalogue.of((FIT, REACH)), {"fit": 1.0}, {})
    assert refused.value.details["missing"] == ["reach"]


def test_an_evaluation_records_its_catalogue_version_and_what_it_skipped_and_why() -> None:
    in_force = CatalogueInForce(catalogue=CriteriaCatalogue.of((FIT, REACH)), version=2, effective_from=T0)
    p = opened()
    p.evaluate({"fit": 10.0}, meta(5), skipped={"reach": "no figures yet"}, catalogue=in_force)
    (event,) = p.collect_events()
    assert isinstance(event, Partnership.Evaluated)
    assert (event.catalogue_version, event.outcome, p.last_outcome) == (2, 10.0, 10.0)
    assert [(s.criterion, s.reason) for s in event.skipped] == [("reach", "no figures yet")]


def test_without_a_catalogue_factors_are_free_and_nothing_can_be_skipped() -> None:
    p = opened()
    p.evaluate({"anything": 10.0, "goes": 0.1}, meta(5))
    (event,) = p.collect_events()
    assert isinstance(event, Partnership.Evaluated)
    assert (event.catalogue_version, event.skipped) == (None, ())
    with pytest.raises(UnknownCriterion):
        p.evaluate({"fit": 1.0}, meta(6), skipped={"reach": "no data"})


def test_an_evaluation_stored_before_catalogues_existed_still_loads_as_pre_catalogue() -> None:
    stored = {
        "originator_id": str(uuid.uuid4()),
        "originator_version": 3,
        "timestamp": T0.isoformat(),
        "meta": {"occurred_at": T0.isoformat(), "recorded_at": T0.isoformat(), "actor": "a", "source": "api"},
        "factors": {"fit": 10.0},
        "outcome": 10.0,
        "note": None,
    }
    event = Partnership.Evaluated.model_validate(stored)
    assert (event.catalogue_version, event.skipped) == (None, ())


def test_outcome_factor_values_are_still_checked_against_a_catalogue() -> None:
    in_force = CatalogueInForce(catalogue=CriteriaCatalogue.of((FIT,)), version=2, effective_from=T0)
    with pytest.raises(InvalidOutcomeFactor):
        opened().evaluate({"fit": 3.0}, meta(5), catalogue=in_force)


# Definitions in valid time -----------------------------------------------------------


def test_the_operating_model_must_be_a_whole_grid() -> None:
    with pytest.raises(ValidationError, match="missing"):
        founded().define_operating_model(DEFAULT_MODEL.cells[:15], meta(1))
    with pytest.raises(ValidationError, match="once"):
        founded().define_operating_model((*DEFAULT_MODEL.cells[:15], DEFAULT_MODEL.cells[0]), meta(1))
    with pytest.raises(ValidationError):  # the contract refuses it at the door too
        any_command.validate_python({"type": "operating_model_defined", "cells": []})


def test_model_at_answers_by_valid_time_including_back_dated_definitions() -> None:
    o = founded()  # founded when first heard of, long after what it defines below
    o.define_operating_model(model_with(30), meta(100))  # version 2
    o.define_operating_model(model_with(60), meta(50))  # version 3, back-dated before it
    o.define_operating_model(model_with(90), meta(100))  # version 4, effective with version 2
    assert o.model_at(T0 + timedelta(days=10)) == (0, DEFAULT_MODEL)
    assert o.model_at(T0 + timedelta(days=50))[0] == 3
    assert o.model_at(T0 + timedelta(days=99))[1].cells[0].cadence_days == 60
    assert o.model_at(T0 + timedelta(days=100))[0] == 4  # of two effective at once, the later recorded


def test_catalogue_in_force_follows_valid_time() -> None:
    o = founded()
    o.define_criteria((FIT,), meta(100))  # version 2
    o.define_criteria((FIT, REACH), meta(50))  # version 3, back-dated
    assert o.catalogue_at(T0 + timedelta(days=10)) is None
    assert o.catalogue_at(T0 + timedelta(days=60)).version == 3  # type: ignore[union-attr]
    assert (o.catalogue_version, o.catalogue) == (2, CriteriaCatalogue.of((FIT,)))  # in force now


def test_defining_what_is_already_in_force_changes_nothing() -> None:
    o = founded()
    o.define_criteria((FIT, REACH), meta(1))
    with pytest.raises(NothingChanged):
        o.define_criteria((REACH, FIT), meta(2))  # order is presentation only
    with pytest.raises(NothingChanged):
        o.define_operating_model(DEFAULT_MODEL.cells, meta(2))  # the default is in force
    o.define_operating_model(tuple(reversed(model_with(30))), meta(3))
    with pytest.raises(NothingChanged):
        o.define_operating_model(model_with(30), meta(4))
    o.define_criteria((FIT, REACH), meta(-5))  # in force from earlier: that changes something
    assert o.version == 4  # founded, criteria, model, back-dated criteria


def test_definitions_may_be_back_dated_before_the_founding_but_not_into_the_future() -> None:
    o = founded()
    o.define_criteria((FIT,), meta(-10_000))
    with pytest.raises(OccurredInFuture):
        o.define_criteria((REACH,), meta(5000, recorded_days=1))


# Through the application -------------------------------------------------------------

PARTNER = {"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]}


def request(body: dict[str, Any]) -> Request:
    return Request(any_command.validate_python(body), actor="tester", source="api")


def define(*names: str, **extra: Any) -> Request:
    return request({"type": "criteria_defined", "criteria": [{"name": n, "description": n} for n in names], **extra})


def evaluate(pid: uuid.UUID, factors: dict[str, float], **extra: Any) -> Request:
    return request({"type": "evaluated", "partnership_id": str(pid), "factors": factors, **extra})


def open_partnership(pid: uuid.UUID) -> Request:
    return request(
        {
            "type": "partnership_opened",
            "partnership_id": str(pid),
            "partner": PARTNER,
            "owner_unit": "u",
            "steward": "s",
        },
    )


def test_the_first_organisation_command_founds_it_and_no_sender_can() -> None:
    app = memory_app(clock=lambda: NOW)
    (outcome,) = app.execute([define("fit", occurred_at="2020-01-01T00:00:00Z", command_id="k")])
    assert outcome == Accepted(ORGANISATION_ID, 2, 2)
    founding, defined = app.domain_events(ORGANISATION_ID)
    assert (type(founding), founding.meta.occurred_at, founding.meta.command_id) == (Organisation.Founded, NOW, None)
    assert (defined.meta.occurred_at.year, defined.meta.command_id) == (2020, "k")
    with pytest.raises(ValidationError):
        any_command.validate_python({"type": "organisation_founded"})
    (taken,) = app.execute([open_partnership(ORGANISATION_ID)])
    assert isinstance(taken, Rejected) and taken.code == "already_exists"


def test_a_refused_first_command_founds_nothing() -> None:
    app = memory_app()
    (outcome,) = app.execute([define(*[f"c{i}" for i in range(8)])])
    assert isinstance(outcome, Rejected) and outcome.code == "too_many_criteria"
    assert app.domain_events(ORGANISATION_ID) == []


def test_evaluations_are_scored_against_the_catalogue_the_batch_has_so_far() -> None:
    app = memory_app()
    pid = uuid.uuid4()
    outcomes = app.execute(
        [
            open_partnership(pid),
            evaluate(pid, {"free": 10.0}),  # before any catalogue: free, pre-catalogue
            define("fit", "reach"),
            evaluate(pid, {"free": 10.0}),
            evaluate(pid, {"fit": 10.0}, skipped={"reach": "no figures yet"}),
        ]
    )
    codes = [o.code if isinstance(o, Rejected) else "ok" for o in outcomes]
    assert codes == ["ok", "ok", "ok", "unknown_criterion", "ok"]
    unknown = outcomes[3]
    assert isinstance(unknown, Rejected) and unknown.details == {"unknown": ["free"], "catalogue": ["fit", "reach"]}
    history = app.history(pid, Partnership)
    assert [e["data"]["catalogue_version"] for e in history if e["type"] == "evaluated"] == [None, 2]
    assert history[-1]["data"]["skipped"] == [{"criterion": "reach", "reason": "no figures yet"}]
    (later,) = app.execute([evaluate(pid, {"fit": 1.0, "reach": 1.0})])  # a later batch loads it
    assert isinstance(later, Accepted)
    assert app.domain_events(pid)[-1].catalogue_version == 2


def test_a_sender_cannot_supply_the_catalogue() -> None:
    with pytest.raises(ValidationError, match="catalogue"):
        any_command.validate_python({"type": "evaluated", "factors": {"fit": 1.0}, "catalogue": {"version": 1}})

"""The operating model: for whom, what and how, per segment cell.

The source notes reject equal treatment: services differ by segment. Each of the 16
cells of the now × future importance grid says how often we expect contact, how many
hours of our effort a year the partnership is worth, and whether we maintain it (light
upkeep) or manage it (active leadership). Flags judge a partnership against its own cell.

The organisation defines a model as an event (``operating_model_defined``, see
``domain/organisation.py``) that applies from its date; until it has, ``DEFAULT_MODEL``
applies. ``docs/operating-model.md`` gives the reasoning behind every default.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, Strict

from domain.values import Importance, Value

DEFAULT_MODEL_VERSION = 0  # the model that applies before any was defined


class Mode(StrEnum):
    MAINTAIN = "maintain"  # light upkeep: keep in touch, answer, stay informed
    MANAGE = "manage"  # active leadership: plan together, invest, review


CadenceDays = Annotated[int, Strict(), Field(ge=7, le=1_095)]
BudgetHours = Annotated[float, Strict(), Field(ge=0, le=10_000, allow_inf_nan=False)]


class CellPolicy(Value):
    """What one segment cell gets from us."""

    now: Importance
    future: Importance
    cadence_days: CadenceDays  # the longest quiet spell before it is under-served
    yearly_effort_hours: BudgetHours  # our hours a year before it is over-served
    mode: Mode


def _whole_grid(cells: tuple[CellPolicy, ...]) -> tuple[CellPolicy, ...]:
    keys = [(c.now, c.future) for c in cells]
    if len(set(keys)) != len(keys):
        raise ValueError("each now × future cell must appear once")
    missing = [f"{n.value}/{f.value}" for n in Importance for f in Importance if (n, f) not in keys]
    if missing:
        raise ValueError(f"every one of the 16 cells needs a policy; missing: {', '.join(missing)}")
    return cells


Cells = Annotated[tuple[CellPolicy, ...], AfterValidator(_whole_grid)]


class OperatingModel(Value):
    cells: Cells

    def cell(self, now: Importance, future: Importance) -> CellPolicy:
        for policy in self.cells:
            if policy.now == now and policy.future == future:
                return policy
        raise KeyError((now, future))  # unreachable: the grid is whole


# The defaults, by importance: the more a partner matters (now or in future), the more
# often we should hear from them; the budget follows what they are worth now, plus half a
# step for where they are heading; we manage what matters in future and maintain the rest.
_CADENCE = {Importance.VERY_HIGH: 45, Importance.HIGH: 90, Importance.LOW: 180, Importance.VERY_LOW: 365}
_BUDGET = {Importance.VERY_HIGH: 200.0, Importance.HIGH: 100.0, Importance.LOW: 40.0, Importance.VERY_LOW: 10.0}


def _default_cell(now: Importance, future: Importance) -> CellPolicy:
    higher = now if now.rank >= future.rank else future
    budget = _BUDGET[now] + max(0.0, _BUDGET[future] - _BUDGET[now]) / 2
    manage = future.rank >= Importance.HIGH.rank and higher == Importance.VERY_HIGH
    return CellPolicy(
        now=now,
        future=future,
        cadence_days=_CADENCE[higher],
        yearly_effort_hours=budget,
        mode=Mode.MANAGE if manage else Mode.MAINTAIN,
    )


DEFAULT_MODEL = OperatingModel(cells=tuple(_default_cell(n, f) for n in Importance for f in Importance))
# A partnership not yet segmented gets the middle of the road: contact twice a year, a
# modest budget, upkeep only, until the steward places it.
UNSEGMENTED = CellPolicy(
    now=Importance.LOW, future=Importance.LOW, cadence_days=180, yearly_effort_hours=40.0, mode=Mode.MAINTAIN
)


def model_in_force(
    definitions: Sequence[tuple[datetime, int, OperatingModel]], at: datetime
) -> tuple[int, OperatingModel]:
    """(version, model) in force at ``at``: the latest definition effective by then (in
    valid time; of two effective at once, the later recorded), else the default."""
    best: tuple[datetime, int, OperatingModel] | None = None
    for effective, version, model in definitions:
        if effective <= at and (best is None or (effective, version) >= (best[0], best[1])):
            best = (effective, version, model)
    return (best[1], best[2]) if best is not None else (DEFAULT_MODEL_VERSION, DEFAULT_MODEL)

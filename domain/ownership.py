"""Ownership in valid time, the same for every aggregate that has owners: an owning unit
and its steward from a moment onwards (``tenures``), who owned it at a moment, and the
rule that a transfer must change who owns it then.

An aggregate mixes ``Owned`` in and keeps ``tenures`` in its state, set by its events'
``apply`` through ``with_tenure``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from domain.errors import NothingChanged
from domain.timeline import in_force_at
from domain.values import EventMeta, Tenure


def with_tenure(tenures: list[Tenure], owner_unit: str, steward: str, since: datetime) -> list[Tenure]:
    """The timeline with one more tenure, in valid time. Stable: of two transfers taking
    effect at the same moment, the later recorded wins."""
    tenure = Tenure(owner_unit=owner_unit, steward=steward, since=since)
    return sorted([*tenures, tenure], key=lambda t: t.since)


class Owned:
    if TYPE_CHECKING:  # the aggregate's own (its state, and its name in the contract)
        tenures: list[Tenure]
        kind: ClassVar[str]

    @property
    def owner_unit(self) -> str | None:
        return self.tenures[-1].owner_unit if self.tenures else None

    @property
    def steward(self) -> str | None:
        return self.tenures[-1].steward if self.tenures else None

    def owner_at(self, moment: datetime) -> Tenure | None:
        """Who owned it at ``moment`` (valid time), as far as we know now."""
        return in_force_at(self.tenures, moment, key=lambda tenure: tenure.since)

    def check_changes_owner(self, owner_unit: str, steward: str, meta: EventMeta) -> None:
        # A transfer may be back-dated: compare with whoever owned it at that moment.
        then = self.owner_at(meta.occurred_at)
        if then is not None and (owner_unit, steward) == (then.owner_unit, then.steward):
            raise NothingChanged(
                f"{steward} of {owner_unit} already owned this {self.kind} then",
                owner_unit=owner_unit,
                steward=steward,
            )

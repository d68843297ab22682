"""The organisation: what holds for all partnerships alike, versioned as events.

There is one organisation, under a well-known id. It holds the shared criteria catalogue
(``domain/criteria.py``) and the operating model (``domain/operating_model.py``), and its
network plan's own part: the candidate networks it considers joining and its decisions
per network (``domain/network_candidates.py``). Each is an event that applies from its
``occurred_at``, so history answers which catalogue, model, candidate or decision applied
at any date. Definitions may be back-dated freely (a model agreed last spring applies
from last spring), but not into the future.

Nobody opens the organisation: the application founds it on its first command
(``found``, no command of the contract), so its start is an implementation detail and
nothing is checked against it.

Declared like the partnership (see ``domain/partnership.py``): each event once, nested
here with its contract name, stored fields and state change; each command marked with
the event it records.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import Aggregate, check_not_in_future, records
from domain.criteria import CatalogueInForce, CriteriaCatalogue, Criterion
from domain.errors import NotACandidate, NothingChanged, NotOurNetwork
from domain.network import Network
from domain.network_candidates import Decision, EntryRequirements, Rationale, candidate_id_for
from domain.operating_model import CellPolicy, Cells, OperatingModel, model_in_force
from domain.values import EventMeta, FreeText, NetworkPurpose, PersonName, Purposes, StorableName, Text

ORGANISATION_ID = uuid5(NAMESPACE_URL, "verkosto:organisation")


class Organisation(Aggregate):
    kind: ClassVar[str] = "organisation"

    # Events ---------------------------------------------------------------------------

    class Founded(Aggregate.Created):
        type: ClassVar[str] = "organisation_founded"

        def apply(self, o: Organisation) -> None:
            o.started_at = self.meta.occurred_at
            o.catalogues = []
            o.catalogue = None
            o.catalogue_version = None
            o.models = []
            o.considerations = []
            o.decisions = []
            o.ended = False

    class CriteriaDefined(Aggregate.Event):
        """The shared criteria every evaluation scores, from `occurred_at` on (at most 7)."""

        type: ClassVar[str] = "criteria_defined"
        criteria: tuple[Criterion, ...]

        def apply(self, o: Organisation) -> None:
            # Not CriteriaCatalogue.of: a stored catalogue loads whatever today's limits.
            catalogue = CriteriaCatalogue(criteria=self.criteria)
            o.catalogues.append(
                CatalogueInForce(
                    catalogue=catalogue, version=self.originator_version, effective_from=self.meta.occurred_at
                )
            )
            latest = _latest(o.catalogues)
            o.catalogue = latest.catalogue if latest else None
            o.catalogue_version = latest.version if latest else None

    class OperatingModelDefined(Aggregate.Event):
        """What each of the 16 now × future segment cells gets from us, from `occurred_at` on."""

        type: ClassVar[str] = "operating_model_defined"
        cells: tuple[CellPolicy, ...]

        def apply(self, o: Organisation) -> None:
            # Unchecked, like a stored catalogue: the grid was whole when it was recorded.
            model = OperatingModel.model_construct(cells=self.cells)
            o.models.append((self.meta.occurred_at, self.originator_version, model))

    class NetworkConsidered(Aggregate.Event):
        """A network we might join: the purposes it would serve and what entry requires of
        us. Considering the same candidate again updates it from `occurred_at` on."""

        type: ClassVar[str] = "network_considered"
        candidate_id: UUID
        name: str
        purposes: tuple[NetworkPurpose, ...]
        requirements: EntryRequirements
        note: FreeText | None = None

        def apply(self, o: Organisation) -> None:
            o.considerations.append(self)

    class PlanDecided(Aggregate.Event):
        """The decision for one network in the plan (keep, activate, park, leave; join for a
        candidate), why and who decided; in force from `occurred_at` until the next one."""

        type: ClassVar[str] = "plan_decided"
        network_id: UUID
        decision: Decision
        rationale: FreeText
        decider: PersonName

        def apply(self, o: Organisation) -> None:
            o.decisions.append(self)

    if TYPE_CHECKING:  # the state, set by the events' apply (declared for the type checker only:
        # eventsourcing would turn class annotations into constructor fields)
        catalogues: list[CatalogueInForce]  # every definition, in recorded order
        # The catalogue in force from the latest effective date on (so, now), and the
        # version that defined it; None until one is defined.
        catalogue: CriteriaCatalogue | None
        catalogue_version: int | None
        models: list[tuple[datetime, int, OperatingModel]]  # (effective, version, model)
        # The events themselves: each says when it applies from (meta.occurred_at).
        considerations: list[Organisation.NetworkConsidered]
        decisions: list[Organisation.PlanDecided]

    def __init__(self) -> None:
        """Nothing to do: ``Founded.apply`` sets the state, when founded and on replay."""

    @property
    def catalogue_in_force(self) -> CatalogueInForce | None:
        """What evaluations are scored against now."""
        return _latest(self.catalogues)

    def catalogue_at(self, at: datetime) -> CatalogueInForce | None:
        """The catalogue in force at ``at`` (valid time), or None if none was by then."""
        return _latest([c for c in self.catalogues if c.effective_from <= at])

    def model_at(self, at: datetime) -> tuple[int, OperatingModel]:
        """(version, model) in force at ``at`` (valid time); version 0 is the default."""
        return model_in_force(self.models, at)

    def candidates_at(self, at: datetime) -> dict[UUID, Organisation.NetworkConsidered]:
        """Each candidate as last considered at ``at`` (valid time)."""
        return _in_force((e.candidate_id, e) for e in self.considerations if e.meta.occurred_at <= at)

    def decisions_at(self, at: datetime) -> dict[UUID, Organisation.PlanDecided]:
        """The decision in force at ``at`` for each network (or candidate) decided on by then."""
        return _in_force((e.network_id, e) for e in self.decisions if e.meta.occurred_at <= at)

    # Commands -------------------------------------------------------------------------

    @classmethod
    def found(cls, first: EventMeta) -> Organisation:
        """Founds the organisation under its well-known id, as the application does on the
        first organisation command (``first``'s meta): when we first heard of it, by the
        sender of that command. No sender ever founds it."""
        meta = first.model_copy(update={"occurred_at": first.recorded_at, "on_behalf_of": None, "command_id": None})
        return cls._create(cls.Founded, id=ORGANISATION_ID, meta=meta)  # type: ignore[no-any-return]

    @records(CriteriaDefined)
    def define_criteria(
        self, criteria: tuple[Criterion, ...], meta: EventMeta, expected_version: int | None = None
    ) -> None:
        self.check_can_define(meta, expected_version)
        catalogue = CriteriaCatalogue.of(criteria)
        then = self.catalogue_at(meta.occurred_at)
        if then is not None and catalogue.same_as(then.catalogue):
            raise NothingChanged(
                f"these criteria are already the catalogue in force then (version {then.version})",
                version=then.version,
            )
        self.trigger_event(self.CriteriaDefined, criteria=catalogue.criteria, meta=meta)

    @records(OperatingModelDefined)
    def define_operating_model(self, cells: Cells, meta: EventMeta, expected_version: int | None = None) -> None:
        self.check_can_define(meta, expected_version)
        model = OperatingModel(cells=cells)  # the whole grid, each cell once
        version, then = self.model_at(meta.occurred_at)
        if set(model.cells) == set(then.cells):  # the cells' order means nothing
            raise NothingChanged(
                f"this is already the operating model in force then (version {version})", version=version
            )
        self.trigger_event(self.OperatingModelDefined, cells=model.cells, meta=meta)

    @records(NetworkConsidered)
    def consider_network(
        self,
        name: StorableName,
        purposes: Purposes,
        requirements: EntryRequirements,
        meta: EventMeta,
        candidate_id: UUID | None = None,  # default: derived from the name (candidate_id_for)
        note: Text | None = None,
        expected_version: int | None = None,
    ) -> None:
        self.check_can_define(meta, expected_version)
        candidate_id = candidate_id or candidate_id_for(name)
        distinct = tuple(sorted(set(purposes)))  # their order and repeats mean nothing
        then, same = self.candidates_at(meta.occurred_at).get(candidate_id), (name, distinct, requirements, note)
        if then is not None and (then.name, then.purposes, then.requirements, then.note) == same:
            raise NothingChanged(
                f"candidate {candidate_id} was already considered so then (version {then.originator_version})",
                version=then.originator_version,
                candidate_id=str(candidate_id),
            )
        self.trigger_event(
            self.NetworkConsidered,
            candidate_id=candidate_id,
            name=name,
            purposes=distinct,
            requirements=requirements,
            note=note,
            meta=meta,
        )

    @records(PlanDecided)
    def decide_plan(
        self,
        network_id: UUID,
        decision: Decision,
        rationale: Rationale,
        decider: StorableName,
        meta: EventMeta,
        expected_version: int | None = None,
        *,
        network: Aggregate | None = None,  # supplied by the service: the network named, if any
    ) -> None:
        self.check_can_define(meta, expected_version)
        if decision == Decision.JOIN:
            self.check_candidate(network_id, network, meta)
        else:
            self.check_our_network(network_id, network, meta)
        then = self.decisions_at(meta.occurred_at).get(network_id)
        if then is not None and (then.decision, then.rationale, then.decider) == (decision, rationale, decider):
            raise NothingChanged(
                f"this was already the decision for {network_id} then (version {then.originator_version})",
                version=then.originator_version,
                network_id=str(network_id),
            )
        self.trigger_event(
            self.PlanDecided, network_id=network_id, decision=decision, rationale=rationale, decider=decider, meta=meta
        )

    # Rules ----------------------------------------------------------------------------

    def check_candidate(self, candidate_id: UUID, network: Aggregate | None, meta: EventMeta) -> None:
        """``join`` is decided for a candidate considered by then, and not for a network we
        were already in then (a candidate may be joined under its own id, and the decision
        to join recorded afterwards, back-dated)."""
        if candidate_id not in self.candidates_at(meta.occurred_at):
            raise NotACandidate(
                f"{candidate_id} was not a candidate network on {meta.occurred_at.isoformat()}: "
                "record network_considered first",
                network_id=str(candidate_id),
            )
        if isinstance(network, Network) and not network.ended and network.started_at <= meta.occurred_at:
            raise NotACandidate(f"we were already in network {candidate_id} then", network_id=str(candidate_id))

    def check_our_network(self, network_id: UUID, network: Aggregate | None, meta: EventMeta) -> None:
        """keep, activate, park and leave are decided for a network we had joined by then.
        One we have left since is not refused: the network keeps no date of leaving to
        compare with, and a decision recorded late (we decided, left, then wrote it down)
        is true history; the plan shows decisions on left networks as history."""
        if not isinstance(network, Network):
            hint = " (it is a candidate: decide join)" if network_id in self.candidates_at(meta.occurred_at) else ""
            raise NotOurNetwork(f"{network_id} is not a network we are in{hint}", network_id=str(network_id))
        network.check_not_before_start(meta)

    def check_can_define(self, meta: EventMeta, expected_version: int | None) -> None:
        # Not check_can_record: a definition may take effect before the founding, which
        # only marks when the system first heard of the organisation.
        self.check_version(expected_version)
        check_not_in_future(meta)
        self.check_not_ended()


def _in_force(items: Iterable[tuple[UUID, Any]]) -> dict[UUID, Any]:
    # Per id the latest effective; of two effective at once, the later recorded.
    latest: dict[UUID, Any] = {}
    for key, event in items:
        held = latest.get(key)
        if held is None or _when(event) > _when(held):
            latest[key] = event
    return latest


def _when(event: Any) -> tuple[datetime, int]:
    return event.meta.occurred_at, event.originator_version


def _latest(definitions: list[CatalogueInForce]) -> CatalogueInForce | None:
    # The latest effective; of two effective at once, the later recorded (as for models).
    return max(definitions, key=lambda c: (c.effective_from, c.version), default=None)


def supplied_by(organisation: Aggregate | None) -> dict[str, Any]:
    """What the organisation supplies to other aggregates' commands (``domain.base.SUPPLIED``),
    by parameter name: the criteria catalogue in force, or None while none is defined."""
    return {"catalogue": organisation.catalogue_in_force if isinstance(organisation, Organisation) else None}

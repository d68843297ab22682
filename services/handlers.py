"""Which aggregate method each contract command calls: explicit, readable at a glance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.network import Network
from domain.partnership import Partnership
from domain.values import EventMeta
from services import contract as c

Handler = Callable[[Any, Any, EventMeta], None]


def _log_contact(p: Partnership, cmd: c.LogContact, meta: EventMeta) -> None:
    p.log_contact(
        cmd.channel, cmd.direction, cmd.participants, meta,
        effort_minutes=cmd.effort_minutes, summary=cmd.summary,
        expected_version=cmd.expected_version,
    )


def _signal_interest(p: Partnership, cmd: c.SignalInterest, meta: EventMeta) -> None:
    p.signal_interest(
        cmd.direction, cmd.strength, meta, evidence=cmd.evidence,
        expected_version=cmd.expected_version,
    )


def _record_joint_activity(p: Partnership, cmd: c.RecordJointActivity, meta: EventMeta) -> None:
    p.record_joint_activity(
        cmd.kind, cmd.title, cmd.our_effort_hours, cmd.their_effort_hours, meta,
        outcome=cmd.outcome, expected_version=cmd.expected_version,
    )


def _evaluate(p: Partnership, cmd: c.Evaluate, meta: EventMeta) -> None:
    p.evaluate(dict(cmd.factors), meta, note=cmd.note, expected_version=cmd.expected_version)


def _segment(p: Partnership, cmd: c.Segment, meta: EventMeta) -> None:
    p.segment_as(
        cmd.now, cmd.future, meta, rationale=cmd.rationale, expected_version=cmd.expected_version
    )


def _transfer(p: Partnership, cmd: c.TransferOwnership, meta: EventMeta) -> None:
    p.transfer_ownership(
        cmd.owner_unit, cmd.steward, cmd.reason, meta, expected_version=cmd.expected_version
    )


def _change_stage(p: Partnership, cmd: c.ChangeStage, meta: EventMeta) -> None:
    p.change_stage(
        cmd.stage, cmd.reason, meta, note=cmd.note, expected_version=cmd.expected_version
    )


def _add_member(n: Network, cmd: c.AddMember, meta: EventMeta) -> None:
    n.add_member(cmd.partnership_id, meta, expected_version=cmd.expected_version)


def _remove_member(n: Network, cmd: c.RemoveMember, meta: EventMeta) -> None:
    n.remove_member(cmd.partnership_id, meta, expected_version=cmd.expected_version)


def _activate(n: Network, cmd: c.ActivateNetwork, meta: EventMeta) -> None:
    n.activate(cmd.need, meta, expected_version=cmd.expected_version)


def _park(n: Network, cmd: c.ParkNetwork, meta: EventMeta) -> None:
    n.park(meta, expected_version=cmd.expected_version)


def _log_contribution(n: Network, cmd: c.LogNetworkContribution, meta: EventMeta) -> None:
    n.log_contribution(
        cmd.our_effort_hours, meta, outcome=cmd.outcome, expected_version=cmd.expected_version
    )


def _evaluate_network(n: Network, cmd: c.EvaluateNetwork, meta: EventMeta) -> None:
    n.evaluate(dict(cmd.factors), meta, expected_version=cmd.expected_version)


def _leave(n: Network, cmd: c.LeaveNetwork, meta: EventMeta) -> None:
    n.leave(cmd.reason, meta, expected_version=cmd.expected_version)


def open_partnership(cmd: c.OpenPartnership, meta: EventMeta) -> Partnership:
    return Partnership.open(cmd.partner, cmd.owner_unit, cmd.steward, meta, id=cmd.partnership_id)


def join_network(cmd: c.JoinNetwork, meta: EventMeta) -> Network:
    return Network.join(
        cmd.name, cmd.purposes, cmd.role, cmd.activity, cmd.best_before, meta, id=cmd.network_id
    )


# Commands on an existing aggregate: (aggregate class, method to call).
HANDLERS: dict[type, tuple[type, Handler]] = {
    c.LogContact: (Partnership, _log_contact),
    c.SignalInterest: (Partnership, _signal_interest),
    c.RecordJointActivity: (Partnership, _record_joint_activity),
    c.Evaluate: (Partnership, _evaluate),
    c.Segment: (Partnership, _segment),
    c.TransferOwnership: (Partnership, _transfer),
    c.ChangeStage: (Partnership, _change_stage),
    c.AddMember: (Network, _add_member),
    c.RemoveMember: (Network, _remove_member),
    c.ActivateNetwork: (Network, _activate),
    c.ParkNetwork: (Network, _park),
    c.LogNetworkContribution: (Network, _log_contribution),
    c.EvaluateNetwork: (Network, _evaluate_network),
    c.LeaveNetwork: (Network, _leave),
}

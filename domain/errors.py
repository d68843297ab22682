"""A small hierarchy of domain errors; each has a stable ``code`` for the contract."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A command broke a rule of the domain; nothing was recorded."""

    code = "domain_rule"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class AggregateEnded(DomainError):
    code = "aggregate_ended"


class IllegalStageTransition(DomainError):
    code = "illegal_stage_transition"


class StageOutOfOrder(DomainError):
    code = "stage_out_of_order"


class InvalidOutcomeFactor(DomainError):
    code = "invalid_outcome_factor"


class OccurredBeforeStart(DomainError):
    code = "occurred_before_start"


class OccurredInFuture(DomainError):
    code = "occurred_in_future"


class NothingChanged(DomainError):
    code = "nothing_changed"


class MembershipError(DomainError):
    code = "membership"


class VersionConflict(DomainError):
    code = "version_conflict"


class CriteriaError(DomainError):
    """The shared criteria catalogue, or an evaluation against it, broke a rule."""

    code = "criteria"


class TooManyCriteria(CriteriaError):
    code = "too_many_criteria"


class InvalidCatalogue(CriteriaError):
    code = "invalid_catalogue"


class UnknownCriterion(CriteriaError):
    code = "unknown_criterion"


class CriteriaNotScored(CriteriaError):
    code = "criteria_not_scored"


class ScoredAndSkipped(CriteriaError):
    code = "scored_and_skipped"


class CorrectionError(DomainError):
    """A retraction or correction named an event it cannot retract or correct."""

    code = "correction"


class UnknownEvent(CorrectionError):
    code = "unknown_event"


class NotCorrectable(CorrectionError):
    code = "not_correctable"


class AlreadyRetracted(CorrectionError):
    code = "already_retracted"


class MergeError(DomainError):
    code = "merge"


class PlanDecisionError(DomainError):
    """A network plan decision named something it cannot be made for."""

    code = "plan_decision"


class NotACandidate(PlanDecisionError):
    """``join`` names a candidate network (``network_considered``), never one we are in."""

    code = "not_a_candidate"


class NotOurNetwork(PlanDecisionError):
    """keep, activate, park and leave name a network we are in, never a candidate."""

    code = "not_our_network"


class UnknownMember(MembershipError):
    """A network's member must be one of our partnerships."""

    code = "unknown_member"


class MemberEnded(MembershipError):
    """A partnership that had ended by then cannot join a network as a member."""

    code = "member_ended"


class NotAMember(MembershipError):
    """What names a member (a contribution, an activation) must name a current one."""

    code = "not_a_member"


class ActivationError(DomainError):
    code = "activation"


class NoOpenActivation(ActivationError):
    code = "no_open_activation"

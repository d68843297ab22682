"""The network-management method as a state machine.

Analyse, prioritise, then maintain or manage, wind down (the source's "palliative care"),
then ended. The source notes describe maintaining, managing and winding down as
continuous activities chosen per segment, not as a pipeline a partner must pass through,
so the machine only enforces what the method really orders:

- analysing leads only to prioritising: nobody skips the prioritisation;
- once prioritised, a partner may be maintained (light upkeep) or managed (active
  leadership), and may switch between the two as its segment changes;
- winding down can be decided from any stage after prioritising (prioritise, maintain,
  manage);
- only a wind-down ends, and ended is final: nothing moves out of it;
- stepping back to an earlier stage is re-evaluation and is allowed from every stage but
  ended;
- a partnership brought in from what the organisation already had (reason ``imported``)
  goes from analyse straight to the stage it was really at, but never to ended: its
  prioritising happened before Verkosto, and an ended one is not worth importing.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.errors import IllegalStageTransition, NothingChanged
from domain.values import Stage

ORDER = (
    Stage.ANALYSE,
    Stage.PRIORITISE,
    Stage.MAINTAIN,
    Stage.MANAGE,
    Stage.WIND_DOWN,
    Stage.ENDED,
)

# Moves onward from each stage; steps back to an earlier stage in ORDER come on top.
# Maintain and manage point at each other because they are alternatives, not steps.
_ONWARD: Mapping[Stage, frozenset[Stage]] = {
    Stage.ANALYSE: frozenset({Stage.PRIORITISE}),
    Stage.PRIORITISE: frozenset({Stage.MAINTAIN, Stage.MANAGE, Stage.WIND_DOWN}),
    Stage.MAINTAIN: frozenset({Stage.MANAGE, Stage.WIND_DOWN}),
    Stage.MANAGE: frozenset({Stage.MAINTAIN, Stage.WIND_DOWN}),
    Stage.WIND_DOWN: frozenset({Stage.ENDED}),
    Stage.ENDED: frozenset(),
}


def is_allowed(current: Stage, target: Stage) -> bool:
    if current == Stage.ENDED:
        return False  # an ended partnership is history, not a stage to re-evaluate
    steps_back = ORDER.index(target) < ORDER.index(current)
    return steps_back or target in _ONWARD[current]


# The reason of a stage change that places an imported partnership where it already was.
IMPORTED = "imported"


def check_transition(current: Stage, target: Stage, importing: bool = False) -> None:
    """``importing``: the first move of a partnership brought in with reason ``imported``."""
    if importing and current == Stage.ANALYSE and target not in (Stage.ANALYSE, Stage.ENDED):
        return
    if current == target:
        raise NothingChanged(f"the stage is already {current.value}", stage=current.value)
    if not is_allowed(current, target):
        allowed = [s.value for s in ORDER if s != current and is_allowed(current, s)]
        raise IllegalStageTransition(
            f"cannot move from {current.value} to {target.value}; allowed: {', '.join(allowed) or 'none'}",
            current=current.value,
            target=target.value,
            allowed=allowed,
        )

"""The network-management method as a state machine.

Analyse, prioritise, maintain, manage, wind down (the source's "palliative care"), then
ended. Moving forward goes one step at a time, so nobody skips the method; stepping back
to an earlier stage is re-evaluation and always allowed; winding down can be decided once
a partner has been prioritised; only a wind-down ends.
"""

from __future__ import annotations

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
_WIND_DOWN_FROM = frozenset({Stage.PRIORITISE, Stage.MAINTAIN, Stage.MANAGE})


def is_allowed(current: Stage, target: Stage) -> bool:
    if target == Stage.ENDED:
        return current == Stage.WIND_DOWN
    if target == Stage.WIND_DOWN:
        return current in _WIND_DOWN_FROM
    step = ORDER.index(target) - ORDER.index(current)
    return step == 1 or step < 0


def check_transition(current: Stage, target: Stage) -> None:
    if current == target:
        raise NothingChanged(f"the stage is already {current.value}", stage=current.value)
    if not is_allowed(current, target):
        allowed = [s.value for s in ORDER if s != current and is_allowed(current, s)]
        raise IllegalStageTransition(
            f"cannot move from {current.value} to {target.value}; allowed: {', '.join(allowed)}",
            current=current.value,
            target=target.value,
            allowed=allowed,
        )

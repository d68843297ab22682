"""What the lifecycle board's ``flag=`` filter asks PostgreSQL first: for each flag a
necessary condition (an ended partnership has none), so the candidates it returns include
every partnership with the flag; projections/queries/board.py then keeps those whose exact
flags (the domain's rules) include it. Where the exact rule sums floats in another order,
or rounds, the condition leaves a little slack.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from domain.lifecycle import LifecycleThresholds
from domain.operating_model import UNSEGMENTED, OperatingModel

SLACK = timedelta(seconds=1)

# The partnership's cell policy, looked up in the operating model passed as JSON.
_CELL = "(%(cells)s::jsonb -> (coalesce(x.segment_now, '?') || '/' || coalesce(x.segment_future, '?')))"
_JUDGED = "x.stage NOT IN ('ended', 'wind_down')"
_QUIET = (
    f"coalesce(x.last_contact_at, x.opened_at) < %(t)s - make_interval(days => ({_CELL}->>'cadence')::int) + %(slack)s"
)
_OUR_HOURS = (
    "(SELECT coalesce(sum(our_hours), 0) FROM {rm}.activities"
    " WHERE partnership_id = x.partnership_id AND at > %(window_from)s AND at <= %(t)s)"
)

PREFILTERS = {
    "under_served": f"{_JUDGED} AND {_QUIET}",
    "over_served": f"{_JUDGED} AND {_OUR_HOURS} >= greatest(%(min_hours)s, ({_CELL}->>'budget')::float8 - 1e-6)",
    "mode_mismatch": f"x.stage IN ('maintain', 'manage') AND x.segment_now IS NOT NULL AND x.stage <> {_CELL}->>'mode'",
    # The highest point by then bounds trust's peak; decay only lowers trust.
    "dormant_but_trusted": f"{_JUDGED} AND {_QUIET} AND EXISTS (SELECT 1 FROM {{trust}}.trust_points tp"
    " WHERE tp.partnership_id = x.partnership_id AND tp.at <= %(t)s AND tp.trust >= %(trusted_floor)s)",
    "needs_handover": "x.stage <> 'ended' AND x.left_at IS NOT NULL"
    " AND (x.last_contact_at IS NULL OR x.last_contact_at < x.left_at)",
    "steward_overloaded": "x.stage <> 'ended' AND x.steward_key = ANY(%(overloaded)s)",  # person keys
    # Rising needs two kinds of evidence of the last year; the exact rule reads them.
    "rising": f"{_JUDGED} AND x.segment_now IS DISTINCT FROM '++'",
    # domain.lifecycle.wind_down_flag over the same window: unfair beyond the most lenient
    # ratio, effort enough to judge efficiency, or (needing two outcomes that far apart)
    # an ambition mismatch.
    "wind_down_candidate": f"{_JUDGED} AND EXISTS (SELECT 1 FROM"
    " (SELECT coalesce(sum(our_hours), 0) AS o, coalesce(sum(their_hours), 0) AS th FROM {rm}.activities"
    "  WHERE partnership_id = x.partnership_id AND at > %(window_from)s AND at <= %(t)s) a,"
    " (SELECT count(*) AS n, min(outcome) AS lo, max(outcome) AS hi FROM {rm}.evaluations"
    "  WHERE partnership_id = x.partnership_id AND at > %(window_from)s AND at <= %(t)s) e"
    " WHERE (a.o + a.th >= %(min_hours)s AND (a.o >= %(unfair)s * a.th - 1e-6 OR a.th >= %(unfair)s * a.o - 1e-6))"
    " OR (a.o >= %(min_hours)s AND e.n >= 1)"
    " OR (e.n >= 2 AND (e.lo <= 0 OR e.hi >= e.lo * %(jump)s)))",
}


def cells_json(model: OperatingModel) -> str:
    """The model's cells keyed ``now/future`` (``?/?``: not yet segmented), for ``_CELL``."""
    policies = {f"{c.now.value}/{c.future.value}": c for c in model.cells}
    policies["?/?"] = UNSEGMENTED
    return json.dumps(
        {
            key: {"cadence": c.cadence_days, "budget": c.yearly_effort_hours, "mode": c.mode.value}
            for key, c in policies.items()
        }
    )


def prefilter_params(
    as_of: datetime, model: OperatingModel, very_high: Counter[str] | None, t: LifecycleThresholds
) -> dict[str, Any]:
    """The parameters of the conditions above for a moment; ``very_high`` (every steward's
    '++' count, by person key) is needed only by steward_overloaded."""
    return {
        "t": as_of,
        "slack": SLACK,
        "cells": cells_json(model),
        "overloaded": [s for s, n in (very_high or {}).items() if n > t.max_very_high_per_steward],
        "window_from": as_of - timedelta(days=t.window_days),  # exact: sums must not gain rows
        "trusted_floor": t.trusted - 1e-4,
        "min_hours": t.min_effort_hours - 1e-6,
        "unfair": t.unfair_ratio,  # the least lenient ratio: roles only raise it
        "jump": t.mismatch_factor * 0.99,
    }

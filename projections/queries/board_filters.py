"""What the lifecycle board's ``flag=`` filter asks PostgreSQL first: for each flag a
necessary condition (an ended partnership has none), so the candidates it returns include
every partnership with the flag; projections/queries/board.py then keeps those whose exact
flags (the domain's rules) include it. Where the exact rule sums floats in another order,
or rounds, the condition leaves a little slack.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from domain.lifecycle import LifecycleThresholds
from domain.values import Importance

SLACK = timedelta(seconds=1)
RANKS = [i.value for i in Importance]

PREFILTERS = {
    "stale": "x.stage <> 'ended' AND coalesce(x.last_contact_at, x.opened_at) <= %(stale_by)s",
    # Trusted now needs a trusted last point (see "rising" below).
    "dormant_but_trusted": "x.stage <> 'ended' AND coalesce(x.last_contact_at, x.opened_at) <= %(dormant_by)s"
    " AND EXISTS (SELECT 1 FROM (SELECT tp.trust FROM {trust}.trust_points tp"
    "  WHERE tp.partnership_id = x.partnership_id AND tp.at <= %(t)s ORDER BY tp.at DESC, tp.version DESC LIMIT 1) n"
    " WHERE n.trust >= %(trusted_floor)s)",
    "needs_handover": "x.stage <> 'ended' AND ((x.left_at IS NOT NULL"
    " AND (x.last_contact_at IS NULL OR x.last_contact_at < x.left_at)) OR x.steward = ANY(%(overloaded)s))",
    # Trust as of T is at most the last point's by then (plus rounding): decay only lowers
    # it (every part of trust shrinks by a factor below one), so trust now can only be
    # high, or have risen, if the points show it.
    "rising": "x.stage <> 'ended' AND (array_position(%(ranks)s::text[], x.segment_future)"
    " > array_position(%(ranks)s::text[], x.segment_now) OR EXISTS (SELECT 1 FROM"
    " (SELECT tp.trust FROM {trust}.trust_points tp WHERE tp.partnership_id = x.partnership_id"
    "  AND tp.at <= %(trend_from)s ORDER BY tp.at DESC, tp.version DESC LIMIT 1) b,"
    " (SELECT tp.trust FROM {trust}.trust_points tp WHERE tp.partnership_id = x.partnership_id"
    "  AND tp.at <= %(t)s ORDER BY tp.at DESC, tp.version DESC LIMIT 1) n"
    " WHERE n.trust >= b.trust + %(rise_floor)s))",
    # domain.lifecycle.wind_down_reasons over the same window: unfair, low efficiency, or
    # (needing two outcomes that far apart) an ambition mismatch.
    "wind_down_candidate": "x.stage <> 'ended' AND EXISTS (SELECT 1 FROM"
    " (SELECT coalesce(sum(our_hours), 0) AS o, coalesce(sum(their_hours), 0) AS th FROM {rm}.activities"
    "  WHERE partnership_id = x.partnership_id AND at > %(window_from)s AND at <= %(t)s) a,"
    " (SELECT count(*) AS n, min(outcome) AS lo, max(outcome) AS hi,"
    "  avg(ln(greatest(outcome, 1e-300))) AS lg FROM {rm}.evaluations"
    "  WHERE partnership_id = x.partnership_id AND at > %(window_from)s AND at <= %(t)s) e"
    " WHERE (a.o + a.th >= %(min_hours)s AND (a.o >= %(unfair)s * a.th - 1e-6 OR a.th >= %(unfair)s * a.o - 1e-6))"
    " OR (a.o >= %(min_hours)s AND e.n >= 1 AND (e.lo <= 0 OR exp(e.lg) / a.o < %(min_per_hour)s))"
    " OR (e.n >= 2 AND (e.lo <= 0 OR e.hi >= e.lo * %(jump)s)))",
}


def prefilter_params(as_of: datetime, very_high: Counter[str] | None, t: LifecycleThresholds) -> dict[str, Any]:
    """The parameters of the conditions above for a moment; ``very_high`` (every steward's
    '++' count) is needed only by needs_handover."""
    return {
        "t": as_of,
        "stale_by": as_of - timedelta(days=t.stale_after_days) + SLACK,
        "dormant_by": as_of - timedelta(days=t.dormant_quiet_days) + SLACK,
        "overloaded": [s for s, n in (very_high or {}).items() if n > t.max_very_high_per_steward],
        "ranks": RANKS,
        "trend_from": as_of - timedelta(days=t.trend_days),
        "window_from": as_of - timedelta(days=t.window_days),  # exact: sums must not gain rows
        "rise_floor": t.trend_rise - 1e-4,
        "trusted_floor": t.trusted - 1e-4,
        "min_hours": t.min_effort_hours - 1e-6,
        "unfair": t.unfair_ratio,
        "min_per_hour": t.min_outcome_per_hour * 1.001,
        "jump": t.mismatch_factor * 0.99,
    }

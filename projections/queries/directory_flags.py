"""Which of some partnerships carry a lifecycle flag now: the board's own machinery
(projections/queries/board.py), asked about the directory's candidates only.

The flag's necessary condition narrows them in SQL, the domain's rules decide; the
operating model and the rules' parameters are read once per question, not per chunk.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from domain.lifecycle import LifecycleThresholds
from projections.queries.board import BoardQuery, candidates, judge, very_high_by_steward
from projections.queries.board_facts import operating_model_at
from projections.queries.board_filters import PREFILTERS, prefilter_params


class Flagged:
    """``flagged(ids)``: those of ``ids`` whose flags as of ``as_of`` include ``flag``."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        lifecycle_rm: sql.Identifier,
        trust_rm: sql.Identifier,
        flag: str,
        as_of: datetime,
        thresholds: LifecycleThresholds,
    ) -> None:
        self.conn, self.rm, self.trust_rm = conn, lifecycle_rm, trust_rm
        self.flag, self.as_of, self.thresholds = flag, as_of, thresholds
        # Every steward's count only when it decides which rows are candidates (as the board).
        self.very_high = very_high_by_steward(conn, lifecycle_rm, as_of) if flag == "steward_overloaded" else None
        self.model = operating_model_at(conn, lifecycle_rm, as_of)
        self.params = prefilter_params(as_of, self.model, self.very_high, thresholds)
        self.prefilter = f"x.partnership_id = ANY(%(ids)s::uuid[]) AND ({PREFILTERS.get(flag, 'false')})"

    def __call__(self, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        found = candidates(
            self.conn,
            self.rm,
            self.trust_rm,
            BoardQuery(self.as_of, flag=self.flag),
            None,
            len(ids),
            {**self.params, "ids": ids},
            prefilter=self.prefilter,
        )
        judged = judge(
            self.conn, self.rm, self.trust_rm, found, self.as_of, self.model, self.very_high, self.thresholds
        )
        return {j.facts.partnership_id for j in judged if any(f.name == self.flag for f in j.flags)}

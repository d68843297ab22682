"""Every constant of the trust model, in one versioned place.

A trust score is only comparable with scores of the same model version, so read models
record the version with every row. Changing any value here means a new version string;
``verkosto projections rebuild trust`` then re-scores the whole history. The reasons for
each value are in docs/trust-model.md.
"""

from __future__ import annotations

from dataclasses import dataclass

TRUST_MODEL_VERSION = "trust-1"


@dataclass(frozen=True)
class TrustParameters:
    version: str = TRUST_MODEL_VERSION

    # Half-lives in days: how long quiet time takes to halve each quantity.
    attention_half_life_days: float = 30.0
    interest_half_life_days: float = 90.0
    # Trust fades far more slowly, so a dormant but trusted partner stays visible.
    trust_half_life_days: float = 1095.0

    # Age cap: trust can be at most 1 - exp(-age_days / maturity_days).
    maturity_days: float = 180.0

    # Interest: an explicit signal of strength s closes 1 - (1 - gain)^s of the gap to 1;
    # a contact is weaker evidence of interest than any explicit signal.
    interest_gain_per_strength: float = 0.25
    contact_interest_gain: float = 0.05

    # Familiarity: what contacts and interest alone add to trust, never above the ceiling.
    familiarity_ceiling: float = 0.15
    familiarity_gain: float = 0.05

    # Joint activity: a base gain, plus up to effort_gain for the weaker side's hours.
    joint_activity_gain: float = 0.15
    joint_effort_gain: float = 0.20
    joint_effort_scale_hours: float = 40.0

    # Evaluations, per decade of the outcome (outcome 10 = one decade above adequate).
    good_outcome_gain_per_decade: float = 0.15
    poor_outcome_loss_per_decade: float = 0.20

    # The organisation's share of what is built together; the rest is the steward's own.
    org_share: float = 0.6

    # Phases.
    trust_threshold: float = 0.3
    commitment_trust_threshold: float = 0.6
    commitment_interest_threshold: float = 0.4
    commitment_recent_activity_days: float = 180.0

    # Stored numbers are rounded so that replays are byte-identical.
    decimals: int = 6

    def __post_init__(self) -> None:
        problems = [rule for rule, holds in self._rules() if not holds]
        if problems:
            raise ValueError(f"trust parameters {self.version!r} break: {'; '.join(problems)}")

    def _rules(self) -> list[tuple[str, bool]]:
        fractions = (
            self.interest_gain_per_strength,
            self.contact_interest_gain,
            self.familiarity_ceiling,
            self.familiarity_gain,
            self.joint_activity_gain,
            self.good_outcome_gain_per_decade,
            self.poor_outcome_loss_per_decade,
            self.org_share,
            self.trust_threshold,
            self.commitment_trust_threshold,
            self.commitment_interest_threshold,
        )
        durations = (
            self.attention_half_life_days,
            self.interest_half_life_days,
            self.trust_half_life_days,
            self.maturity_days,
            self.joint_effort_scale_hours,
        )
        return [
            ("a version string is required", bool(self.version)),
            ("gains, shares and thresholds must lie in [0, 1]", all(0 <= f <= 1 for f in fractions)),
            ("durations must be positive", all(d > 0 for d in durations)),
            ("a joint activity can gain at most 1", self.joint_activity_gain + self.joint_effort_gain <= 1),
            # The model's promises, kept here so no parameter change can quietly break them.
            (
                "trust must fade at least 10x slower than attention and interest",
                self.trust_half_life_days >= 10 * max(self.attention_half_life_days, self.interest_half_life_days),
            ),
            (
                "a contact must be weaker evidence of interest than a signal",
                self.contact_interest_gain < self.interest_gain_per_strength,
            ),
            ("contacts alone must not reach the trust phase", self.familiarity_ceiling < self.trust_threshold),
            (
                "the trust phase must come before commitment",
                0 < self.trust_threshold <= self.commitment_trust_threshold,
            ),
            ("rounding needs 1..12 decimals", 1 <= self.decimals <= 12),
        ]


PARAMETERS = TrustParameters()

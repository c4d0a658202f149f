"""Quarter totals, bands and trajectories, computed from ratings by pure functions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from soh_es.quarters import Quarter
from soh_es.rubric import DECLINING, RubricSchedule


@dataclass(frozen=True)
class Rating:
    """One rating of one indicator for one quarter, as it was recorded."""

    quarter: Quarter
    indicator: str
    rating: int
    actor: str
    recorded_at: datetime
    reason: str | None = None
    plan_version: int | None = None


@dataclass(frozen=True)
class QuarterScore:
    """A quarter's scorecard: the ratings in force and, when complete, its labels.

    ``total``, ``band``, ``trajectory`` and ``change`` are None for an
    incomplete quarter; ``change`` is also None for the first complete one.
    """

    quarter: Quarter
    rubric_version: int
    ratings: dict[str, Rating]
    missing: tuple[str, ...]
    total: int | None
    band: str | None
    trajectory: str | None
    change: int | None
    compared_with: Quarter | None

    @property
    def complete(self) -> bool:
        """Whether every indicator of the quarter's rubric is rated."""
        return not self.missing

    @property
    def declining(self) -> bool:
        """Whether the quarter is flagged as declining, whatever its band."""
        return self.trajectory == DECLINING


def score_quarters(
    ratings: Iterable[Rating], schedule: RubricSchedule
) -> list[QuarterScore]:
    """Returns one score per rated quarter, oldest first.

    Ratings are taken in the order they were recorded: a later rating of an
    indicator for a quarter replaces the earlier one. Each quarter is scored
    under the rubric in force for it, and its trajectory compares it with the
    previous complete quarter.
    """
    latest: dict[Quarter, dict[str, Rating]] = {}
    for rating in ratings:
        latest.setdefault(rating.quarter, {})[rating.indicator] = rating

    scores: list[QuarterScore] = []
    previous: QuarterScore | None = None
    for quarter in sorted(latest):
        rubric = schedule.for_quarter(quarter)
        in_force = {k: r for k, r in latest[quarter].items() if k in rubric.keys}
        missing = tuple(k for k in rubric.keys if k not in in_force)
        if missing:
            scores.append(
                QuarterScore(
                    quarter,
                    rubric.version,
                    in_force,
                    missing,
                    None,
                    None,
                    None,
                    None,
                    None,
                )
            )
            continue

        total = sum(r.rating for r in in_force.values())
        change = None if previous is None else total - (previous.total or 0)
        score = QuarterScore(
            quarter=quarter,
            rubric_version=rubric.version,
            ratings=in_force,
            missing=(),
            total=total,
            band=rubric.band_for(total),
            trajectory=rubric.trajectory(change),
            change=change,
            compared_with=None if previous is None else previous.quarter,
        )
        scores.append(score)
        previous = score
    return scores


def latest_complete(scores: Iterable[QuarterScore]) -> QuarterScore | None:
    """Returns the most recent complete quarter's score, if any."""
    complete = [s for s in scores if s.complete]
    return complete[-1] if complete else None

"""Totals, bands and trajectories of the Share of Heart scorecard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from soh_es.errors import ValidationError
from soh_es.quarters import Quarter
from soh_es.rubric import DEFAULT_RUBRIC, Band, Rubric, RubricSchedule
from soh_es.scorecard import Rating, score_quarters

KEYS = DEFAULT_RUBRIC.keys
START = datetime(2026, 1, 5, tzinfo=UTC)


def ratings_totalling(
    quarter: Quarter, total: int, *, at: datetime = START
) -> list[Rating]:
    """Returns one rating per indicator, adding up to ``total`` (7 to 35)."""
    values = [1] * len(KEYS)
    remaining = total - len(KEYS)
    for i in range(len(values)):
        step = min(4, remaining)
        values[i] += step
        remaining -= step
    return [
        Rating(quarter, key, value, "alice", at + timedelta(seconds=i))
        for i, (key, value) in enumerate(zip(KEYS, values, strict=True))
    ]


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (7, "intervention"),
        (20, "intervention"),
        (21, "healthy"),
        (27, "healthy"),
        (28, "strong"),
        (35, "strong"),
    ],
)
def test_band_edges_follow_the_default_rubric(total: int, band: str) -> None:
    (score,) = score_quarters(
        ratings_totalling(Quarter(2026, 1), total), RubricSchedule()
    )
    assert score.total == total
    assert score.band == band


@pytest.mark.parametrize(
    ("first", "second", "trajectory"),
    [
        (24, 26, "improving"),
        (24, 25, "stable"),
        (24, 23, "stable"),
        (24, 22, "declining"),
        (24, 24, "stable"),
        (30, 28, "declining"),
    ],
)
def test_trajectory_needs_a_change_of_two_either_way(
    first: int, second: int, trajectory: str
) -> None:
    ratings = ratings_totalling(Quarter(2026, 1), first) + ratings_totalling(
        Quarter(2026, 2), second, at=START + timedelta(days=100)
    )
    scores = score_quarters(ratings, RubricSchedule())
    assert [s.trajectory for s in scores] == ["new", trajectory]
    assert scores[1].change == second - first
    assert scores[1].compared_with == Quarter(2026, 1)


def test_a_decline_is_flagged_even_in_the_strong_band() -> None:
    ratings = ratings_totalling(Quarter(2026, 1), 34) + ratings_totalling(
        Quarter(2026, 2), 31
    )
    latest = score_quarters(ratings, RubricSchedule())[-1]
    assert latest.band == "strong"
    assert latest.declining


def test_a_partial_quarter_is_incomplete_and_never_banded() -> None:
    ratings = ratings_totalling(Quarter(2026, 1), 30)[:6]
    (score,) = score_quarters(ratings, RubricSchedule())
    assert not score.complete
    assert score.missing == (KEYS[6],)
    assert (score.total, score.band, score.trajectory) == (None, None, None)


def test_trajectory_skips_incomplete_quarters() -> None:
    ratings = (
        ratings_totalling(Quarter(2026, 1), 20)
        + ratings_totalling(Quarter(2026, 2), 35)[:3]
        + ratings_totalling(Quarter(2026, 3), 23)
    )
    scores = score_quarters(ratings, RubricSchedule())
    assert scores[2].compared_with == Quarter(2026, 1)
    assert scores[2].trajectory == "improving"


def test_a_later_rating_of_an_indicator_replaces_the_earlier_one() -> None:
    ratings = ratings_totalling(Quarter(2026, 1), 21)
    correction = Rating(Quarter(2026, 1), KEYS[0], 1, "bob", START + timedelta(days=40))
    (score,) = score_quarters([*ratings, correction], RubricSchedule())
    assert score.total == 21 - ratings[0].rating + 1
    assert score.ratings[KEYS[0]].actor == "bob"


def test_a_late_rating_for_a_past_quarter_changes_that_quarter_only() -> None:
    q1 = ratings_totalling(Quarter(2026, 1), 21)
    q2 = ratings_totalling(Quarter(2026, 2), 25, at=START + timedelta(days=100))
    late = Rating(Quarter(2026, 1), KEYS[6], 5, "bob", START + timedelta(days=120))
    before = score_quarters([*q1, *q2], RubricSchedule())
    after = score_quarters([*q1, *q2, late], RubricSchedule())
    assert before[0].total is not None and after[0].total is not None
    assert after[0].total > before[0].total
    assert after[1].total == before[1].total
    assert after[1].change == before[1].total - after[0].total


def test_each_quarter_keeps_the_labels_of_the_rubric_it_was_scored_under() -> None:
    stricter = Rubric(
        version=2,
        indicators=DEFAULT_RUBRIC.indicators,
        bands=(
            Band("intervention", 7, 24),
            Band("healthy", 25, 30),
            Band("strong", 31, 35),
        ),
        trajectory_threshold=4,
        effective_from=Quarter(2026, 2),
    )
    ratings = ratings_totalling(Quarter(2026, 1), 22) + ratings_totalling(
        Quarter(2026, 2), 24
    )
    scores = score_quarters(ratings, RubricSchedule([stricter]))
    assert [(s.rubric_version, s.band) for s in scores] == [
        (1, "healthy"),
        (2, "intervention"),
    ]
    assert scores[1].trajectory == "stable"


def test_the_default_rubric_is_consistent_and_bands_must_not_leave_gaps() -> None:
    DEFAULT_RUBRIC.check()
    gappy = Rubric(
        version=2,
        indicators=DEFAULT_RUBRIC.indicators,
        bands=(Band("low", 7, 20), Band("high", 22, 35)),
        trajectory_threshold=2,
    )
    with pytest.raises(ValidationError) as caught:
        gappy.check()
    assert caught.value.field.startswith("bands")


def test_a_rubric_survives_its_plain_data_form() -> None:
    rubric = Rubric(
        2, DEFAULT_RUBRIC.indicators, DEFAULT_RUBRIC.bands, 3, Quarter(2027, 1)
    )
    assert Rubric.from_data(rubric.as_data()) == rubric

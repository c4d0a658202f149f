"""Quarters, fiscal calendars and points in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from soh_es.errors import ValidationError
from soh_es.quarters import FiscalCalendar, Point, Quarter, parse_instant


def test_a_quarter_is_written_year_dash_q_number() -> None:
    assert Quarter.parse("2026-Q2") == Quarter(2026, 2)
    assert str(Quarter(2026, 2)) == "2026-Q2"


@pytest.mark.parametrize("text", ["2026-Q5", "2026-Q0", "2026Q2", "26-Q1", "", "Q2"])
def test_malformed_quarters_are_refused_with_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Quarter.parse(text, field="quarter")
    assert caught.value.field == "quarter"


def test_quarters_step_across_years() -> None:
    assert Quarter(2026, 4).next() == Quarter(2027, 1)
    assert Quarter(2026, 1).previous() == Quarter(2025, 4)


def test_calendar_quarters_start_in_january_april_july_october() -> None:
    calendar = FiscalCalendar()
    starts = [calendar.start(Quarter(2026, n)).month for n in range(1, 5)]
    assert starts == [1, 4, 7, 10]
    assert calendar.end(Quarter(2026, 4)) == datetime(2027, 1, 1, tzinfo=UTC)


def test_a_fiscal_year_starting_in_october_is_named_after_the_year_it_ends() -> None:
    calendar = FiscalCalendar(start_month=10)
    assert calendar.start(Quarter(2027, 1)) == datetime(2026, 10, 1, tzinfo=UTC)
    assert calendar.quarter_of(datetime(2026, 12, 3, tzinfo=UTC)) == Quarter(2027, 1)
    assert calendar.quarter_of(datetime(2026, 9, 30, tzinfo=UTC)) == Quarter(2026, 4)


@pytest.mark.parametrize("start_month", range(1, 13))
def test_every_instant_falls_inside_the_quarter_it_is_mapped_to(
    start_month: int,
) -> None:
    calendar = FiscalCalendar(start_month)
    instant = datetime(2025, 1, 1, tzinfo=UTC)
    while instant.year < 2027:
        quarter = calendar.quarter_of(instant)
        assert calendar.start(quarter) <= instant < calendar.end(quarter)
        instant += timedelta(days=9, hours=7)


def test_as_of_a_quarter_means_the_instant_before_the_next_quarter_starts() -> None:
    cutoff = Point.parse("2026-Q2").cutoff(FiscalCalendar())
    assert cutoff == datetime(2026, 7, 1, tzinfo=UTC) - timedelta(microseconds=1)


def test_points_read_versions_quarters_and_instants() -> None:
    assert Point.parse("v12") == Point(version=12)
    assert Point.parse("7") == Point(version=7)
    assert Point.parse("2026-Q3") == Point(quarter=Quarter(2026, 3))
    assert Point.parse("2026-08-01T12:00:00+02:00") == Point(
        instant=datetime(2026, 8, 1, 10, tzinfo=UTC)
    )


def test_a_bare_date_means_the_end_of_that_day() -> None:
    assert parse_instant("2026-08-01") == datetime(
        2026, 8, 1, 23, 59, 59, 999999, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "text", ["2026-08-01T12:00:00", "yesterday", "v0", "2026-13-01"]
)
def test_unclear_points_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        Point.parse(text)

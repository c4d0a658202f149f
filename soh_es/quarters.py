"""Quarters, the fiscal calendar, and the points in time a plan can be read at."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from soh_es.errors import ValidationError

_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
# Quarters outside these years are refused: every quarter accepted must
# write back as it was read and have a start and an end as instants.
FIRST_YEAR, LAST_YEAR = 1900, 2999


@dataclass(frozen=True, order=True)
class Quarter:
    """A fiscal quarter, written ``2026-Q2``.

    The year is the fiscal year, named after the calendar year in which it
    ends; with the default calendar (years starting in January) fiscal and
    calendar years are the same.
    """

    year: int
    number: int

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 4:
            raise ValueError(f"A quarter number is 1 to 4, not {self.number!r}.")

    @classmethod
    def parse(cls, text: str, *, field: str = "quarter") -> Quarter:
        """Returns the quarter written as ``YYYY-Qn``, or raises ValidationError."""
        match = _QUARTER.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValidationError(
                field, f"{text!r} is not a quarter; write it as 2026-Q2 (Q1 to Q4)."
            )
        year = int(match.group(1))
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise ValidationError(
                field,
                f"{text!r} is not a quarter we keep; the year is {FIRST_YEAR} "
                f"to {LAST_YEAR}.",
            )
        return cls(year, int(match.group(2)))

    def next(self) -> Quarter:
        """Returns the quarter after this one."""
        if self.number == 4:
            return Quarter(self.year + 1, 1)
        return Quarter(self.year, self.number + 1)

    def previous(self) -> Quarter:
        """Returns the quarter before this one."""
        if self.number == 1:
            return Quarter(self.year - 1, 4)
        return Quarter(self.year, self.number - 1)

    def __str__(self) -> str:
        return f"{self.year}-Q{self.number}"


@dataclass(frozen=True)
class FiscalCalendar:
    """Maps quarters to UTC instants for a fiscal year starting in ``start_month``."""

    start_month: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.start_month <= 12:
            raise ValueError(
                f"A fiscal year starts in month 1 to 12, not {self.start_month!r}."
            )

    def start(self, quarter: Quarter) -> datetime:
        """Returns the first instant of ``quarter``."""
        # Months since the start of the fiscal year that ends in quarter.year.
        offset = self.start_month - 1 + 3 * (quarter.number - 1)
        year = quarter.year - (1 if self.start_month != 1 else 0)
        year += offset // 12
        return datetime(year, offset % 12 + 1, 1, tzinfo=UTC)

    def end(self, quarter: Quarter) -> datetime:
        """Returns the first instant after ``quarter`` (an exclusive bound)."""
        return self.start(quarter.next())

    def quarter_of(self, instant: datetime) -> Quarter:
        """Returns the quarter that ``instant`` falls in."""
        instant = instant.astimezone(UTC)
        months = (instant.month - self.start_month) % 12
        fiscal_year = instant.year
        if self.start_month != 1 and instant.month >= self.start_month:
            fiscal_year += 1
        return Quarter(fiscal_year, months // 3 + 1)


DEFAULT_CALENDAR = FiscalCalendar()


def parse_instant(text: str, *, field: str = "at") -> datetime:
    """Returns the UTC instant written in ISO 8601.

    A bare date means the end of that day in UTC (the state "as of" that day);
    an instant without an offset is refused because its meaning is unclear.
    """
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day, time.max, tzinfo=UTC)
        instant = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValidationError(
            field,
            f"{text!r} is not an ISO 8601 date or instant; "
            "write 2026-08-01 or 2026-08-01T12:00:00Z.",
        ) from None
    if instant.tzinfo is None:
        raise ValidationError(
            field,
            f"{text!r} has no UTC offset; add Z or +02:00 so the instant is exact.",
        )
    return instant.astimezone(UTC)


@dataclass(frozen=True)
class Point:
    """A point in a plan's past: a version, an instant, or the end of a quarter."""

    version: int | None = None
    instant: datetime | None = None
    quarter: Quarter | None = None

    @classmethod
    def parse(cls, text: str, *, field: str = "at") -> Point:
        """Reads ``12`` or ``v12`` (a version), ``2026-Q2`` or an ISO 8601 instant."""
        text = text.strip() if isinstance(text, str) else text
        if isinstance(text, str) and re.fullmatch(r"v?\d{1,9}", text):
            version = int(text.lstrip("v"))
            if version < 1:
                raise ValidationError(field, "Plan versions start at 1.")
            return cls(version=version)
        if isinstance(text, str) and _QUARTER.match(text):
            return cls(quarter=Quarter.parse(text, field=field))
        if not isinstance(text, str):
            raise ValidationError(field, f"{text!r} is not a point in time.")
        return cls(instant=parse_instant(text, field=field))

    def cutoff(self, calendar: FiscalCalendar) -> datetime | None:
        """Returns the latest instant this point includes, or None for a version."""
        if self.quarter is not None:
            return calendar.end(self.quarter) - timedelta(microseconds=1)
        return self.instant

    def __str__(self) -> str:
        if self.version is not None:
            return f"v{self.version}"
        if self.quarter is not None:
            return str(self.quarter)
        assert self.instant is not None
        return self.instant.isoformat()

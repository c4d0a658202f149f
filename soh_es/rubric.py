"""The Share of Heart rubric: indicators, bands and the trajectory rule, as data."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from soh_es.errors import ValidationError
from soh_es.quarters import Quarter

RATING_MIN = 1
RATING_MAX = 5

IMPROVING = "improving"
DECLINING = "declining"
STABLE = "stable"
NEW = "new"


@dataclass(frozen=True)
class Indicator:
    """One statement of the scorecard, rated 1 (strongly disagree) to 5."""

    key: str
    statement: str


@dataclass(frozen=True)
class Band:
    """A named range of quarter totals, both ends included."""

    label: str
    minimum: int
    maximum: int


@dataclass(frozen=True)
class Rubric:
    """One version of the scoring rules.

    ``effective_from`` is the first quarter scored under this version; the
    built-in first version has none and applies to every earlier quarter.
    """

    version: int
    indicators: tuple[Indicator, ...]
    bands: tuple[Band, ...]
    trajectory_threshold: int
    effective_from: Quarter | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        """The indicator keys, in scorecard order."""
        return tuple(i.key for i in self.indicators)

    @property
    def lowest_total(self) -> int:
        """The total when every indicator is rated 1."""
        return RATING_MIN * len(self.indicators)

    @property
    def highest_total(self) -> int:
        """The total when every indicator is rated 5."""
        return RATING_MAX * len(self.indicators)

    def band_for(self, total: int) -> str:
        """Returns the label of the band that ``total`` falls in."""
        for band in self.bands:
            if band.minimum <= total <= band.maximum:
                return band.label
        raise ValueError(f"Total {total!r} lies outside every band of {self!r}.")

    def trajectory(self, change: int | None) -> str:
        """Returns the trajectory label for a change of total (None: first quarter)."""
        if change is None:
            return NEW
        if change >= self.trajectory_threshold:
            return IMPROVING
        if change <= -self.trajectory_threshold:
            return DECLINING
        return STABLE

    def check(self) -> None:
        """Raises ValidationError unless the rubric is complete and consistent."""
        if not self.indicators:
            raise ValidationError(
                "indicators", "A rubric needs at least one indicator."
            )
        keys = self.keys
        for position, key in enumerate(keys):
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,49}", key):
                raise ValidationError(
                    f"indicators.{position}.key",
                    f"{key!r} is not a key; use lower-case letters, digits and _.",
                )
        if len(set(keys)) != len(keys):
            raise ValidationError("indicators", "Indicator keys must be unique.")
        if self.trajectory_threshold < 1:
            raise ValidationError(
                "trajectory_threshold",
                f"The threshold is a whole number of points, at least 1, "
                f"not {self.trajectory_threshold!r}.",
            )
        expected = self.lowest_total
        for position, band in enumerate(sorted(self.bands, key=lambda b: b.minimum)):
            if band.minimum != expected or band.maximum < band.minimum:
                raise ValidationError(
                    f"bands.{position}",
                    f"Bands must cover {self.lowest_total} to {self.highest_total} "
                    f"without gaps or overlaps; band {band.label!r} does not.",
                )
            expected = band.maximum + 1
        if expected != self.highest_total + 1:
            raise ValidationError(
                "bands",
                f"Bands must reach the highest total, {self.highest_total}.",
            )

    def as_data(self) -> dict[str, Any]:
        """Returns the rubric as plain data, for events and responses."""
        return {
            "version": self.version,
            "effective_from": str(self.effective_from) if self.effective_from else None,
            "indicators": [
                {"key": i.key, "statement": i.statement} for i in self.indicators
            ],
            "bands": [
                {"label": b.label, "minimum": b.minimum, "maximum": b.maximum}
                for b in self.bands
            ],
            "trajectory_threshold": self.trajectory_threshold,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Rubric:
        """Builds a rubric from the plain data of :meth:`as_data`."""
        effective_from = data.get("effective_from")
        return cls(
            version=int(data["version"]),
            effective_from=Quarter.parse(effective_from) if effective_from else None,
            indicators=tuple(
                Indicator(i["key"], i["statement"]) for i in data["indicators"]
            ),
            bands=tuple(
                Band(b["label"], int(b["minimum"]), int(b["maximum"]))
                for b in data["bands"]
            ),
            trajectory_threshold=int(data["trajectory_threshold"]),
        )


DEFAULT_RUBRIC = Rubric(
    version=1,
    indicators=(
        Indicator(
            "brings_opportunities", "The partner proactively brings us opportunities"
        ),
        Indicator(
            "recommends_solutions",
            "The partner actively recommends our solutions to customers",
        ),
        Indicator("seeks_input", "The partner seeks our input on strategic decisions"),
        Indicator(
            "invests_in_learning",
            "The partner invests time in learning about our products",
        ),
        Indicator("responds_quickly", "The partner responds quickly to our requests"),
        Indicator(
            "prioritizes_us",
            "The partner prioritizes our products over competing ones",
        ),
        Indicator(
            "shares_intelligence",
            "The partner shares valuable market intelligence with us",
        ),
    ),
    bands=(
        Band("intervention", 7, 20),
        Band("healthy", 21, 27),
        Band("strong", 28, 35),
    ),
    trajectory_threshold=2,
)


class RubricSchedule:
    """The rubric versions in force over time, the built-in one first."""

    def __init__(self, adopted: Iterable[Rubric] = ()) -> None:
        self.rubrics = [DEFAULT_RUBRIC, *adopted]

    @property
    def latest(self) -> Rubric:
        """The most recently adopted rubric."""
        return self.rubrics[-1]

    def for_quarter(self, quarter: Quarter) -> Rubric:
        """Returns the rubric that ``quarter`` is scored under."""
        chosen = DEFAULT_RUBRIC
        for rubric in self.rubrics[1:]:
            assert rubric.effective_from is not None
            if rubric.effective_from <= quarter:
                chosen = rubric
        return chosen

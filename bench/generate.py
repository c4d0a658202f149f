"""Builds large, realistic stores for the read-side benchmarks, quickly.

Plans are built in memory with the domain's own commands (so every event is
one the application would write) and saved many at a time through
``AccountPlans.save``, which stores their events with the event index and
takes the usual snapshots. A cohort of plans lives through the same quarters
side by side, so the log interleaves the plans of a cohort the way a real
portfolio does, while each plan's recorded times keep increasing.

A plan opens with a profile, stakeholders, goals, roles, market demand and
opportunities, then lives quarter by quarter: an initiative with an action
and a risk, seven indicator ratings drifting from quarter to quarter, health
notes, pipeline moves, reviews (not every month, so some are overdue) and
the odd handover. It stops once it has the requested number of events; a few
plans are then archived.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from soh_es.application import AccountPlans
from soh_es.domain import AccountPlan, Context, Source
from soh_es.quarters import FiscalCalendar, Quarter
from soh_es.rubric import Rubric

OWNERS = tuple(f"manager-{number:02d}" for number in range(1, 41))
SETUP_EVENTS = 19
COMPACT_SETUP_EVENTS = 5
QUARTER_EVENTS = 16
ARCHIVED_SHARE = 0.05
HANDOVER_SHARE = 0.03
REVIEW_SHARE = 0.75

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class GenerationReport:
    """What was generated and how fast it was stored."""

    plans: int
    events: int
    saves: int
    seconds: float
    events_per_second: float


@dataclass(frozen=True)
class Shape:
    """How big each plan grows and over how many quarters."""

    events_per_plan: int
    compact: bool
    quarters: int

    @classmethod
    def of(cls, events_per_plan: int) -> Shape:
        """Returns the shape giving plans about ``events_per_plan`` events.

        Small plans get a compact start (open, profile, market demand, one
        barrier and one opportunity) so that most of their events are ratings.
        """
        compact = events_per_plan < 60
        setup = COMPACT_SETUP_EVENTS if compact else SETUP_EVENTS
        # One quarter more than the average needs, since reviews are random.
        quarters = 1 + max(1, math.ceil((events_per_plan - setup) / QUARTER_EVENTS))
        return cls(events_per_plan, compact, quarters)


class _Clock:
    """Hands out one plan's recorded times: increasing, and never in the future."""

    def __init__(self, latest: datetime) -> None:
        self.latest = latest
        self.at = datetime(1970, 1, 1, tzinfo=UTC)

    def at_least(self, instant: datetime) -> datetime:
        self.at = min(max(self.at + timedelta(seconds=7), instant), self.latest)
        return self.at


class _Story:
    """One plan's life, told one quarter at a time."""

    def __init__(
        self,
        number: int,
        shape: Shape,
        rubric: Rubric,
        calendar: FiscalCalendar,
        rng: random.Random,
        now: datetime,
    ) -> None:
        self.number = number
        self.shape = shape
        self.rubric = rubric
        self.calendar = calendar
        self.rng = rng
        self.clock = _Clock(now - timedelta(minutes=1))
        self.owner = rng.choice(OWNERS)
        self.level = rng.uniform(1.6, 4.6)
        self.trend = rng.uniform(-0.35, 0.35)
        self.plan: AccountPlan | None = None
        self.records: dict[str, list[str]] = {}

    @property
    def done(self) -> bool:
        """Whether the plan has reached its size."""
        return self.plan is not None and self.plan.version >= self.shape.events_per_plan

    def ctx(self, when: datetime, reason: str | None = None) -> Context:
        """Returns the context of a change made by the owner at ``when``."""
        return Context(
            self.owner,
            reason=reason,
            source=Source.IMPORT,
            recorded_at=self.clock.at_least(when),
        )

    def steps(self, quarters: Sequence[Quarter]) -> Iterator[None]:
        """Runs the plan's commands; yields at the end of each quarter."""
        first = self.calendar.start(quarters[0])
        opened = first + timedelta(days=1, minutes=self.rng.randrange(60 * 24 * 20))
        setup = self._compact_setup if self.shape.compact else self._full_setup
        yield from self._until_done(setup(opened))
        for index, quarter in enumerate(quarters):
            if self.done:
                break
            yield from self._until_done(self._quarter(index, quarter))
            yield None
        self._finish(quarters[-1])

    def _until_done(self, commands: Iterator[None]) -> Iterator[None]:
        for _ in commands:
            if self.done:
                return
        return
        yield

    def _add(self, kind: str, values: dict[str, object], when: datetime) -> str:
        assert self.plan is not None
        record_id = self.plan.add_record(kind, values, ctx=self.ctx(when))
        self.records.setdefault(kind, []).append(record_id)
        return record_id

    def _compact_setup(self, opened: datetime) -> Iterator[None]:
        partner = f"Partner {self.number:06d}"
        self.plan = AccountPlan.open(
            partner=partner, owner=self.owner, ctx=self.ctx(opened, "New partner")
        )
        yield None
        week = opened + timedelta(days=3)
        self.plan.edit_section(
            "profile",
            {"size": f"{self.rng.randrange(20, 5000)} employees"},
            ctx=self.ctx(week),
        )
        yield None
        self.plan.edit_section(
            "market_demand",
            {"threats": self._threats(), "market_growth": self.rng.randrange(0, 30)},
            ctx=self.ctx(week),
        )
        yield None
        self._add("barrier", {"description": self._barrier()}, week)
        yield None
        self._add("opportunity", self._opportunity(), week)
        yield None

    def _full_setup(self, opened: datetime) -> Iterator[None]:
        yield from self._compact_setup(opened)
        assert self.plan is not None
        week = opened + timedelta(days=5)
        for name in ("Alex", "Sam"):
            self._add(
                "stakeholder",
                {
                    "name": f"{name} {self.number}",
                    "title": "Alliance lead",
                    "decision_role": self.rng.choice(["decision_maker", "champion"]),
                    "influence": self.rng.choice(["low", "medium", "high"]),
                    "relationship_strength": self.rng.randrange(1, 6),
                },
                week,
            )
            yield None
        self.plan.edit_section(
            "goals", {"summary": "Grow recurring revenue together."}, ctx=self.ctx(week)
        )
        yield None
        for level in ("corporate", "business_unit"):
            self._add(
                "goal",
                {"level": level, "description": f"A {level} goal of the partner"},
                week,
            )
            yield None
        self.plan.edit_section(
            "roles",
            {"communication_protocol": "Weekly call", "review_cadence": "Monthly"},
            ctx=self.ctx(week),
        )
        yield None
        for party in ("ours", "partner"):
            self._add(
                "responsibility",
                {"party": party, "description": f"What {party} side delivers"},
                week,
            )
            yield None
        for segment in ("Retail", "Public sector"):
            self._add("segment", {"name": segment, "needs": "Predictable cost"}, week)
            yield None
        self.plan.edit_section(
            "pipeline",
            {"summary": "Expansion at existing customers."},
            ctx=self.ctx(week),
        )
        yield None
        for _ in range(2):
            self._add("opportunity", self._opportunity(), week)
            yield None

    def _quarter(self, index: int, quarter: Quarter) -> Iterator[None]:
        plan = self.plan
        assert plan is not None
        begins = self.calendar.start(quarter)

        def day(number: int) -> datetime:
            return begins + timedelta(days=number, minutes=self.rng.randrange(600))

        self.level = min(
            5.0, max(1.0, self.level + self.trend + self.rng.gauss(0, 0.3))
        )
        plan.rate(
            quarter,
            {
                key: min(5, max(1, round(self.level + self.rng.gauss(0, 0.6))))
                for key in self.rubric.keys
            },
            rubric=self.rubric,
            ctx=self.ctx(day(2), "Quarterly scorecard"),
            calendar=self.calendar,
        )
        yield None
        plan.edit_section(
            "health",
            {
                "partner_satisfaction": min(5, max(1, round(self.level))),
                "engagement": self.rng.randrange(1, 6),
                "mindshare": self.rng.randrange(0, 101),
                "recent_wins": [f"Closed a deal in {quarter}"],
            },
            ctx=self.ctx(day(3)),
        )
        yield None
        initiatives = self.records.get("initiative", [])
        if initiatives:
            plan.change_record(
                "initiative", initiatives[-1], {"status": "done"}, ctx=self.ctx(day(4))
            )
            yield None
        initiative = self._add(
            "initiative",
            {
                "title": f"Joint campaign {quarter}",
                "quarter": quarter,
                "owner_party": "joint",
                "budget": self.rng.randrange(1, 100) * 1000,
                "status": "in_progress",
            },
            day(5),
        )
        yield None
        action = self._add(
            "action",
            {
                "initiative_id": initiative,
                "description": "Agree the target accounts",
                "owner": self.owner,
                "due_date": (begins + timedelta(days=30)).date(),
                "status": "open",
            },
            day(6),
        )
        yield None
        self._add(
            "risk",
            {
                "initiative_id": initiative,
                "description": "Their sales team is busy",
                "likelihood": self.rng.choice(["low", "medium", "high"]),
            },
            day(6),
        )
        yield None
        for number in (25, 55, 80):
            if self.rng.random() < REVIEW_SHARE:
                when = self.ctx(day(number))
                plan.review(
                    reviewed_on=when.recorded_at.date(),  # type: ignore[union-attr]
                    summary="Monthly review",
                    ctx=when,
                )
                yield None
        opportunity = self.rng.choice(self.records["opportunity"])
        plan.change_record(
            "opportunity",
            opportunity,
            {"probability": self.rng.randrange(0, 101)},
            ctx=self.ctx(day(40)),
        )
        yield None
        plan.change_record("action", action, {"status": "done"}, ctx=self.ctx(day(45)))
        yield None
        plan.edit_section(
            "goals",
            {"summary": f"Goals reviewed in {quarter}, turn {index}."},
            ctx=self.ctx(day(70)),
        )
        yield None
        if self.rng.random() < HANDOVER_SHARE:
            self.owner = self.rng.choice(OWNERS)
            plan.hand_over(new_owner=self.owner, notes=None, ctx=self.ctx(day(75)))
            yield None

    def _finish(self, last: Quarter) -> None:
        assert self.plan is not None
        if self.rng.random() < ARCHIVED_SHARE:
            when = self.calendar.start(last) + timedelta(days=85)
            self.plan.archive(ctx=self.ctx(when, "Partnership ended"))

    def _threats(self) -> list[str]:
        return self.rng.sample(
            ["Price pressure", "Vendor consolidation", "New entrants", "Skills gap"], 2
        )

    def _barrier(self) -> str:
        return self.rng.choice(
            [
                "Long procurement cycles at their customers",
                "A competitor funds their marketing",
                "No certified presales staff",
            ]
        )

    def _opportunity(self) -> dict[str, object]:
        return {
            "name": f"Opportunity {self.rng.randrange(10**6)}",
            "kind": self.rng.choice(["deal", "prospect", "strategic"]),
            "stage": self.rng.choice(["identified", "qualified", "proposal"]),
            "value": self.rng.randrange(5, 500) * 1000,
            "probability": self.rng.randrange(5, 90),
        }


def generate(
    app: AccountPlans,
    *,
    plans: int,
    events_per_plan: int,
    seed: int = 2024,
    cohort: int = 500,
    batch_events: int = 5000,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> GenerationReport:
    """Opens ``plans`` plans of about ``events_per_plan`` events each and saves them.

    Plans are saved ``batch_events`` events at a time; ``cohort`` plans live
    through the same quarters together. ``progress`` is called after each
    save with (events stored, events expected).
    """
    now = now or datetime.now(UTC)
    shape = Shape.of(events_per_plan)
    calendar = app.calendar
    last = calendar.quarter_of(now)
    quarters = [last]
    for _ in range(shape.quarters - 1):
        quarters.insert(0, quarters[0].previous())
    rubric = app.rubric_schedule().for_quarter(last)
    rng = random.Random(seed)
    expected = plans * events_per_plan

    started = time.perf_counter()
    stored = saves = 0
    pending: dict[UUID, AccountPlan] = {}
    pending_events = 0

    def flush() -> None:
        nonlocal stored, saves, pending_events
        if not pending:
            return
        app.save(*pending.values())
        stored += pending_events
        saves += 1
        pending.clear()
        pending_events = 0
        if progress is not None:
            progress(stored, expected)

    for first in range(0, plans, cohort):
        stories = [
            _Story(number, shape, rubric, calendar, rng, now)
            for number in range(first, min(plans, first + cohort))
        ]
        runs = [story.steps(quarters) for story in stories]
        while runs:
            still = []
            for story, run in zip(stories, runs, strict=True):
                before = _pending(story.plan)
                alive = next(run, StopIteration) is not StopIteration
                plan = story.plan
                assert plan is not None
                pending_events += _pending(plan) - before
                if plan.pending_events:
                    pending[plan.id] = plan
                if alive:
                    still.append((story, run))
                if pending_events >= batch_events:
                    flush()
            stories = [story for story, _ in still]
            runs = [run for _, run in still]
        flush()

    seconds = time.perf_counter() - started
    return GenerationReport(
        plans=plans,
        events=stored,
        saves=saves,
        seconds=seconds,
        events_per_second=stored / seconds if seconds > 0 else 0.0,
    )


def _pending(plan: AccountPlan | None) -> int:
    return 0 if plan is None else len(plan.pending_events)

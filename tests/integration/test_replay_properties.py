"""Property: replaying stored events reproduces what the live aggregate held."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from soh_es.application import AccountPlans
from soh_es.domain import AccountPlan, Context
from soh_es.errors import SohError
from soh_es.quarters import Point, Quarter
from soh_es.rubric import DEFAULT_RUBRIC, RubricSchedule
from soh_es.settings import Settings
from soh_es.views import plan_document

SCHEDULE = RubricSchedule()
START = datetime(2025, 1, 6, tzinfo=UTC)


class SnapshotEveryFive(AccountPlans):
    """The application with frequent snapshots, so replays cross several."""

    snapshotting_intervals = {AccountPlan: 5}


@pytest.fixture
def small_snapshots_app(settings: Settings) -> Iterator[AccountPlans]:
    application = SnapshotEveryFive(settings)
    yield application
    application.close()


texts = (
    st.text(alphabet="abcdefgh ", min_size=1, max_size=12).map(str.strip).filter(bool)
)


def run_command(plan: AccountPlan, data: st.DataObject, ctx: Context) -> None:
    """Draws one command and runs it on ``plan``; refusals leave it unchanged."""
    choice = data.draw(
        st.sampled_from(
            [
                "edit",
                "add_person",
                "change_person",
                "remove",
                "opportunity",
                "rate",
                "hand_over",
                "archive",
                "restore",
                "review",
            ]
        )
    )
    people = list(plan.records["stakeholder"])
    if choice == "edit":
        plan.edit_section(
            data.draw(st.sampled_from(["goals", "pipeline", "initiatives"])),
            {"summary": data.draw(st.none() | texts)},
            ctx=ctx,
        )
    elif choice == "add_person":
        plan.add_record(
            "stakeholder",
            {
                "name": data.draw(texts),
                "influence": data.draw(st.sampled_from(["low", "medium", "high"])),
            },
            ctx=ctx,
        )
    elif choice == "change_person" and people:
        plan.change_record(
            "stakeholder",
            data.draw(st.sampled_from(people)),
            {
                "name": data.draw(texts),
                "relationship_strength": data.draw(st.integers(1, 5)),
            },
            ctx=ctx,
        )
    elif choice == "remove" and people:
        plan.remove_record("stakeholder", data.draw(st.sampled_from(people)), ctx=ctx)
    elif choice == "opportunity":
        plan.add_record(
            "opportunity",
            {
                "name": data.draw(texts),
                "kind": "deal",
                "stage": "qualified",
                "value": data.draw(st.integers(0, 10**6)),
                "probability": data.draw(st.integers(0, 100)),
            },
            ctx=ctx,
        )
    elif choice == "rate":
        keys = data.draw(st.sets(st.sampled_from(DEFAULT_RUBRIC.keys), min_size=1))
        plan.rate(
            Quarter(2025, data.draw(st.integers(1, 4))),
            {key: data.draw(st.integers(1, 5)) for key in sorted(keys)},
            rubric=DEFAULT_RUBRIC,
            ctx=ctx,
        )
    elif choice == "hand_over":
        plan.hand_over(
            new_owner=data.draw(st.sampled_from(["alice", "bob"])), notes=None, ctx=ctx
        )
    elif choice == "archive":
        plan.archive(ctx=ctx)
    elif choice == "restore":
        plan.restore(ctx=ctx)
    elif choice == "review":
        assert ctx.recorded_at is not None
        plan.review(reviewed_on=ctx.recorded_at.date(), summary=None, ctx=ctx)


@hypothesis_settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), steps=st.integers(1, 25))
def test_replaying_up_to_any_version_gives_what_the_live_plan_held(
    small_snapshots_app: AccountPlans, data: st.DataObject, steps: int
) -> None:
    app = small_snapshots_app
    clock = START
    plan = AccountPlan.open(
        partner="P", owner="alice", ctx=Context("alice", recorded_at=clock)
    )
    live: dict[int, dict[str, Any]] = {}
    recorded: dict[int, datetime] = {}

    def save() -> None:
        for event in plan.pending_events:
            recorded[event.originator_version] = event.timestamp
        app.save(plan)
        live[plan.version] = plan_document(plan, SCHEDULE)

    save()
    for _ in range(steps):
        clock += timedelta(minutes=data.draw(st.integers(0, 60 * 24 * 20)))
        ctx = Context("alice", recorded_at=clock)
        try:
            run_command(plan, data, ctx)
        except SohError:
            assert not plan.pending_events
        if plan.pending_events:
            save()

    for version in range(1, plan.version + 1):
        stored = plan_document(app.get_plan(plan.id, Point(version=version)), SCHEDULE)
        if version in live:
            assert stored == live[version]

        as_of = app.get_plan(plan.id, Point(instant=recorded[version]))
        latest_at_that_instant = max(
            v for v, t in recorded.items() if t <= recorded[version]
        )
        assert as_of.version == latest_at_that_instant
        assert plan_document(as_of, SCHEDULE) == live[latest_at_that_instant]

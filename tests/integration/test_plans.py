"""The application service on both stores: writes, reads as of a point, history."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError

from soh_es.application import AccountPlans
from soh_es.domain import ERASED, AccountPlan, Context, Source
from soh_es.errors import NotFoundError, StaleVersionError, ValidationError
from soh_es.persistence import GENESIS_HASH, chain_hash
from soh_es.quarters import Point, Quarter
from soh_es.rubric import DEFAULT_RUBRIC, Band, Rubric
from soh_es.sections import OpportunityStage

ALL_FOUR = {key: 4 for key in DEFAULT_RUBRIC.keys}
ALL_THREE = {key: 3 for key in DEFAULT_RUBRIC.keys}


def at(day: str) -> Context:
    """A context recorded at noon UTC on ``day``, as imports and demo data are."""
    moment = datetime.fromisoformat(f"{day}T12:00:00+00:00")
    return Context("alice", source=Source.IMPORT, recorded_at=moment)


def test_values_come_back_from_the_store_in_their_own_types(
    app: AccountPlans, ctx: Context
) -> None:
    plan_id = app.open_plan("Northwind", ctx=ctx).plan_id
    app.edit_section(
        plan_id,
        "profile",
        {"partner_since": "2019-03-01", "market_share": 12.5},
        ctx=ctx,
    )
    deal = app.add_record(
        plan_id,
        "opportunity",
        {"name": "Fleet", "kind": "deal", "stage": "proposal", "value": "2500.50"},
        ctx=ctx,
    ).record_id
    app.add_record(
        plan_id, "initiative", {"title": "Enablement", "quarter": "2026-Q4"}, ctx=ctx
    )

    plan = app.get_plan(plan_id)

    assert plan.sections["profile"]["partner_since"] == date(2019, 3, 1)
    assert plan.sections["profile"]["market_share"] == Decimal("12.5")
    assert deal is not None
    assert plan.records["opportunity"][deal]["stage"] is OpportunityStage.PROPOSAL
    assert plan.records["opportunity"][deal]["value"] == Decimal("2500.50")
    (initiative,) = plan.records["initiative"].values()
    assert initiative["quarter"] == Quarter(2026, 4)


def test_every_event_carries_actor_time_reason_source_and_correlation(
    app: AccountPlans,
) -> None:
    ctx = Context("bob", reason="QBR notes", source=Source.CLI, correlation_id="req-7")
    plan_id = app.open_plan("Northwind", ctx=ctx).plan_id
    (event,) = list(app.events.get(plan_id))
    assert isinstance(event, AccountPlan.Opened)
    assert (event.actor, event.reason, event.source, event.correlation_id) == (
        "bob",
        "QBR notes",
        Source.CLI,
        "req-7",
    )
    assert event.timestamp.tzinfo is not None


def test_a_command_that_changes_nothing_writes_nothing(
    app: AccountPlans, ctx: Context
) -> None:
    plan_id = app.open_plan("Northwind", ctx=ctx).plan_id
    first = app.edit_section(plan_id, "goals", {"summary": "Grow"}, ctx=ctx)
    again = app.edit_section(plan_id, "goals", {"summary": "Grow"}, ctx=ctx)
    assert first.changed and not again.changed
    assert again.version == first.version == 2
    assert len(list(app.events.get(plan_id))) == 2


def test_a_stale_expected_version_is_refused_and_nothing_is_written(
    app: AccountPlans, ctx: Context
) -> None:
    plan_id = app.open_plan("Northwind", ctx=ctx).plan_id
    app.edit_section(plan_id, "goals", {"summary": "One"}, ctx=ctx, expected_version=1)
    with pytest.raises(StaleVersionError) as caught:
        app.edit_section(
            plan_id, "goals", {"summary": "Two"}, ctx=ctx, expected_version=1
        )
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert app.get_plan(plan_id).sections["goals"]["summary"] == "One"
    assert app.get_plan(plan_id).version == 2


def test_bad_input_writes_nothing(app: AccountPlans, ctx: Context) -> None:
    plan_id = app.open_plan("Northwind", ctx=ctx).plan_id
    with pytest.raises(ValidationError):
        app.rate_indicators(plan_id, "2026-Q4", {**ALL_FOUR, "seeks_input": 9}, ctx=ctx)
    with pytest.raises(ValidationError):
        app.rate_indicators(plan_id, "2026-Q9", ALL_FOUR, ctx=ctx)
    assert app.get_plan(plan_id).version == 1


def test_rating_all_seven_indicators_is_stored_atomically(
    app: AccountPlans, ctx: Context
) -> None:
    plan_id = app.open_plan("Northwind", ctx=ctx).plan_id
    outcome = app.rate_indicators(plan_id, "2026-Q4", ALL_FOUR, ctx=ctx)
    assert outcome.version == 8
    (score,) = app.scores(plan_id)
    assert (score.total, score.band, score.trajectory) == (28, "strong", "new")


def test_unknown_plans_and_points_are_not_found(
    app: AccountPlans, ctx: Context
) -> None:
    with pytest.raises(NotFoundError):
        app.get_plan(UUID(int=7))
    plan_id = app.open_plan("Northwind", ctx=ctx).plan_id
    with pytest.raises(NotFoundError):
        app.get_plan(plan_id, Point(version=2))
    with pytest.raises(NotFoundError):
        app.get_plan(plan_id, Point.parse("2001-Q1"))


def test_a_plan_reads_as_it_stood_at_a_version_an_instant_or_a_quarter(
    app: AccountPlans,
) -> None:
    plan_id = app.open_plan("Northwind", ctx=at("2026-02-10")).plan_id
    app.edit_section(plan_id, "profile", {"size": "small"}, ctx=at("2026-03-20"))
    app.edit_section(plan_id, "profile", {"size": "medium"}, ctx=at("2026-05-02"))
    app.edit_section(plan_id, "profile", {"size": "large"}, ctx=at("2026-08-15"))

    def size(point: str) -> str:
        return app.get_plan(plan_id, Point.parse(point)).sections["profile"]["size"]

    assert size("v2") == "small"
    assert size("2026-Q1") == "small"
    assert size("2026-Q2") == "medium"
    assert size("2026-05-01T23:59:59Z") == "small"
    assert size("2026-05-02") == "medium"
    assert app.get_plan(plan_id).sections["profile"]["size"] == "large"


def test_a_replay_as_of_a_quarter_includes_the_child_records(app: AccountPlans) -> None:
    plan_id = app.open_plan("Northwind", ctx=at("2026-01-10")).plan_id
    person = app.add_record(
        plan_id, "stakeholder", {"name": "Ana Lima"}, ctx=at("2026-02-01")
    ).record_id
    app.add_record(
        plan_id,
        "goal",
        {"level": "corporate", "description": "EMEA"},
        ctx=at("2026-04-03"),
    )
    assert person is not None
    app.remove_record(plan_id, "stakeholder", person, ctx=at("2026-05-03"))

    q1 = app.plan_document(plan_id, Point.parse("2026-Q1"))["sections"]
    q2 = app.plan_document(plan_id, Point.parse("2026-Q2"))["sections"]

    assert [s["name"] for s in q1["profile"]["stakeholders"]] == ["Ana Lima"]
    assert q1["goals"]["goals"] == []
    assert q2["profile"]["stakeholders"] == []
    assert [g["description"] for g in q2["goals"]["goals"]] == ["EMEA"]


def test_scores_as_we_knew_them_at_an_earlier_date(app: AccountPlans) -> None:
    plan_id = app.open_plan("Northwind", ctx=at("2026-04-01")).plan_id
    app.rate_indicators(plan_id, "2026-Q2", ALL_FOUR, ctx=at("2026-06-20"))
    app.rate_indicators(plan_id, "2026-Q2", {"seeks_input": 1}, ctx=at("2026-08-05"))

    known_on_1_august = app.scores(plan_id, Point.parse("2026-08-01"))
    known_now = app.scores(plan_id)

    assert known_on_1_august[0].total == 28
    assert known_now[0].total == 25
    assert known_now[0].ratings["seeks_input"].recorded_at.month == 8


def test_a_rubric_change_keeps_past_quarters_under_their_own_rubric(
    app: AccountPlans,
) -> None:
    plan_id = app.open_plan("Northwind", ctx=at("2026-01-05")).plan_id
    app.rate_indicators(plan_id, "2026-Q1", ALL_FOUR, ctx=at("2026-03-01"))
    stricter = Rubric(
        version=0,
        indicators=DEFAULT_RUBRIC.indicators,
        bands=(
            Band("intervention", 7, 24),
            Band("healthy", 25, 30),
            Band("strong", 31, 35),
        ),
        trajectory_threshold=2,
        effective_from=Quarter(2026, 2),
    )
    adopted = app.adopt_rubric(stricter, ctx=at("2026-04-02"))
    app.rate_indicators(plan_id, "2026-Q2", ALL_FOUR, ctx=at("2026-06-01"))

    scores = app.scores(plan_id)

    assert adopted.version == 2
    assert [(s.rubric_version, s.band) for s in scores] == [
        (1, "strong"),
        (2, "healthy"),
    ]
    with pytest.raises(ValidationError):
        app.adopt_rubric(stricter, ctx=at("2026-07-02"))


def test_history_tells_each_change_with_before_and_after_values(
    app: AccountPlans,
) -> None:
    plan_id = app.open_plan("Northwind", ctx=at("2026-01-05")).plan_id
    app.edit_section(
        plan_id, "roles", {"review_cadence": "monthly"}, ctx=at("2026-01-06")
    )
    app.edit_section(
        plan_id, "roles", {"review_cadence": "weekly"}, ctx=at("2026-02-06")
    )
    app.rate_indicators(plan_id, "2026-Q1", {"seeks_input": 3}, ctx=at("2026-02-07"))
    app.hand_over(plan_id, new_owner="bob", notes="Leaving", ctx=at("2026-03-01"))

    page = app.history(plan_id)
    roles = app.history(plan_id, section="roles")
    since = app.history(plan_id, since=datetime(2026, 2, 1, tzinfo=UTC))

    assert page.total == 5
    assert [c.event for c in page.changes] == [
        "Opened",
        "SectionEdited",
        "SectionEdited",
        "IndicatorRated",
        "HandedOver",
    ]
    third = page.changes[2].changes[0]
    assert (third.field, third.before, third.after) == (
        "review_cadence",
        "monthly",
        "weekly",
    )
    assert [c.version for c in roles.changes] == [2, 3]
    assert [c.version for c in since.changes] == [3, 4, 5]
    assert app.history(plan_id, actor="nobody").total == 0
    assert app.history(plan_id, offset=4, limit=10).changes[0].event == "HandedOver"


def test_a_diff_names_each_field_that_differs_between_two_points(
    app: AccountPlans,
) -> None:
    plan_id = app.open_plan("Northwind", ctx=at("2026-01-05")).plan_id
    app.edit_section(plan_id, "profile", {"size": "small"}, ctx=at("2026-02-01"))
    app.edit_section(plan_id, "profile", {"size": "large"}, ctx=at("2026-05-01"))
    app.add_record(plan_id, "barrier", {"description": "Pricing"}, ctx=at("2026-05-02"))

    changes = app.diff(plan_id, Point.parse("2026-Q1"), Point.parse("2026-Q2"))
    by_path = {c["path"]: c for c in changes}

    assert by_path["sections.profile.size"]["before"] == "small"
    assert by_path["sections.profile.size"]["after"] == "large"
    (barrier_path,) = [
        p for p in by_path if p.startswith("sections.market_demand.barriers")
    ]
    assert by_path[barrier_path]["before"] is None


def test_each_event_is_indexed_and_chained_to_the_one_before(
    app: AccountPlans, ctx: Context
) -> None:
    plan_id = app.open_plan("Northwind", ctx=ctx).plan_id
    app.rate_indicators(plan_id, "2026-Q4", ALL_THREE, ctx=ctx)
    stored = app.recorder.select_events(plan_id)
    rows = app.index.index_of(plan_id)

    assert [r.originator_version for r in rows] == list(range(1, 9))
    previous = GENESIS_HASH
    for event, row in zip(stored, rows, strict=True):
        previous = chain_hash(previous, event)
        assert row.hash == previous


def test_erasing_a_stakeholder_removes_their_data_from_every_read(
    app: AccountPlans, ctx: Context
) -> None:
    plan_id = app.open_plan("Northwind", ctx=ctx).plan_id
    person = app.add_record(
        plan_id,
        "stakeholder",
        {"name": "Ana Lima", "email": "ana.lima@example.com", "title": "CTO"},
        ctx=ctx,
    ).record_id
    assert person is not None
    app.change_record(plan_id, "stakeholder", person, {"phone": "+47 5555"}, ctx=ctx)
    app.erase_stakeholder(plan_id, person, ctx=ctx)

    documents = [
        app.plan_document(plan_id),
        app.plan_document(plan_id, Point(version=2)),
    ]
    history = app.history(plan_id).changes
    raw = b"".join(e.state for e in app.recorder.select_events(plan_id))

    for secret in ("Ana Lima", "ana.lima@example.com", "+47 5555"):
        assert secret not in repr(documents) + repr(history)
        assert secret.encode() not in raw
    shown = documents[0]["sections"]["profile"]["stakeholders"][0]
    assert shown["name"] == ERASED and shown["title"] == "CTO"


def test_plans_are_listed_oldest_first(app: AccountPlans, ctx: Context) -> None:
    first = app.open_plan("Northwind", ctx=ctx).plan_id
    second = app.open_plan("Contoso", ctx=ctx).plan_id
    assert app.plan_ids() == [first, second]


def test_snapshots_do_not_change_what_a_replay_returns(
    app: AccountPlans, ctx: Context
) -> None:
    plan_id = app.open_plan("Northwind", ctx=ctx).plan_id
    for n in range(250):
        app.edit_section(plan_id, "goals", {"summary": f"take {n}"}, ctx=ctx)
    assert app.snapshots is not None
    assert len(list(app.snapshots.get(plan_id))) == 2
    for version in (99, 100, 101, 200, 251):
        plan = app.get_plan(plan_id, Point(version=version))
        replayed = None
        for event in app.events.get(plan_id, lte=version):
            replayed = event.mutate(replayed)  # type: ignore[attr-defined]
        assert plan.version == version
        assert plan.sections == replayed.sections  # type: ignore[union-attr]
        assert plan.sections["goals"]["summary"] == f"take {version - 2}"


def test_a_save_whose_acknowledgement_was_lost_is_not_written_twice(
    app: AccountPlans, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_id = app.open_plan("Northwind", ctx=ctx).plan_id
    stored_then_lost = app.save

    def save_and_lose_the_answer(*objs: object, **kwargs: object) -> object:
        stored_then_lost(*objs, **kwargs)
        raise IntegrityError("the retried insert conflicts with itself")

    monkeypatch.setattr(app, "save", save_and_lose_the_answer)
    outcome = app.add_record(plan_id, "barrier", {"description": "Pricing"}, ctx=ctx)
    monkeypatch.undo()

    assert outcome.changed and outcome.version == 2
    barriers = app.get_plan(plan_id).records["barrier"]
    assert [b["description"] for b in barriers.values()] == ["Pricing"]

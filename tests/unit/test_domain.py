"""The account plan aggregate: commands, validation and no-op edits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from soh_es.domain import ERASED, AccountPlan, Context, PlanStatus
from soh_es.errors import ConflictError, NotFoundError, ValidationError
from soh_es.personal import Personal
from soh_es.quarters import Quarter
from soh_es.rubric import DEFAULT_RUBRIC
from soh_es.sections import OpportunityStage, Party

CTX = Context("alice", reason="setting up")
NOW_QUARTER = Quarter(2026, 4)


def new_plan() -> AccountPlan:
    plan = AccountPlan.open(partner="Northwind", owner="alice", ctx=CTX)
    plan.collect_events()
    return plan


def test_opening_a_plan_records_partner_owner_and_metadata() -> None:
    plan = AccountPlan.open(partner="  Northwind  ", owner="alice", ctx=CTX)
    (opened,) = plan.collect_events()
    assert isinstance(opened, AccountPlan.Opened)
    assert (opened.partner, opened.owner) == ("Northwind", "alice")
    assert (opened.actor, opened.reason, opened.source.value) == (
        "alice",
        "setting up",
        "api",
    )
    assert plan.status is PlanStatus.ACTIVE


@pytest.mark.parametrize("actor", ["", " leading-space", "x" * 201, None])
def test_a_context_needs_a_real_actor(actor: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Context(actor)  # type: ignore[arg-type]
    assert caught.value.field == "actor"


def test_a_section_edit_records_only_the_fields_that_changed() -> None:
    plan = new_plan()
    plan.edit_section("profile", {"size": "800 staff", "locations": ["Oslo"]}, ctx=CTX)
    plan.edit_section("profile", {"size": "800 staff", "customer_base": "SMB"}, ctx=CTX)
    first, second = plan.collect_events()
    assert isinstance(second, AccountPlan.SectionEdited)
    assert second.values == {"customer_base": "SMB"}
    assert plan.sections["profile"]["locations"] == ["Oslo"]


def test_an_edit_that_changes_nothing_records_nothing() -> None:
    plan = new_plan()
    plan.edit_section("market_demand", {"market_size": "1000000"}, ctx=CTX)
    plan.collect_events()
    plan.edit_section("market_demand", {"market_size": Decimal("1000000.00")}, ctx=CTX)
    plan.hand_over(new_owner="alice", notes=None, ctx=CTX)
    plan.restore(ctx=CTX)
    assert plan.collect_events() == []


def test_setting_a_field_to_none_clears_it() -> None:
    plan = new_plan()
    plan.edit_section("roles", {"escalation_path": "CEO"}, ctx=CTX)
    plan.edit_section("roles", {"escalation_path": None}, ctx=CTX)
    assert "escalation_path" not in plan.sections["roles"]
    assert len(plan.collect_events()) == 2


@pytest.mark.parametrize(
    ("section", "values", "field"),
    [
        ("profile", {"shoe_size": 3}, "values.shoe_size"),
        ("profile", {"partner_since": "last year"}, "values.partner_since"),
        ("profile", {"market_share": 140}, "values.market_share"),
        ("profile", {"partnership_status": "besties"}, "values.partnership_status"),
        ("profile", {"company_name": None}, "values.company_name"),
        ("health", {"engagement": 6}, "values.engagement"),
        ("market_demand", {"market_size": -5}, "values.market_size"),
        ("market_demand", {"threats": "not a list"}, "values.threats"),
        ("roles", {"review_cadence": "x" * 201}, "values.review_cadence"),
        ("nonsense", {}, "section"),
    ],
)
def test_bad_section_values_are_refused_and_nothing_is_recorded(
    section: str, values: dict[str, object], field: str
) -> None:
    plan = new_plan()
    with pytest.raises(ValidationError) as caught:
        plan.edit_section(section, values, ctx=CTX)
    assert caught.value.field == field
    assert plan.collect_events() == []


def test_records_are_added_changed_and_removed_by_their_own_events() -> None:
    plan = new_plan()
    deal = plan.add_record(
        "opportunity",
        {"name": "Fleet renewal", "kind": "deal", "stage": "qualified", "value": 1200},
        ctx=CTX,
    )
    plan.change_record("opportunity", deal, {"stage": "won"}, ctx=CTX)
    plan.remove_record("opportunity", deal, ctx=CTX)
    events = plan.collect_events()
    assert [type(e).__name__ for e in events] == [
        "OpportunityAdded",
        "OpportunityChanged",
        "OpportunityRemoved",
    ]
    assert events[0].values["value"] == Decimal("1200.00")
    assert events[1].values == {"stage": OpportunityStage.WON}
    assert plan.records["opportunity"] == {}


def test_a_record_change_to_the_same_values_records_nothing() -> None:
    plan = new_plan()
    goal = plan.add_record(
        "goal", {"level": "corporate", "description": "Grow EMEA"}, ctx=CTX
    )
    plan.collect_events()
    plan.change_record("goal", goal, {"description": "Grow EMEA"}, ctx=CTX)
    assert plan.collect_events() == []


def test_required_record_fields_cannot_be_missing_or_cleared() -> None:
    plan = new_plan()
    with pytest.raises(ValidationError) as missing:
        plan.add_record("goal", {"description": "Grow"}, ctx=CTX)
    assert missing.value.field == "values.level"
    goal = plan.add_record("goal", {"level": "corporate", "description": "G"}, ctx=CTX)
    with pytest.raises(ValidationError) as cleared:
        plan.change_record("goal", goal, {"description": None}, ctx=CTX)
    assert cleared.value.field == "values.description"


def test_unknown_records_are_not_found() -> None:
    plan = new_plan()
    with pytest.raises(NotFoundError):
        plan.change_record("goal", "missing", {"description": "x"}, ctx=CTX)
    with pytest.raises(NotFoundError):
        plan.remove_record("risk", "missing", ctx=CTX)


def test_actions_must_point_at_an_initiative_of_the_plan() -> None:
    plan = new_plan()
    with pytest.raises(ValidationError) as caught:
        plan.add_record(
            "action", {"initiative_id": "nope", "description": "Call"}, ctx=CTX
        )
    assert caught.value.field == "values.initiative_id"


def test_removing_an_initiative_removes_its_actions_and_risks() -> None:
    plan = new_plan()
    keep = plan.add_record("initiative", {"title": "A", "quarter": "2026-Q4"}, ctx=CTX)
    drop = plan.add_record("initiative", {"title": "B", "quarter": "2026-Q4"}, ctx=CTX)
    plan.add_record("action", {"initiative_id": keep, "description": "a1"}, ctx=CTX)
    plan.add_record("action", {"initiative_id": drop, "description": "b1"}, ctx=CTX)
    plan.add_record("risk", {"initiative_id": drop, "description": "r"}, ctx=CTX)
    plan.remove_record("initiative", drop, ctx=CTX)
    assert [a["description"] for a in plan.records["action"].values()] == ["a1"]
    assert plan.records["risk"] == {}


def test_a_stakeholder_named_by_a_goal_cannot_be_removed() -> None:
    plan = new_plan()
    person = plan.add_record("stakeholder", {"name": "Ana Lima"}, ctx=CTX)
    plan.add_record(
        "goal",
        {"level": "stakeholder", "description": "Promotion", "stakeholder_id": person},
        ctx=CTX,
    )
    with pytest.raises(ConflictError):
        plan.remove_record("stakeholder", person, ctx=CTX)


def test_a_quarter_holds_at_most_five_open_initiatives() -> None:
    plan = new_plan()
    ids = [
        plan.add_record("initiative", {"title": f"I{n}", "quarter": "2026-Q4"}, ctx=CTX)
        for n in range(5)
    ]
    with pytest.raises(ConflictError):
        plan.add_record("initiative", {"title": "I6", "quarter": "2026-Q4"}, ctx=CTX)
    plan.change_record("initiative", ids[0], {"status": "cancelled"}, ctx=CTX)
    plan.add_record("initiative", {"title": "I6", "quarter": "2026-Q4"}, ctx=CTX)
    with pytest.raises(ConflictError):
        plan.change_record("initiative", ids[0], {"status": "planned"}, ctx=CTX)


def test_stakeholder_personal_fields_travel_apart_from_the_others() -> None:
    plan = new_plan()
    person = plan.add_record(
        "stakeholder",
        {"name": "Ana Lima", "email": "ana@example.com", "title": "CTO"},
        ctx=CTX,
    )
    (added,) = plan.collect_events()
    assert added.values == {"title": "CTO"}
    assert added.personal == Personal(
        person, {"name": "Ana Lima", "email": "ana@example.com"}
    )
    assert plan.record_fields("stakeholder", person)["name"] == "Ana Lima"


def test_an_erased_stakeholder_shows_markers_and_takes_no_new_personal_data() -> None:
    plan = new_plan()
    person = plan.add_record("stakeholder", {"name": "Ana", "title": "CTO"}, ctx=CTX)
    plan.erase_stakeholder(person, ctx=CTX)
    fields = plan.record_fields("stakeholder", person)
    assert fields["name"] == ERASED and fields["title"] == "CTO"
    with pytest.raises(ConflictError):
        plan.change_record("stakeholder", person, {"name": "Ana again"}, ctx=CTX)
    plan.change_record("stakeholder", person, {"title": "CEO"}, ctx=CTX)


def test_rating_indicators_records_one_event_per_changed_indicator() -> None:
    plan = new_plan()
    plan.rate(
        NOW_QUARTER, {k: 4 for k in DEFAULT_RUBRIC.keys}, rubric=DEFAULT_RUBRIC, ctx=CTX
    )
    plan.rate(
        NOW_QUARTER,
        {"seeks_input": 4, "prioritizes_us": 2},
        rubric=DEFAULT_RUBRIC,
        ctx=CTX,
    )
    events = plan.collect_events()
    assert len(events) == 8
    assert isinstance(events[-1], AccountPlan.IndicatorRated)
    assert (events[-1].indicator, events[-1].rating, events[-1].rubric_version) == (
        "prioritizes_us",
        2,
        1,
    )


@pytest.mark.parametrize(
    ("ratings", "field"),
    [
        ({"brings_opportunities": 5, "seeks_input": 0}, "ratings.seeks_input"),
        ({"brings_opportunities": 5, "seeks_input": 6}, "ratings.seeks_input"),
        ({"brings_opportunities": 5, "seeks_input": 3.5}, "ratings.seeks_input"),
        ({"brings_opportunities": 5, "seeks_input": True}, "ratings.seeks_input"),
        ({"brings_opportunities": 5, "loves_us": 3}, "ratings.loves_us"),
        ({}, "ratings"),
    ],
)
def test_bad_ratings_are_refused_whole(ratings: dict[str, object], field: str) -> None:
    plan = new_plan()
    with pytest.raises(ValidationError) as caught:
        plan.rate(NOW_QUARTER, ratings, rubric=DEFAULT_RUBRIC, ctx=CTX)
    assert caught.value.field == field
    assert plan.collect_events() == []


def test_a_quarter_that_has_not_started_cannot_be_rated() -> None:
    ctx = Context("alice", recorded_at=datetime(2026, 5, 1, tzinfo=UTC))
    plan = AccountPlan.open(partner="Early", owner="alice", ctx=ctx)
    with pytest.raises(ValidationError) as caught:
        plan.rate(Quarter(2026, 3), {"seeks_input": 3}, rubric=DEFAULT_RUBRIC, ctx=ctx)
    assert caught.value.field == "quarter"
    plan.rate(Quarter(2026, 1), {"seeks_input": 3}, rubric=DEFAULT_RUBRIC, ctx=ctx)


def test_recorded_times_never_go_backwards_within_a_plan() -> None:
    later = datetime(2026, 6, 1, tzinfo=UTC)
    plan = AccountPlan.open(
        partner="P", owner="alice", ctx=Context("alice", recorded_at=later)
    )
    plan.edit_section(
        "goals",
        {"summary": "s"},
        ctx=Context("alice", recorded_at=later - timedelta(days=30)),
    )
    opened, edited = plan.collect_events()
    assert edited.timestamp == opened.timestamp


def test_an_archived_plan_refuses_edits_until_restored() -> None:
    plan = new_plan()
    plan.archive(ctx=CTX)
    with pytest.raises(ConflictError):
        plan.edit_section("goals", {"summary": "x"}, ctx=CTX)
    plan.restore(ctx=CTX)
    plan.edit_section("goals", {"summary": "x"}, ctx=CTX)
    kinds = [type(e).__name__ for e in plan.collect_events()]
    assert kinds == ["Archived", "Restored", "SectionEdited"]


def test_a_handover_names_both_owners() -> None:
    plan = new_plan()
    plan.hand_over(new_owner="bob", notes="Alice moves to EMEA", ctx=CTX)
    (event,) = plan.collect_events()
    assert (event.previous_owner, event.new_owner) == ("alice", "bob")
    assert plan.owner == "bob"


def test_a_review_cannot_be_dated_in_the_future() -> None:
    plan = new_plan()
    with pytest.raises(ValidationError) as caught:
        plan.review(reviewed_on=date(2999, 1, 1), summary=None, ctx=CTX)
    assert caught.value.field == "reviewed_on"


def test_values_arrive_in_their_domain_types() -> None:
    plan = new_plan()
    item = plan.add_record(
        "responsibility", {"party": "joint", "description": "Joint webinars"}, ctx=CTX
    )
    plan.edit_section("profile", {"partner_since": "2019-03-01"}, ctx=CTX)
    assert plan.records["responsibility"][item]["party"] is Party.JOINT
    assert plan.sections["profile"]["partner_since"] == date(2019, 3, 1)


@pytest.mark.parametrize("text", ["nul\x00inside", "bell\x07", "escape\x1b[31m"])
def test_control_characters_are_refused_in_every_kind_of_text(text: str) -> None:
    plan = new_plan()
    with pytest.raises(ValidationError) as in_section:
        plan.edit_section("goals", {"summary": text}, ctx=CTX)
    assert in_section.value.field == "values.summary"
    with pytest.raises(ValidationError):
        plan.hand_over(new_owner="bob", notes=text, ctx=CTX)
    with pytest.raises(ValidationError):
        Context("alice", reason=text)
    assert plan.collect_events() == []


def test_tabs_and_newlines_are_kept_in_text() -> None:
    plan = new_plan()
    plan.edit_section("goals", {"summary": "line one\n\tline two"}, ctx=CTX)
    assert plan.sections["goals"]["summary"] == "line one\n\tline two"

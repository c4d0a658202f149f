"""Pure parts of the read side: rows, erasure of audit values, normalized texts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from psycopg import sql

from projections.audit import erase_fields
from projections.current_plans import declining_streak, plan_row, to_cents
from projections.portfolio import concern_rows, normalize
from projections.queries import review_due_before
from projections.store import ReadStore
from soh_es.domain import ERASED, AccountPlan, Context
from soh_es.quarters import Quarter
from soh_es.rubric import DEFAULT_RUBRIC, RubricSchedule

PERSONAL = ["email", "name", "notes", "phone"]


def ctx(day: str) -> Context:
    """A context recorded at noon UTC on ``day``."""
    return Context("alice", recorded_at=datetime.fromisoformat(f"{day}T12:00:00+00:00"))


def test_an_added_stakeholder_shows_every_personal_field_erased() -> None:
    fields = [
        {"field": "title", "before": None, "after": "CTO"},
        {"field": "name", "before": None, "after": "Jo"},
    ]

    erased = erase_fields("StakeholderAdded", fields)

    assert erased[0] == {"field": "title", "before": None, "after": "CTO"}
    assert [(f["field"], f["before"], f["after"]) for f in erased[1:]] == [
        (name, None, ERASED) for name in PERSONAL
    ]
    assert erase_fields("StakeholderAdded", erased) == erased


def test_a_change_of_plain_fields_only_is_left_as_it_was() -> None:
    fields = [{"field": "title", "before": "CTO", "after": "CIO"}]

    assert erase_fields("StakeholderChanged", fields) == fields


def test_a_change_of_a_personal_field_hides_both_values() -> None:
    fields = [{"field": "email", "before": "a@b", "after": "c@d"}]

    erased = erase_fields("StakeholderChanged", fields)

    assert {(f["before"], f["after"]) for f in erased} == {(ERASED, ERASED)}
    assert [f["field"] for f in erased] == PERSONAL


def test_a_removed_stakeholder_shows_erased_values_before_removal() -> None:
    fields = [{"field": "name", "before": "Jo", "after": None}]

    erased = erase_fields("StakeholderRemoved", fields)

    assert {(f["before"], f["after"]) for f in erased} == {(ERASED, None)}


def test_texts_that_differ_in_case_spacing_and_punctuation_are_the_same_concern() -> (
    None
):
    assert (
        normalize("Price,  too HIGH!")
        == normalize("price too high")
        == ("price too high")
    )
    assert normalize("!!!") == ""


def test_a_plan_lists_each_distinct_barrier_and_threat_once() -> None:
    plan = AccountPlan.open(partner="P", owner="alice", ctx=ctx("2025-01-10"))
    plan.add_record("barrier", {"description": "Price"}, ctx=ctx("2025-01-10"))
    plan.add_record("barrier", {"description": "price."}, ctx=ctx("2025-01-10"))
    plan.edit_section(
        "market_demand", {"threats": ["Price", "Rivals"]}, ctx=ctx("2025-01-10")
    )

    rows = concern_rows(plan)

    assert [(r["kind"], r["normalized"], r["text"]) for r in rows] == [
        ("barrier", "price", "Price"),
        ("threat", "price", "Price"),
        ("threat", "rivals", "Rivals"),
    ]


@pytest.mark.parametrize(
    ("trajectories", "streak"),
    [
        ([], 0),
        (["new"], 0),
        (["new", "declining"], 1),
        (["new", "declining", "declining"], 2),
        (["declining", "stable", "declining"], 1),
        (["new", "declining", None, "improving"], 0),
    ],
)
def test_the_declining_streak_counts_latest_quarters_in_a_row(
    trajectories: list[str | None], streak: int
) -> None:
    assert declining_streak(trajectories) == streak


def test_amounts_become_whole_cents() -> None:
    assert to_cents(Decimal("1234.56")) == 123456
    assert to_cents("0.10") == 10
    assert to_cents(None) == 0


def test_a_review_is_overdue_once_more_than_thirty_one_days_old() -> None:
    # 2025-02-01 is 31 days before 4 March: still on time; earlier is late.
    assert review_due_before(date(2025, 3, 4)) == "2025-02-01"


def test_a_plan_row_carries_the_list_fields_of_its_latest_complete_quarter() -> None:
    plan = AccountPlan.open(partner="P", owner="alice", ctx=ctx("2025-01-10"))
    plan.rate(
        Quarter(2025, 1),
        {key: 3 for key in DEFAULT_RUBRIC.keys},
        rubric=DEFAULT_RUBRIC,
        ctx=ctx("2025-03-01"),
    )
    plan.rate(
        Quarter(2025, 2),
        {DEFAULT_RUBRIC.keys[0]: 5},
        rubric=DEFAULT_RUBRIC,
        ctx=ctx("2025-04-01"),
    )

    row = plan_row(plan, RubricSchedule())

    assert (row["latest_quarter"], row["total"], row["band"]) == (
        "2025-Q1",
        21,
        "healthy",
    )
    assert (row["opened_on"], row["last_review_on"], row["review_basis_on"]) == (
        "2025-01-10",
        None,
        "2025-01-10",
    )
    assert row["updated_at"] == "2025-04-01T12:00:00Z"
    assert datetime.fromisoformat(row["updated_at"]).tzinfo == UTC


def test_sqlite_statements_take_question_mark_placeholders() -> None:
    from eventsourcing.sqlite import SQLiteDatastore

    store = ReadStore(SQLiteDatastore(":memory:"))
    query = sql.SQL("SELECT {} FROM {} WHERE a = %s AND b = %s").format(
        sql.Identifier("x"), store.table("t")
    )

    assert store.render(query) == 'SELECT "x" FROM "t" WHERE a = ? AND b = ?'

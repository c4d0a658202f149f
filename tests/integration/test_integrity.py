"""Hash chains: intact stores verify; altered, missing or reordered events do not."""

from __future__ import annotations

from uuid import UUID

import psycopg
import pytest

from soh_es.application import AccountPlans
from soh_es.domain import Context
from soh_es.integrity import verify_export
from soh_es.settings import Settings


def plan_with_five_events(app: AccountPlans, ctx: Context) -> UUID:
    plan_id = app.open_plan("Northwind", ctx=ctx).plan_id
    for size in ("small", "medium", "large", "huge"):
        app.edit_section(plan_id, "profile", {"size": size}, ctx=ctx)
    return plan_id


def test_an_untouched_store_verifies_intact(app: AccountPlans, ctx: Context) -> None:
    first = plan_with_five_events(app, ctx)
    second = plan_with_five_events(app, ctx)
    reports = app.verify()
    assert {r.originator_id for r in reports} == {first, second}
    assert all(r.intact and r.events == 5 for r in reports)


def test_an_export_verifies_offline_and_a_changed_line_does_not(
    app: AccountPlans, ctx: Context
) -> None:
    plan_id = plan_with_five_events(app, ctx)
    lines = list(app.export(plan_id))
    assert [r.intact for r in verify_export(lines)] == [True]

    tampered = lines[2].replace("medium", "MEDIUM")
    assert tampered != lines[2]
    (report,) = verify_export([*lines[:2], tampered, *lines[3:]])
    assert (report.intact, report.first_bad_version) == (False, 3)


@pytest.fixture
def pg_app(postgres_settings: Settings) -> AccountPlans:
    return AccountPlans(postgres_settings)


def run_sql(settings: Settings, statement: str, params: tuple[object, ...]) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as connection:
        connection.execute(statement, params)


@pytest.mark.postgres
def test_one_changed_byte_names_the_plan_and_version(
    pg_app: AccountPlans, postgres_settings: Settings, ctx: Context
) -> None:
    plan_id = plan_with_five_events(pg_app, ctx)
    other = plan_with_five_events(pg_app, ctx)
    run_sql(
        postgres_settings,
        "UPDATE soh_events SET state = overlay(state placing '\\x20'::bytea "
        "from 30 for 1) WHERE originator_id = %s AND originator_version = 3",
        (plan_id,),
    )
    reports = {r.originator_id: r for r in pg_app.verify()}
    assert (reports[plan_id].intact, reports[plan_id].first_bad_version) == (False, 3)
    assert reports[other].intact


@pytest.mark.postgres
def test_a_deleted_event_is_found(
    pg_app: AccountPlans, postgres_settings: Settings, ctx: Context
) -> None:
    plan_id = plan_with_five_events(pg_app, ctx)
    run_sql(
        postgres_settings,
        "DELETE FROM soh_events WHERE originator_id = %s AND originator_version = 4",
        (plan_id,),
    )
    (report,) = pg_app.verify(plan_id)
    assert (report.intact, report.first_bad_version) == (False, 4)


@pytest.mark.postgres
def test_the_last_event_deleted_is_found_through_the_index(
    pg_app: AccountPlans, postgres_settings: Settings, ctx: Context
) -> None:
    plan_id = plan_with_five_events(pg_app, ctx)
    run_sql(
        postgres_settings,
        "DELETE FROM soh_events WHERE originator_id = %s AND originator_version = 5",
        (plan_id,),
    )
    (report,) = pg_app.verify(plan_id)
    assert (report.intact, report.first_bad_version) == (False, 5)


@pytest.mark.postgres
def test_two_reordered_events_are_found(
    pg_app: AccountPlans, postgres_settings: Settings, ctx: Context
) -> None:
    plan_id = plan_with_five_events(pg_app, ctx)
    run_sql(
        postgres_settings,
        "UPDATE soh_events AS e SET state = o.state, topic = o.topic "
        "FROM soh_events AS o WHERE e.originator_id = %s "
        "AND o.originator_id = e.originator_id "
        "AND e.originator_version IN (2, 3) "
        "AND o.originator_version = 5 - e.originator_version",
        (plan_id,),
    )
    (report,) = pg_app.verify(plan_id)
    assert (report.intact, report.first_bad_version) == (False, 2)

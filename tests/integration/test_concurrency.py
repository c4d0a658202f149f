"""Concurrent writers on PostgreSQL never lose an update."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from soh_es.application import AccountPlans
from soh_es.domain import Context
from soh_es.errors import StaleVersionError
from soh_es.settings import Settings

pytestmark = pytest.mark.postgres

WRITERS = 8
EDITS_PER_WRITER = 12


def test_many_threads_editing_one_plan_lose_no_edit_and_reuse_no_version(
    postgres_settings: Settings,
) -> None:
    app = AccountPlans(Settings(postgres_settings.database_url, pool_size=WRITERS))
    plan_id = app.open_plan("Northwind", ctx=Context("alice")).plan_id

    def write(writer: int) -> list[int]:
        versions = []
        for n in range(EDITS_PER_WRITER):
            outcome = app.add_record(
                plan_id,
                "barrier",
                {"description": f"writer {writer} edit {n}"},
                ctx=Context(f"writer-{writer}"),
            )
            versions.append(outcome.version)
        return versions

    with ThreadPoolExecutor(WRITERS) as pool:
        versions = [v for batch in pool.map(write, range(WRITERS)) for v in batch]

    plan = app.get_plan(plan_id)
    descriptions = {b["description"] for b in plan.records["barrier"].values()}
    expected = {
        f"writer {w} edit {n}" for w in range(WRITERS) for n in range(EDITS_PER_WRITER)
    }
    assert descriptions == expected
    assert sorted(versions) == list(range(2, 2 + WRITERS * EDITS_PER_WRITER))
    stored = [e.originator_version for e in app.events.get(plan_id)]
    assert stored == list(range(1, plan.version + 1))
    app.close()


def test_concurrent_writers_with_the_same_expected_version_let_one_win(
    postgres_settings: Settings,
) -> None:
    app = AccountPlans(Settings(postgres_settings.database_url, pool_size=WRITERS))
    plan_id = app.open_plan("Northwind", ctx=Context("alice")).plan_id

    def write(writer: int) -> str:
        try:
            app.edit_section(
                plan_id,
                "goals",
                {"summary": f"writer {writer}"},
                ctx=Context(f"writer-{writer}"),
                expected_version=1,
            )
        except StaleVersionError:
            return "stale"
        return "written"

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(write, range(WRITERS)))

    assert results.count("written") == 1
    assert results.count("stale") == WRITERS - 1
    assert app.get_plan(plan_id).version == 2
    app.close()

"""Export and import: a store moved through JSON lines reads the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from soh_es.application import AccountPlans
from soh_es.domain import Context, Source
from soh_es.errors import ConflictError, ValidationError
from soh_es.quarters import Point
from soh_es.rubric import DEFAULT_RUBRIC
from soh_es.settings import Settings


def fill(app: AccountPlans) -> list[object]:
    ctx = Context("alice", reason="setup", source=Source.CLI, correlation_id="c-1")
    plans = []
    for partner in ("Northwind", "Contoso"):
        plan_id = app.open_plan(partner, ctx=ctx).plan_id
        app.add_record(plan_id, "stakeholder", {"name": f"{partner} CTO"}, ctx=ctx)
        for n in range(120):
            app.edit_section(plan_id, "goals", {"summary": f"take {n}"}, ctx=ctx)
        app.rate_indicators(
            plan_id, "2026-Q4", {k: 4 for k in DEFAULT_RUBRIC.keys}, ctx=ctx
        )
        plans.append(plan_id)
    return plans


def test_an_import_reproduces_ids_versions_actors_times_and_hashes(
    app: AccountPlans, tmp_path: Path
) -> None:
    plans = fill(app)
    lines = list(app.export())
    keys = app.export_keys()
    target = AccountPlans(Settings(f"sqlite:///{tmp_path / 'copy.sqlite3'}"))

    assert target.import_lines(lines, keys=keys) == len(lines)

    assert list(target.export()) == lines
    assert target.plan_ids() == plans
    for plan_id in plans:
        for point in (Point(version=50), Point(version=129)):
            assert target.plan_document(plan_id, point) == app.plan_document(
                plan_id, point
            )
        assert target.history(plan_id).changes == app.history(plan_id).changes
    assert all(report.intact for report in target.verify())
    assert target.snapshots is not None
    assert len(list(target.snapshots.get(plans[0]))) == 1
    target.close()


def test_an_import_refuses_a_store_that_is_not_empty(app: AccountPlans) -> None:
    fill(app)
    with pytest.raises(ConflictError):
        app.import_lines(list(app.export()))


def test_an_import_of_a_broken_chain_writes_nothing(
    app: AccountPlans, tmp_path: Path
) -> None:
    fill(app)
    lines = list(app.export())
    lines[5] = lines[5].replace("take", "TAKE")
    target = AccountPlans(Settings(f"sqlite:///{tmp_path / 'copy.sqlite3'}"))
    with pytest.raises(ValidationError):
        target.import_lines(lines)
    assert target.plan_ids() == []
    target.close()

"""Backup, restore and migration: export, import into a fresh PostgreSQL, rebuild.

The read models rebuilt from the import must equal those of the original,
whether it was kept in SQLite or in PostgreSQL; only notification positions
may differ (PostgreSQL's sequence can leave gaps that an import closes).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from projections import default_projections
from projections.runner import ProjectionRunner
from projections.store import ReadStore
from soh_es.application import AccountPlans
from soh_es.demo import load_demo
from soh_es.domain import Context
from soh_es.settings import Settings

BIN = Path(sys.executable).parent
# Columns that hold notification positions, which an import may renumber.
POSITION_COLUMNS = {"position"}

Tables = dict[str, list[dict[str, Any]]]


@pytest.fixture
def target_url(postgres_database: str) -> Iterator[str]:
    """A fresh PostgreSQL database, named after the test one, dropped after."""
    base, _, name = postgres_database.rpartition("/")
    target = f"{name}_import_{os.getpid()}"
    admin = f"{base}/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(target)
            )
        )
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target)))
    yield f"{base}/{target}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(target)
            )
        )


def read_models(settings: Settings) -> Tables:
    """Every read model table, rows in key order, position columns left out."""
    app = AccountPlans(settings)
    try:
        runner = ProjectionRunner(app, default_projections())
        assert {status.lag for status in runner.status()} == {0}
        store = ReadStore.of(app)
        tables: Tables = {}
        with store.transaction(commit=False) as cursor:
            for projection in runner.projections:
                for table in projection.tables:
                    cursor.execute(
                        sql.SQL("SELECT * FROM {} ORDER BY {}").format(
                            store.table(table.name),
                            sql.SQL(", ").join(map(sql.Identifier, table.primary_key)),
                        )
                    )
                    tables[table.name] = [
                        {k: v for k, v in row.items() if k not in POSITION_COLUMNS}
                        for row in cursor.fetchall()
                    ]
        return tables
    finally:
        app.close()


def _soh(settings: Settings, tmp_path: Path, *args: str) -> None:
    env = {
        **os.environ,
        "SOH_DATABASE_URL": settings.database_url,
        "SOH_DATA_DIR": str(tmp_path),
    }
    subprocess.run([str(BIN / "soh"), *args], env=env, check=True, capture_output=True)


def _rebuild(settings: Settings, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SOH_DATABASE_URL": settings.database_url,
        "SOH_DATA_DIR": str(tmp_path),
    }
    subprocess.run(
        [sys.executable, "-m", "projections", "rebuild"],
        env=env,
        check=True,
        capture_output=True,
    )


def _fill(settings: Settings) -> None:
    """The demo portfolio, plus an erased stakeholder and an archived plan."""
    app = AccountPlans(settings)
    try:
        opened = load_demo(app)
        ctx = Context("maria", reason="migration check")
        record = app.add_record(
            opened[0], "stakeholder", {"name": "Ada Lovelace", "title": "CTO"}, ctx=ctx
        ).record_id
        assert record is not None
        app.erase_stakeholder(opened[0], record, ctx=ctx)
        app.archive_plan(opened[1], ctx=ctx)
    finally:
        app.close()


def test_an_import_into_a_fresh_postgres_rebuilds_the_same_read_models(
    settings: Settings, target_url: str, tmp_path: Path
) -> None:
    _fill(settings)
    _rebuild(settings, tmp_path)
    export, keys = tmp_path / "export.jsonl", tmp_path / "keys.json"
    target = Settings(target_url)

    _soh(settings, tmp_path, "export", "--output", str(export), "--keys", str(keys))
    _soh(target, tmp_path, "import", str(export), "--keys", str(keys))
    _rebuild(target, tmp_path)

    original, imported = read_models(settings), read_models(target)
    assert set(imported) == set(original)
    for name, rows in original.items():
        assert rows, f"{name} is empty; the comparison would prove nothing"
        assert imported[name] == rows, name


def test_the_imported_log_keeps_ids_versions_actors_and_times(
    settings: Settings, target_url: str, tmp_path: Path
) -> None:
    _fill(settings)
    export = tmp_path / "export.jsonl"
    target = Settings(target_url)
    _soh(settings, tmp_path, "export", "--output", str(export))
    _soh(target, tmp_path, "import", str(export))

    source_app, target_app = AccountPlans(settings), AccountPlans(target)
    try:
        assert target_app.plan_ids() == source_app.plan_ids()
        for plan_id in source_app.plan_ids():
            before = source_app.history(plan_id, limit=500).changes
            after = target_app.history(plan_id, limit=500).changes
            assert [
                (c.version, c.actor, c.recorded_at, c.correlation_id) for c in after
            ] == [(c.version, c.actor, c.recorded_at, c.correlation_id) for c in before]
        assert all(report.intact for report in target_app.verify())
        assert list(target_app.export()) == list(source_app.export())
    finally:
        source_app.close()
        target_app.close()

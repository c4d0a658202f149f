"""Fixtures shared by every tier: settings and applications on both stores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from soh_es.application import AccountPlans
from soh_es.domain import Context
from soh_es.settings import Settings

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/soh_test"


def postgres_url() -> str:
    """The URL of the PostgreSQL database the tests may empty at will."""
    return os.environ.get("SOH_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


def _admin_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


@pytest.fixture(scope="session")
def postgres_database() -> str:
    """Creates the test database once; skips, or fails in CI, when unreachable."""
    url = postgres_url()
    name = url.rsplit("/", 1)[1]
    try:
        with psycopg.connect(_admin_url(url), autocommit=True, connect_timeout=3) as c:
            exists = c.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as error:
        if os.environ.get("SOH_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required but unreachable: {error}")
        pytest.skip(f"PostgreSQL is unreachable: {error}")
    return url


def empty_postgres(url: str) -> None:
    """Empties every table of the test database's public schema."""
    with psycopg.connect(url, autocommit=True) as c:
        tables = [
            row[0]
            for row in c.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        ]
        if tables:
            c.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in tables)
                )
            )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for an empty store: a SQLite file, or the emptied test database."""
    if request.param == "sqlite":
        return Settings(f"sqlite:///{tmp_path / 'soh.sqlite3'}")
    url = request.getfixturevalue("postgres_database")
    empty_postgres(url)
    return Settings(url)


@pytest.fixture
def postgres_settings(postgres_database: str) -> Settings:
    """Settings for the emptied PostgreSQL test database alone."""
    empty_postgres(postgres_database)
    return Settings(postgres_database)


@pytest.fixture
def app(settings: Settings) -> Iterator[AccountPlans]:
    """The application service on an empty store of each kind."""
    application = AccountPlans(settings)
    yield application
    application.close()


@pytest.fixture
def ctx() -> Context:
    """A command context for a channel manager called alice."""
    return Context("alice", reason="quarterly update")

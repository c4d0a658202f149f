"""Erasure reaches everywhere: no table, file or response keeps erased values.

A stakeholder's personal data is written, read through every kind of read
and projected into the read models; then the stakeholder is erased. From then
on the values, and the key that protected them, appear in no table of the
store (events, snapshots, index, keys, read models), nowhere in a SQLite
database file, and in no response of the API, while the hash chains still
verify and the non-personal facts stay as they were.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.config import ApiSettings
from projections import default_projections
from projections.runner import ProjectionRunner
from soh_es.application import AccountPlans
from soh_es.identity import Role
from soh_es.integrity import verify_export
from soh_es.settings import Settings

PERSONAL = {
    "name": "Zephyrine Quillfeather",
    "email": "zq.partner-7d1@example.test",
    "phone": "+44 7700 900123",
    "notes": "Prefers calls after four; goes by Quilly",
}
CHANGED_EMAIL = "quilly.moved-5c2@example.test"
KEPT = {"title": "VP Channel Alliances", "decision_role": "decision_maker"}
OTHER = {"name": "Bartholomew Kept", "email": "bart.kept@example.test"}


class Caller:
    """Sends requests as the admin and keeps every response body it saw."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client = client
        self.token = token
        self.bodies: list[tuple[str, bytes]] = []

    def __call__(self, method: str, path: str, body: Any = None) -> Any:
        reply = self.client.open(
            path,
            method=method,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert reply.status_code < 300, (path, reply.get_data(as_text=True))
        self.bodies.append((f"{method} {path}", reply.get_data()))
        return reply.json


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[Flask, Caller]]:
    """The API on an empty store of each kind, with an admin caller."""
    app = create_app(settings, api_settings=ApiSettings())
    identities = app.extensions["soh"].identities
    identities.add_user("admin", Role.ADMIN)
    caller = Caller(app.test_client(), identities.create_token("admin")[1])
    yield app, caller
    app.extensions["soh"].plans.close()


def project(application: AccountPlans) -> None:
    """Brings every read model up to the head of the log."""
    ProjectionRunner(application, default_projections()).catch_up()


def needles(key: bytes) -> dict[str, bytes]:
    """The byte strings that must not be found anywhere after the erasure."""
    found = {name: value.encode() for name, value in PERSONAL.items()}
    found["changed email"] = CHANGED_EMAIL.encode()
    found["key"] = key
    found["key in hex"] = key.hex().encode()
    return found


def as_bytes(value: Any) -> bytes:
    """Returns a column value as the bytes to search."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


def table_rows(settings: Settings) -> Iterator[tuple[str, bytes]]:
    """Yields every value of every table of the store, with its table."""
    if settings.is_postgres:
        with psycopg.connect(settings.database_url) as connection:
            tables = [
                row[0]
                for row in connection.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            ]
            for table in tables:
                query = psycopg.sql.SQL("SELECT * FROM {}").format(
                    psycopg.sql.Identifier(table)
                )
                for row in connection.execute(query):
                    for value in row:
                        yield table, as_bytes(value)
        return
    path = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        ]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    yield table, as_bytes(value)


def sqlite_files(settings: Settings) -> Iterator[tuple[str, bytes]]:
    """Yields the bytes of the SQLite database and its WAL, after a checkpoint.

    Until a checkpoint the WAL still holds the pages as they were before the
    erasure (the README's Limits say so); after it, neither file may.
    """
    if settings.is_postgres:
        return
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for file in (path, path.with_name(path.name + "-wal")):
        if file.exists():
            yield file.name, file.read_bytes()


def found_in(
    places: Iterator[tuple[str, bytes]], sought: dict[str, bytes]
) -> set[tuple[str, str]]:
    """Returns (place, what) for each sought value found in a place."""
    return {
        (place, name)
        for place, data in places
        for name, value in sought.items()
        if value in data
    }


def test_an_erased_stakeholder_is_gone_from_every_table_file_and_response(
    served: tuple[Flask, Caller], settings: Settings
) -> None:
    app, call = served
    application: AccountPlans = app.extensions["soh"].plans

    # A plan whose stakeholder is written, changed, read and projected.
    plan = call("POST", "/plans", {"partner": "Fabrikam"})["id"]
    stakeholders = f"/plans/{plan}/stakeholders"
    record = call("POST", stakeholders, {"values": {**PERSONAL, **KEPT}})["id"]
    call("PATCH", f"{stakeholders}/{record}", {"values": {"email": CHANGED_EMAIL}})
    other = call("POST", stakeholders, {"values": OTHER})["id"]
    call("PATCH", f"/plans/{plan}/sections/profile", {"values": {"size": "large"}})
    before_erasure = application.get_plan(UUID(plan)).version
    key = application.export_keys()[record]
    assert key is not None
    sought = needles(bytes.fromhex(key))
    project(application)
    assert found_in(table_rows(settings), sought), "the scan sees the values"

    # The erasure, then every read there is.
    call("POST", f"{stakeholders}/{record}/erasure", {"reason": "asked to"})
    project(application)
    call.bodies.clear()
    reads = [
        f"/plans/{plan}",
        f"/plans/{plan}?at=v{before_erasure}",
        f"/plans/{plan}?at=v3",
        f"/plans/{plan}?at=2100-Q1",
        stakeholders,
        f"{stakeholders}/{record}",
        f"/plans/{plan}/history?limit=500",
        f"/plans/{plan}/history?section=profile&limit=500",
        f"/plans/{plan}/diff?from=1",
        f"/plans/{plan}/diff?from=v2&to=v{before_erasure}",
        f"/plans/{plan}/scorecard",
        "/plans",
        "/admin/verify",
        f"/plans/{plan}/verify",
        *read_model_paths(app, plan),
    ]
    for path in reads:
        call("GET", path)
    exported = list(application.export())
    call.bodies.append(("export", "\n".join(exported).encode()))
    call.bodies.append(("exported keys", str(application.export_keys()).encode()))

    assert found_in(iter(call.bodies), sought) == set()
    assert found_in(table_rows(settings), sought) == set()
    assert found_in(sqlite_files(settings), sought) == set()

    # What is not personal stays, and every chain still verifies.
    erased = call("GET", f"{stakeholders}/{record}")
    assert erased["name"] == "[erased]" and erased["title"] == KEPT["title"]
    assert call("GET", f"{stakeholders}/{other}")["name"] == OTHER["name"]
    assert call("GET", f"/plans/{plan}")["sections"]["profile"]["size"] == "large"
    assert call("GET", "/admin/verify")["intact"] is True
    assert all(report.intact for report in application.verify())
    assert all(report.intact for report in verify_export(exported))


def read_model_paths(app: Flask, plan: str) -> list[str]:
    """The reads served from the read models, those this API has."""
    wanted = {
        "/plans/<uuid:plan_id>/digest": "?since=2000-01-01",
        "/plans/<uuid:plan_id>/review-preparation": "",
        "/plans/<uuid:plan_id>/scores": "",
        "/audit": "?limit=500",
        "/portfolio": "",
    }
    served = {rule.rule for rule in app.url_map.iter_rules()}
    return [
        rule.replace("<uuid:plan_id>", plan) + query
        for rule, query in wanted.items()
        if rule in served
    ]

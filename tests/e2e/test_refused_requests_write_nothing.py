"""Generated invalid requests, in process: none breaks the server or writes.

The OpenAPI document's operations get a bounded number of generated requests
that break their schemas. None may answer 5xx, and none answered 4xx may add
a row to the event log, the users, the tokens or the stakeholder keys. The
larger run against a real server is ``bench/fuzz.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from api import create_app
from api.config import ApiSettings
from soh_es.identity import Role
from soh_es.settings import Settings

EXAMPLES_PER_OPERATION = 4
COUNTED = ("stored_events", "soh_users", "soh_tokens", "soh_stakeholder_keys")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, Path]]:
    """The app on a SQLite file, with a seeded plan; the file's path."""
    path = tmp_path_factory.mktemp("refused") / "soh.sqlite3"
    app = create_app(Settings(f"sqlite:///{path}"), api_settings=ApiSettings())
    yield app, path
    app.extensions["soh"].plans.close()


def rows(path: Path) -> int:
    """The rows of every table a write would change."""
    with sqlite3.connect(path) as connection:
        return sum(
            connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in COUNTED
        )


def test_no_refused_generated_request_writes_anything(
    served: tuple[Flask, Path],
) -> None:
    app, path = served
    identities = app.extensions["soh"].identities
    identities.add_user("admin", Role.ADMIN)
    token = identities.create_token("admin")[1]
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    plan = client.post("/plans", json={"partner": "Seeded"}, headers=headers).json
    record = client.post(
        f"/plans/{plan['id']}/initiatives",
        json={"values": {"title": "Seeded", "quarter": "2026-Q4"}},
        headers=headers,
    ).json
    known = {"plan_id": plan["id"], "record_id": record["id"]}

    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        names = {p.name for p in operation.path_parameters}
        fixed = {name: value for name, value in known.items() if name in names}
        strategy = operation.as_strategy(
            GenerationMode.NEGATIVE, path_parameters=fixed or None
        )

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            nonlocal tried
            before = rows(path)
            response = case.call(headers=headers)
            tried += 1
            status = response.status_code
            if status >= 500:
                failures.append(f"{case.operation.label} answered {status}")
            elif status >= 400 and rows(path) != before:
                failures.append(f"{case.operation.label} answered {status} but wrote")

        run()
    assert tried > 100
    assert failures == []

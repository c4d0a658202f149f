"""Generated requests against the served OpenAPI document, thousands of them.

Starts gunicorn and a projection worker on a PostgreSQL database of its own,
seeds a plan with an initiative and a stakeholder so that generated requests
reach real records, and sends every operation ``--examples`` generated
requests in each mode: invalid ones (``negative``) and valid ones
(``positive``). After each request it counts the rows of the event log and
of the users, tokens and keys tables: a request answered 4xx must leave that
count as it was. It reports the inputs tried, the answers by status, the
server errors (which must be zero; a 503 the document promises, with
Retry-After, is counted apart) and the refused requests that wrote something
(which must be zero), and writes them to ``bench/results/fuzz.json``.

    .venv/bin/python bench/fuzz.py --examples 30
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from psycopg import sql
from schemathesis import GenerationMode

from projections import default_projections
from projections.runner import ProjectionRunner
from soh_es.application import AccountPlans
from soh_es.identity import Identities, Role
from soh_es.settings import Settings

BIN = Path(sys.executable).parent
RESULTS = Path(__file__).parent / "results"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/soh_bench_fuzz"
DOCUMENTED_503 = ("/problems/projection-lagging", "/problems/store-unavailable")
COUNTED = ("soh_events", "soh_users", "soh_tokens", "soh_stakeholder_keys")


class Tally:
    """Counts inputs and answers, and keeps the failures to report."""

    def __init__(self, database_url: str) -> None:
        self.connection = psycopg.connect(database_url, autocommit=True)
        self.inputs = 0
        self.statuses: Counter[int] = Counter()
        self.server_errors: list[str] = []
        self.lagging = 0
        self.refused_but_written: list[str] = []

    def rows(self) -> int:
        """The rows of the tables a write would change."""
        total = 0
        for table in COUNTED:
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            row = self.connection.execute(query).fetchone()
            total += 0 if row is None else int(row[0])
        return total


def recreate_database(url: str) -> None:
    """Drops and creates the fuzzing database."""
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def admin_token(url: str) -> str:
    """Creates the tables (read models too) and an admin; returns its token."""
    app = AccountPlans(Settings(url))
    try:
        identities = Identities.of(app)
        identities.create_tables()
        identities.add_user("admin", Role.ADMIN)
        ProjectionRunner(app, default_projections()).setup()
        return identities.create_token("admin")[1]
    finally:
        app.close()


def seed(base: str, token: str) -> dict[str, str]:
    """Opens a plan with an initiative and a stakeholder; returns their ids."""

    def post(path: str, body: dict[str, Any]) -> str:
        reply = requests.post(
            base + path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        reply.raise_for_status()
        return str(reply.json()["id"])

    plan = post("/plans", {"partner": "Seeded"})
    post(f"/plans/{plan}/stakeholders", {"values": {"name": "Seeded Person"}})
    record = post(
        f"/plans/{plan}/initiatives",
        {"values": {"title": "Seeded", "quarter": "2026-Q4"}},
    )
    return {"plan_id": plan, "record_id": record}


def exercise(
    operation: Any,
    mode: GenerationMode,
    examples: int,
    base: str,
    token: str,
    known: dict[str, str],
    tally: Tally,
) -> None:
    """Sends generated requests to one operation and tallies every answer."""
    names = {p.name for p in operation.path_parameters}
    fixed = {name: value for name, value in known.items() if name in names}
    strategy = operation.as_strategy(mode, path_parameters=fixed or None)
    session = requests.Session()

    @given(case=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        before = tally.rows()
        response = case.call(
            base_url=base,
            session=session,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        tally.inputs += 1
        tally.statuses[response.status_code] += 1
        label = f"{operation.label} -> {response.status_code}"
        if response.status_code == 503 and _documented(response):
            tally.lagging += 1
        elif response.status_code >= 500:
            tally.server_errors.append(f"{label}: {response.text[:200]}")
        elif 400 <= response.status_code < 500 and tally.rows() != before:
            tally.refused_but_written.append(label)

    run()


def main() -> int:
    """Starts the server, fuzzes every operation, prints and saves the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--examples", type=int, default=30)
    parser.add_argument("--log", default="fuzz-server.log")
    args = parser.parse_args()

    recreate_database(args.database_url)
    token = admin_token(args.database_url)
    port = 19000 + os.getpid() % 1000
    env = {
        **os.environ,
        "SOH_DATABASE_URL": args.database_url,
        "SOH_CREATE_TABLES": "no",
        "SOH_WRITE_RATE_LIMIT": "off",
    }
    log = Path(args.log).open("wb")
    server = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-w",
            "1",
            "--threads",
            "4",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "api:create_app()",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "projections", "run", "--poll-interval", "0.2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        _wait_until_ready(base)
        known = seed(base, token)
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        tally = Tally(args.database_url)
        operations = [result.ok() for result in schema.get_all_operations()]
        for mode in (GenerationMode.NEGATIVE, GenerationMode.POSITIVE):
            for operation in operations:
                exercise(operation, mode, args.examples, base, token, known, tally)
    finally:
        for process in (server, worker):
            process.terminate()
            process.wait(timeout=30)
        log.close()

    report = {
        "operations": len(operations),
        "examples_per_operation_and_mode": args.examples,
        "inputs_tried": tally.inputs,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "server_errors": len(tally.server_errors),
        "documented_503": tally.lagging,
        "refused_but_written": len(tally.refused_but_written),
        "seconds": round(time.monotonic() - started, 1),
        "failures": tally.server_errors[:20] + tally.refused_but_written[:20],
    }
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fuzz.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0 if not tally.server_errors and not tally.refused_but_written else 1


def _documented(response: Any) -> bool:
    """Whether a 503 is one the document promises, with a Retry-After.

    A read that asks for a position past the head of the log (a generated
    ``after``) waits, then answers 503 projection-lagging.
    """
    try:
        problem = response.json().get("type")
    except ValueError:
        return False
    headers = {name.lower() for name in response.headers}
    return problem in DOCUMENTED_503 and "retry-after" in headers


def _wait_until_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/openapi.json", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("The server did not answer in time.")


if __name__ == "__main__":
    raise SystemExit(main())

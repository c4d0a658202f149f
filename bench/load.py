"""Load through the real HTTP server: concurrent clients writing to shared plans.

Starts gunicorn and a projection worker on a PostgreSQL database of its own,
then runs ``--clients`` threads, each with its own editor token, for
``--seconds`` seconds. Each client edits the profile of a random plan among
``--plans``, with a value and an ``X-Request-Id`` used by no other request,
so that every write changes something and can be found again.

Afterwards it proves that every acknowledged write is in the event log
exactly once (by the correlation id its events carry), that no refused or
unanswered write is there at all, and that the audit read model holds each
acknowledged write exactly once. Requests per second and latency percentiles
are printed and written to ``bench/results/load.json``.

    .venv/bin/python bench/load.py --database-url postgresql://.../soh_load
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from projections import default_projections
from projections.runner import ProjectionRunner
from soh_es.application import AccountPlans
from soh_es.domain import Context
from soh_es.identity import Identities, Role
from soh_es.settings import Settings

BIN = Path(sys.executable).parent
RESULTS = Path(__file__).parent / "results"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/soh_bench_load"


@dataclass
class Answer:
    """One request: its id, status (0 when unanswered) and latency in seconds."""

    request_id: str
    status: int
    seconds: float


@dataclass
class Report:
    """What the run measured and what the proof found."""

    clients: int
    plans: int
    seconds: float
    server: str
    requests: int
    acknowledged: int
    statuses: dict[str, int]
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    events_in_log: int
    acknowledged_once_in_log: int
    acknowledged_missing: int
    acknowledged_duplicated: int
    refused_but_written: int
    acknowledged_once_in_audit: int
    projection_catch_up_seconds: float
    machine: dict[str, Any] = field(default_factory=dict)


def recreate_database(url: str) -> None:
    """Drops and creates the benchmark database."""
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def prepare(url: str, clients: int, plans: int) -> tuple[list[str], list[str]]:
    """Creates the tables, one editor token per client, and the plans."""
    app = AccountPlans(Settings(url))
    try:
        identities = Identities.of(app)
        identities.create_tables()
        tokens = []
        for number in range(clients):
            identities.add_user(f"client{number}", Role.EDITOR)
            tokens.append(identities.create_token(f"client{number}")[1])
        ProjectionRunner(app, default_projections()).setup()
        ids = [
            str(app.open_plan(f"Partner {n}", ctx=Context("bench")).plan_id)
            for n in range(plans)
        ]
    finally:
        app.close()
    return tokens, ids


def client(
    url: str,
    token: str,
    number: int,
    plans: list[str],
    deadline: float,
    answers: list[Answer],
) -> None:
    """Sends profile edits until the deadline; records every answer."""
    rng = random.Random(number)
    sent = 0
    while time.monotonic() < deadline:
        sent += 1
        request_id = f"c{number}-{sent}"
        body = {"values": {"size": request_id}, "reason": "load"}
        request = urllib.request.Request(
            f"{url}/plans/{rng.choice(plans)}/sections/profile",
            data=json.dumps(body).encode(),
            method="PATCH",
        )
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("X-Request-Id", request_id)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError:
            status = 0
        answers.append(Answer(request_id, status, time.monotonic() - started))


def wait_for_projections(url: str, timeout: float) -> float:
    """Waits for every projection to reach the head; returns the seconds taken."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with psycopg.connect(url) as connection:
            head = connection.execute(
                "SELECT coalesce(max(notification_id), 0) FROM soh_events"
            ).fetchone()
            low = connection.execute(
                "SELECT min(position) FROM soh_projection_positions"
            ).fetchone()
        if head and low and low[0] is not None and low[0] >= head[0]:
            return time.monotonic() - started
        time.sleep(0.2)
    raise SystemExit("The projections did not catch up in time.")


def counts(url: str) -> tuple[Counter[str], Counter[str], int]:
    """Counts events by correlation id, in the log and in the audit model."""
    in_log: Counter[str] = Counter()
    in_audit: Counter[str] = Counter()
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT state FROM soh_events").fetchall()
        for (state,) in rows:
            in_log[json.loads(bytes(state))["correlation_id"]] += 1
        for (correlation_id,) in connection.execute(
            "SELECT correlation_id FROM soh_read_audit"
        ):
            in_audit[correlation_id] += 1
    return in_log, in_audit, len(rows)


def percentile(values: list[float], fraction: float) -> float:
    """Returns the value below which ``fraction`` of the sorted values lie."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, int(fraction * len(ordered)))
    return ordered[index]


def run(args: argparse.Namespace) -> Report:
    """Runs the load and the proof; returns the report."""
    recreate_database(args.database_url)
    tokens, plans = prepare(args.database_url, args.clients, args.plans)
    env = {
        **os.environ,
        "SOH_DATABASE_URL": args.database_url,
        "SOH_CREATE_TABLES": "no",
        "SOH_WRITE_RATE_LIMIT": "off",
        "SOH_DB_POOL_SIZE": str(args.threads),
    }
    port = 18000 + os.getpid() % 1000
    server_command = [
        str(BIN / "gunicorn"),
        "-w",
        str(args.workers),
        "--threads",
        str(args.threads),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "api:create_app()",
    ]
    log = (Path(args.log)).open("wb")
    server = subprocess.Popen(
        server_command, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "projections", "run", "--poll-interval", "0.5"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(url)
        answers: list[Answer] = []
        deadline = time.monotonic() + args.seconds
        threads = [
            threading.Thread(
                target=client,
                args=(url, tokens[n], n, plans, deadline, answers),
            )
            for n in range(args.clients)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        catch_up = wait_for_projections(args.database_url, 120.0)
        worker_alive = worker.poll() is None
    finally:
        for process in (server, worker):
            process.terminate()
            process.wait(timeout=30)
        log.close()
    if not worker_alive:
        raise SystemExit("The projection worker died; see the log.")

    in_log, in_audit, events = counts(args.database_url)
    acknowledged = [a for a in answers if a.status == 200]
    refused = [a for a in answers if a.status != 200]
    latencies = [a.seconds * 1000 for a in answers]
    return Report(
        clients=args.clients,
        plans=args.plans,
        seconds=round(elapsed, 1),
        server=f"gunicorn -w {args.workers} --threads {args.threads} (gthread)",
        requests=len(answers),
        acknowledged=len(acknowledged),
        statuses={str(k): v for k, v in Counter(a.status for a in answers).items()},
        requests_per_second=round(len(answers) / elapsed, 1),
        p50_ms=round(statistics.median(latencies), 1),
        p99_ms=round(percentile(latencies, 0.99), 1),
        max_ms=round(max(latencies), 1),
        events_in_log=events,
        acknowledged_once_in_log=sum(
            1 for a in acknowledged if in_log[a.request_id] == 1
        ),
        acknowledged_missing=sum(1 for a in acknowledged if in_log[a.request_id] == 0),
        acknowledged_duplicated=sum(
            1 for a in acknowledged if in_log[a.request_id] > 1
        ),
        refused_but_written=sum(1 for a in refused if in_log[a.request_id] > 0),
        acknowledged_once_in_audit=sum(
            1 for a in acknowledged if in_audit[a.request_id] == 1
        ),
        projection_catch_up_seconds=round(catch_up, 2),
        machine={
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    )


def _wait_until_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/openapi.json", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("The server did not answer in time.")


def main() -> int:
    """Parses the options, runs the load, prints and saves the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--plans", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--log", default="load-server.log")
    args = parser.parse_args()
    report = run(args)
    print(json.dumps(asdict(report), indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    proven = (
        report.acknowledged_once_in_log == report.acknowledged
        and report.refused_but_written == 0
        and report.acknowledged_once_in_audit == report.acknowledged
    )
    return 0 if proven else 1


if __name__ == "__main__":
    raise SystemExit(main())

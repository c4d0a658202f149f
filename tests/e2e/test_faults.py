"""The database goes away while writes are in flight, then comes back.

A real server (gunicorn) and a projection worker run against a private
PostgreSQL cluster. Writers keep sending commands, each tagged with its own
request id, while the cluster is stopped and started again. Every answer is
a success or a 503 with Retry-After, within a bound; every acknowledged
command is in the log exactly once and no command is in it by halves; the
service takes writes again by itself; the worker survives and its read
models end equal to a replay.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from projections import default_projections
from projections.runner import ProjectionRunner
from projections.store import ReadStore
from soh_es.application import AccountPlans
from soh_es.domain import Context
from soh_es.identity import Identities, Role
from soh_es.settings import Settings
from tests.e2e.conftest import BIN, free_port, wait_until_ready
from tests.e2e.private_postgres import PrivateCluster, private_postgres
from tests.integration.test_projections import assert_read_models_match_replay

__all__ = ["private_postgres"]

WRITERS = 4
INDICATORS = (
    "brings_opportunities",
    "recommends_solutions",
    "seeks_input",
    "invests_in_learning",
    "responds_quickly",
    "prioritizes_us",
    "shares_intelligence",
)
ANSWER_BOUND = 20.0
BEFORE, OUTAGE, AFTER = 2.0, 6.0, 5.0


@dataclass
class Sent:
    """One command sent: its request id, how many events it records, its answer."""

    request_id: str
    events: int
    phase: str
    status: int = 0
    retry_after: str | None = None
    seconds: float = 0.0
    answered_at: float = 0.0


@dataclass
class Traffic:
    """What the writers sent, and the phase they are in."""

    token: str
    url: str
    phase: str = "before"
    sent: list[Sent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def send(traffic: Traffic, method: str, path: str, body: Any, sent: Sent) -> None:
    """Sends one command and records its answer (status 0: no answer)."""
    request = urllib.request.Request(
        traffic.url + path, data=json.dumps(body).encode(), method=method
    )
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {traffic.token}")
    request.add_header("X-Request-Id", sent.request_id)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=ANSWER_BOUND + 10) as response:
            sent.status = response.status
    except urllib.error.HTTPError as error:
        sent.status = error.code
        sent.retry_after = error.headers.get("Retry-After")
    except OSError:
        sent.status = 0
    sent.answered_at = time.monotonic()
    sent.seconds = sent.answered_at - started
    with traffic.lock:
        traffic.sent.append(sent)


def write(
    traffic: Traffic, writer: int, plans: list[str], stop: threading.Event
) -> None:
    """Rates seven indicators of its own plan and edits the shared plan, in
    turn, until told to stop."""
    number = 0
    while not stop.is_set():
        number += 1
        request_id = f"w{writer}-{number}"
        if number % 2:
            value = number % 5 + 1
            body = {"quarter": "2026-Q1", "ratings": dict.fromkeys(INDICATORS, value)}
            sent = Sent(request_id, len(INDICATORS), traffic.phase)
            send(traffic, "POST", f"/plans/{plans[writer]}/ratings", body, sent)
        else:
            body = {"values": {"size": request_id}}
            sent = Sent(request_id, 1, traffic.phase)
            send(traffic, "PATCH", f"/plans/{plans[-1]}/sections/profile", body, sent)
        if sent.status in (0, 503):
            time.sleep(0.2)


@dataclass
class Service:
    """The server and worker processes on the private cluster."""

    url: str
    token: str
    plans: list[str]
    server: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]


def prepare(url: str) -> tuple[str, list[str]]:
    """Creates the tables, an editor's token and the plans; returns them."""
    app = AccountPlans(Settings(url))
    try:
        identities = Identities.of(app)
        identities.create_tables()
        identities.add_user("writer", Role.EDITOR)
        token = identities.create_token("writer")[1]
        ProjectionRunner(app, default_projections()).setup()
        plans = [
            str(app.open_plan(f"Partner {n}", ctx=Context("writer")).plan_id)
            for n in range(WRITERS + 1)
        ]
    finally:
        app.close()
    return token, plans


@pytest.fixture
def service(private_postgres: PrivateCluster, tmp_path: Path) -> Iterator[Service]:
    """gunicorn with two workers and a projection worker, on the cluster."""
    token, plans = prepare(private_postgres.url)
    env = {
        **os.environ,
        "SOH_DATABASE_URL": private_postgres.url,
        "SOH_CREATE_TABLES": "no",
        "SOH_WRITE_RATE_LIMIT": "off",
        "SOH_DB_POOL_SIZE": "4",
    }
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-w",
            "2",
            "--threads",
            "4",
            "--timeout",
            "120",
            "-b",
            f"127.0.0.1:{port}",
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
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, server)  # type: ignore[arg-type]
        yield Service(url, token, plans, server, worker)
    finally:
        for process in (server, worker):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def events_by_request(url: str) -> Counter[str]:
    """Counts the events in the log by the request id they carry."""
    counts: Counter[str] = Counter()
    with psycopg.connect(url) as connection:
        for (state,) in connection.execute("SELECT state FROM soh_events"):
            counts[json.loads(bytes(state))["correlation_id"]] += 1
    return counts


def wait_for_projections(url: str, timeout: float) -> None:
    """Waits until every projection's position reaches the head of the log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(url) as connection:
            head = connection.execute(
                "SELECT coalesce(max(notification_id), 0) FROM soh_events"
            ).fetchone()
            low = connection.execute(
                "SELECT min(position) FROM soh_projection_positions"
            ).fetchone()
        if head and low and low[0] is not None and low[0] >= head[0]:
            return
        time.sleep(0.2)
    raise AssertionError("The projections did not catch up in time.")


@pytest.mark.postgres
def test_an_outage_loses_no_acknowledged_write_and_leaves_no_half_command(
    private_postgres: PrivateCluster, service: Service
) -> None:
    traffic = Traffic(service.token, service.url)
    stop = threading.Event()
    writers = [
        threading.Thread(target=write, args=(traffic, n, service.plans, stop))
        for n in range(WRITERS)
    ]
    for thread in writers:
        thread.start()
    try:
        time.sleep(BEFORE)
        traffic.phase = "outage"
        private_postgres.stop("fast")
        time.sleep(OUTAGE)
        traffic.phase = "after"
        private_postgres.start()
        restarted = time.monotonic()
        time.sleep(AFTER)
    finally:
        stop.set()
        for thread in writers:
            thread.join(timeout=ANSWER_BOUND + 15)

    by_phase = {
        phase: Counter(s.status for s in traffic.sent if s.phase == phase)
        for phase in ("before", "outage", "after")
    }
    slowest = max(s.seconds for s in traffic.sent)
    print(f"answers by phase: {by_phase}; slowest answer {slowest:.1f} s")
    assert {s.status for s in traffic.sent} <= {200, 503}, by_phase
    assert all(s.retry_after for s in traffic.sent if s.status == 503)
    assert slowest < ANSWER_BOUND
    assert by_phase["before"][200] > 0
    # A request sent during the outage is either refused with 503 once its
    # wait for a connection ends, or held until the database is back.
    assert sum(by_phase["outage"].values()) > 0
    recovered = [
        s for s in traffic.sent if s.status == 200 and s.answered_at > restarted
    ]
    assert recovered, "the service took writes again by itself"

    counts = events_by_request(private_postgres.url)
    for sent in traffic.sent:
        found = counts.get(sent.request_id, 0)
        if sent.status == 200:
            assert found == sent.events, sent
        else:
            assert found in (0, sent.events), sent

    assert service.worker.poll() is None, "the projection worker survived"
    wait_for_projections(private_postgres.url, 30.0)
    app = AccountPlans(Settings(private_postgres.url, create_tables=False))
    try:
        assert_read_models_match_replay(app, ReadStore.of(app))
        assert all(report.intact for report in app.verify())
    finally:
        app.close()

"""The production layout: gunicorn with two workers and a projection worker.

As the compose file runs it: ``soh init`` once, then the API and the worker
with SOH_CREATE_TABLES=no, JSON logs and gunicorn.conf.py, on PostgreSQL.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from soh_es.settings import Settings
from tests.e2e.conftest import (
    BIN,
    START_TIMEOUT,
    Server,
    environment,
    free_port,
    stop,
    wait_until_ready,
)
from tests.e2e.test_api_lifecycle import INDICATORS

ROOT = Path(__file__).resolve().parents[2]
PARTNERS = [f"Partner {n}" for n in range(8)]


@dataclass
class Deployment:
    """The API under gunicorn, the projection worker, and their log files."""

    server: Server
    worker: subprocess.Popen[str]
    api_log: Path
    worker_log: Path

    def api_lines(self) -> list[dict[str, Any]]:
        """The JSON lines the API processes wrote so far."""
        return _json_lines(self.api_log)


def _json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "soh"), *args], env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def _wait_for_line(path: Path, words: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if words in path.read_text():
            return
        if process.poll() is not None:
            raise RuntimeError(f"Exited with {process.returncode}: {path.read_text()}")
        time.sleep(0.1)
    raise RuntimeError(f"{words!r} never appeared in {path}")


@pytest.fixture
def deployment(postgres_settings: Settings, tmp_path: Path) -> Iterator[Deployment]:
    """``soh init``, a user and token, the worker, then gunicorn with two workers."""
    env = environment(postgres_settings, tmp_path)
    env.update(SOH_LOG_FORMAT="json", WEB_CONCURRENCY="2")
    _run(env, "init")
    env["SOH_CREATE_TABLES"] = "no"
    _run(env, "users", "add", "erin", "--role", "editor")
    token = _run(env, "tokens", "create", "erin")

    worker_log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "projections", "run", "--poll-interval", "0.2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=worker_log.open("w"),
        text=True,
    )
    api_log = tmp_path / "api.log"
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            "api:create_app()",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=api_log.open("w"),
        text=True,
    )
    server = Server(f"http://127.0.0.1:{port}", process, token)
    running = Deployment(server, worker, api_log, worker_log)
    try:
        _wait_for_line(worker_log, "Projection runner started", worker)
        wait_until_ready(server.url, process)
        yield running
    finally:
        stop(server)
        worker.terminate()
        worker.wait(timeout=10)


def _write_a_plan(server: Server, partner: str, value: int) -> tuple[str, int]:
    """Opens a plan, rates two quarters and edits a section; returns id, position."""
    opened = server.call(
        "POST", "/plans", {"partner": partner}, headers={"X-Request-ID": partner}
    )
    assert opened.status == 201, opened.body
    plan = opened.body["id"]
    for quarter, rating in (("2026-Q1", value), ("2026-Q2", value + 1)):
        rated = server.call(
            "POST",
            f"/plans/{plan}/ratings",
            {"quarter": quarter, "ratings": dict.fromkeys(INDICATORS, rating)},
        )
        assert rated.status == 200, rated.body
    edited = server.call(
        "PATCH",
        f"/plans/{plan}/sections/goals",
        {"values": {"summary": f"Grow {partner}"}},
    )
    assert edited.status == 200, edited.body
    return plan, int(edited.headers["Soh-Position"])


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


@pytest.mark.postgres
def test_two_gunicorn_workers_and_a_projection_worker_agree(
    deployment: Deployment,
) -> None:
    server = deployment.server
    values = {partner: 1 + n % 4 for n, partner in enumerate(PARTNERS)}

    with ThreadPoolExecutor(max_workers=4) as pool:
        written = list(
            pool.map(lambda p: _write_a_plan(server, p, values[p]), PARTNERS)
        )
    plans = {
        partner: plan for partner, (plan, _) in zip(PARTNERS, written, strict=True)
    }
    after = max(position for _, position in written)

    # Both workers answered writes.
    requests = [line for line in deployment.api_lines() if "status" in line]
    writers = {line["process"] for line in requests if line["method"] != "GET"}
    assert len(writers) == 2

    # Every read, whichever worker answers it, sees the same plans.
    lists = [server.call("GET", f"/plans?after={after}").body for _ in range(8)]
    assert all(listing == lists[0] for listing in lists)
    assert sorted(item["partner"] for item in lists[0]["items"]) == sorted(PARTNERS)
    readers = {line["process"] for line in deployment.api_lines() if "status" in line}
    assert len(readers) == 2

    for partner, plan in plans.items():
        history = server.call("GET", f"/plans/{plan}/history").body
        events = [item["event"] for item in history["items"]]
        assert events.count("IndicatorRated") == 2 * len(INDICATORS)
        assert history["items"][0]["correlation_id"] == partner
        scores = server.call("GET", f"/plans/{plan}/scores?after={after}").body
        totals = [q["total"] for q in scores["quarters"]]
        assert totals == [7 * values[partner], 7 * (values[partner] + 1)]
        replayed = server.call("GET", f"/plans/{plan}/scorecard").body
        assert [q["total"] for q in replayed["quarters"]] == totals


@pytest.mark.postgres
def test_metrics_add_up_across_the_workers_and_readiness_follows_the_worker(
    deployment: Deployment,
) -> None:
    server = deployment.server
    with ThreadPoolExecutor(max_workers=4) as pool:
        written = list(pool.map(lambda p: _write_a_plan(server, p, 2), PARTNERS))
    after = max(position for _, position in written)
    assert server.call("GET", f"/plans?after={after}").status == 200

    with urllib.request.urlopen(server.url + "/metrics", timeout=30) as response:
        text = response.read().decode()
    ready = server.call("GET", "/readyz")

    opened = _metric(
        text, "soh_http_requests_total", method="POST", route="/plans", status="201"
    )
    assert opened == len(PARTNERS)
    assert _metric(
        text, "soh_events_appended_total", event="AccountPlan.Opened"
    ) == len(PARTNERS)
    assert _metric(
        text, "soh_events_appended_total", event="AccountPlan.IndicatorRated"
    ) == 2 * len(INDICATORS) * len(PARTNERS)
    assert _metric(text, "soh_http_request_duration_seconds_count") >= 4 * len(PARTNERS)
    assert _metric(text, "soh_projection_lag") == 0
    assert _metric(text, "soh_projection_position", projection="current_plans") >= (
        after
    )
    assert ready.status == 200
    assert {p["lag"] for p in ready.body["projections"]} == {0}
    batches = [
        line
        for line in _json_lines(deployment.worker_log)
        if line["message"].startswith("Projected ")
    ]
    assert batches and all(line["logger"] == "projections.runner" for line in batches)


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        (["soh", "init"], "SOH_CREATE_TABLES", "maybe"),
        (["python", "-m", "projections", "status"], "SOH_DB_POOL_SIZE", "0"),
        (
            ["gunicorn", "-c", "gunicorn.conf.py", "api:create_app()"],
            "SOH_LOG_FORMAT",
            "xml",
        ),
        (
            ["gunicorn", "-c", "gunicorn.conf.py", "api:create_app()"],
            "SOH_METRICS",
            "hmm",
        ),
    ],
)
def test_each_entry_point_stops_at_start_naming_the_bad_variable(
    command: list[str], variable: str, value: str, tmp_path: Path
) -> None:
    settings = Settings(f"sqlite:///{tmp_path / 'soh.sqlite3'}")
    env = {**environment(settings, tmp_path), variable: value}
    executable = sys.executable if command[0] == "python" else str(BIN / command[0])

    done = subprocess.run(
        [executable, *command[1:]],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert f"{variable}: '{value}'" in done.stderr
    assert "Traceback" not in done.stderr

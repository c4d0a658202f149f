"""A runner process killed mid-batch loses nothing and applies nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from projections import default_projections
from projections.runner import ProjectionRunner
from soh_es.application import AccountPlans
from soh_es.domain import AccountPlan, Context
from soh_es.rubric import DEFAULT_RUBRIC
from soh_es.settings import Settings
from tests.integration.test_projections import (
    assert_read_models_match_replay,
    dump_read_models,
    notification_count,
)

ROOT = Path(__file__).resolve().parents[2]
BATCH = 100

# A runner whose audit projection writes its third batch, says so, and
# stalls before the commit: the test kills it there.
STALLING_RUNNER = """
import time
from projections import default_projections
from projections.audit import AuditLog
from projections.runner import ProjectionRunner
from soh_es.application import AccountPlans

class StallingAudit(AuditLog):
    batches = 0

    def apply(self, cursor, store, batch):
        super().apply(cursor, store, batch)
        StallingAudit.batches += 1
        if StallingAudit.batches == 3:
            print("stalled", batch.events[0].position - 1, flush=True)
            time.sleep(120)

app = AccountPlans()
chosen = [StallingAudit() if p.name == "audit" else p for p in default_projections()]
ProjectionRunner(app, chosen, batch_size=%d).catch_up()
"""


@pytest.fixture
def history(app: AccountPlans) -> int:
    """Writes about a thousand events over six plans; returns the head."""
    clock = datetime(2025, 1, 6, tzinfo=UTC)
    for number in range(6):
        plan = AccountPlan.open(
            partner=f"Partner {number}",
            owner="alice",
            ctx=Context("alice", recorded_at=clock),
        )
        person = plan.add_record(
            "stakeholder", {"name": f"Person {number}"}, ctx=Context("alice")
        )
        plan.add_record(
            "barrier", {"description": "Price too high"}, ctx=Context("alice")
        )
        for step in range(160):
            clock += timedelta(hours=6)
            ctx = Context("bob" if step % 3 else "alice", recorded_at=clock)
            if step % 40 == 5:
                quarter = app.calendar.quarter_of(clock)
                plan.rate(
                    quarter,
                    {
                        key: 1 + (step + i) % 5
                        for i, key in enumerate(DEFAULT_RUBRIC.keys)
                    },
                    rubric=DEFAULT_RUBRIC,
                    ctx=ctx,
                )
            elif step % 7 == 0:
                plan.change_record(
                    "stakeholder", person, {"title": f"Title {step}"}, ctx=ctx
                )
            else:
                plan.edit_section("goals", {"summary": f"Step {step}"}, ctx=ctx)
            if len(plan.pending_events) >= 20:
                app.save(plan)
        app.save(plan)
    return app.recorder.max_notification_id() or 0


@pytest.fixture
def child_env(settings: Settings) -> dict[str, str]:
    """The environment of a runner process on the store under test."""
    return {
        **os.environ,
        "SOH_DATABASE_URL": settings.database_url,
        "SOH_CREATE_TABLES": "n",
    }


@pytest.fixture
def runner(app: AccountPlans) -> Iterator[ProjectionRunner]:
    """A runner in this process, for status, waiting and the clean rebuild."""
    runner = ProjectionRunner(app, default_projections())
    runner.setup()
    yield runner


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    lines: list[str] = []
    output = process.stdout
    assert output is not None
    reader = threading.Thread(
        target=lambda: lines.append(output.readline()),
        daemon=True,
    )
    reader.start()
    reader.join(timeout)
    if not lines or not lines[0]:
        process.kill()
        pytest.fail("The runner process did not reach the batch it stalls in.")
    return lines[0]


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL


def _run_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "projections", "--batch-size", "50", "run"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _assert_equal_to_a_clean_rebuild(
    app: AccountPlans, runner: ProjectionRunner
) -> None:
    kept = dump_read_models(runner.store)
    assert len(kept["soh_read_audit"]) == notification_count(app)
    runner.rebuild()
    assert dump_read_models(runner.store) == kept


def test_a_runner_killed_inside_a_batch_leaves_it_unapplied_and_resumes_there(
    app: AccountPlans,
    history: int,
    runner: ProjectionRunner,
    child_env: dict[str, str],
) -> None:
    stalling = subprocess.Popen(
        [sys.executable, "-c", STALLING_RUNNER % BATCH],
        env=child_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = _read_line(stalling, timeout=60)
    _kill(stalling)

    started_at = int(line.split()[1])
    assert started_at == 2 * BATCH
    status = {s.name: s.position for s in runner.status()}
    assert status["audit"] == started_at
    assert status["current_plans"] == 3 * BATCH
    rows = dump_read_models(runner.store)["soh_read_audit"]
    assert [row["position"] for row in rows] == list(range(1, started_at + 1))

    worker = _run_worker(child_env)
    try:
        assert runner.wait_for(history, timeout=60)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0

    _assert_equal_to_a_clean_rebuild(app, runner)
    assert_read_models_match_replay(app, runner.store)


def test_a_worker_killed_at_any_moment_catches_up_to_what_a_rebuild_gives(
    app: AccountPlans,
    history: int,
    runner: ProjectionRunner,
    child_env: dict[str, str],
) -> None:
    reached = 0
    stopped_short = 0
    for delay in (0.0, 0.03, 0.07):
        worker = _run_worker(child_env)
        deadline = time.monotonic() + 60
        while min(s.position for s in runner.status()) <= reached:
            assert time.monotonic() < deadline, "The worker made no progress."
            time.sleep(0.005)
        time.sleep(delay)
        _kill(worker)
        reached = min(s.position for s in runner.status())
        if reached >= history:
            break
        stopped_short += 1

    finisher = subprocess.run(
        [sys.executable, "-m", "projections", "run", "--until-idle"],
        env=child_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finisher.returncode == 0, finisher.stderr
    assert stopped_short >= 1
    assert all(s.lag == 0 for s in runner.status())
    _assert_equal_to_a_clean_rebuild(app, runner)

"""Projection lag under a steady write load through the HTTP API.

For each store the script starts the real processes: ``soh serve`` (the API)
and ``python -m projections run`` (the projection worker; the API does not
run projections itself), on a fresh database or SQLite file, with a user and
an editor token made by the ``soh`` command. Client threads then send
``--rate`` writes per second for ``--seconds`` seconds on a fixed schedule:
``POST /plans`` (10%), ``PATCH /plans/{id}/sections/goals`` (60%) and
``POST /plans/{id}/ratings`` with seven new ratings (30%). Each thread owns
its plans, so no two writes race.

What is measured, per write:

- its position: the API answers with the plan's version (the ``ETag``) but
  not with the notification id of the event it wrote, so after the run the
  id is read from the events table by (plan, version), which is exact. A
  rating writes up to seven events; its position is the last one's;
- when every projection had reached that position: a monitor thread reads
  ``soh_projection_positions`` every ``--poll`` seconds over its own
  connection and notes when the smallest position changes;
- the lag: from the write's 2xx response to the first poll that saw the
  projections at or past its position (at least 0; the resolution is the
  poll interval), and also from the moment the request was sent.

The table gives p50 and p99 of both, the write latency, and the achieved
write rate. Results go to ``bench/results/projection_lag.json``. Other work
shares the machine, so the tails in particular vary between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from stores import (
    RESULTS_DIR,
    add_store_options,
    check_stores,
    facts_line,
    machine_facts,
    nearest_rank,
    open_store,
    progress,
    table,
)

from projections.store import POSITIONS_TABLE
from soh_es.application import AccountPlans
from soh_es.rubric import DEFAULT_RUBRIC
from soh_es.settings import Settings

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/soh_bench_lag"
RESULTS_PATH = RESULTS_DIR / "projection_lag.json"
BIN = Path(sys.executable).parent
PROJECTION_NAMES = ("current_plans", "scores", "audit", "portfolio")
KINDS = (("open", 0.1), ("goals", 0.6), ("ratings", 0.3))
POSITION_HEADER = "Soh-Position"
WORKER = "worker"
IN_PROCESS = "in-process"
AUTO = "auto"


class BenchmarkError(Exception):
    """Raised when a process does not start or a write is refused."""


@dataclass
class Write:
    """One write sent by a client, and what came of it."""

    number: int
    kind: str
    scheduled: float
    sent: float = 0.0
    answered: float = 0.0
    status: int = 0
    plan_id: str = ""
    version: int = 0
    changed: bool = True
    position: int | None = None
    header_position: int | None = None
    projected: float | None = None


@dataclass
class Client:
    """A client thread's plans and the versions it last saw of them."""

    plans: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """The lag and the load on one store."""

    store: str
    runner: str
    worker_poll_interval: float | None
    writes: int
    failed: int
    unchanged: int
    events: int
    target_rate: float
    achieved_rate: float
    write_p50_ms: float
    write_p99_ms: float
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    lag_from_send_p50_ms: float
    lag_from_send_p99_ms: float
    not_projected: int
    header_positions: int
    header_mismatches: int


# Processes.


CODE: list[Path] = []


def _cwd() -> Path | None:
    # ``python -m`` and ``-c`` import from the working directory first.
    return CODE[0] if CODE else None


def _environment(
    settings: Settings, *, create_tables: bool, in_process: bool = False
) -> dict[str, str]:
    # The API's default write limit (600 a minute per token) is below the
    # load this script drives from its one token, so it is switched off.
    code = {"PYTHONPATH": str(CODE[0])} if CODE else {}
    return {
        **os.environ,
        **code,
        "SOH_DATABASE_URL": settings.database_url,
        "SOH_CREATE_TABLES": "yes" if create_tables else "no",
        "SOH_WRITE_RATE_LIMIT": "off",
        "SOH_PROJECTIONS_IN_PROCESS": "yes" if in_process else "no",
        "PYTHONUNBUFFERED": "1",
    }


def soh(settings: Settings, *args: str) -> str:
    """Runs the ``soh`` command on the store; returns what it printed."""
    done = subprocess.run(
        [str(BIN / "soh"), *args],
        cwd=_cwd(),
        env=_environment(settings, create_tables=True),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchmarkError(f"soh {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def api_runs_projections(settings: Settings) -> bool:
    """Whether the API that will run can keep the read models in its process."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from api.config import ApiSettings; "
            "print(hasattr(ApiSettings, 'runs_projections'))",
        ],
        cwd=_cwd(),
        env=_environment(settings, create_tables=False),
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() == "True"


@contextmanager
def process(
    command: Sequence[str], settings: Settings, log: Path, *, in_process: bool = False
) -> Iterator[subprocess.Popen[bytes] | None]:
    """Runs a process on the store, its output to ``log``; stops it afterwards.

    An empty command runs nothing and yields None.
    """
    if not command:
        yield None
        return
    with log.open("wb") as output:
        child = subprocess.Popen(
            command,
            cwd=_cwd(),
            env=_environment(settings, create_tables=False, in_process=in_process),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield child
        finally:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def wait_for_api(base: str, child: subprocess.Popen[bytes], timeout: float) -> None:
    """Returns once the API answers, or raises BenchmarkError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise BenchmarkError(f"The API exited with status {child.returncode}.")
        try:
            with urllib.request.urlopen(base + "/openapi.json", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise BenchmarkError(f"The API did not answer within {timeout:.0f}s.")


# The store, read directly.


class Positions:
    """Reads the projections' positions and the events table over one connection."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.is_postgres:
            self.connection: Any = psycopg.connect(
                settings.database_url, autocommit=True
            )
        else:
            path = settings.event_store_env()["SQLITE_DBNAME"]
            self.connection = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False
            )

    def lowest(self) -> int | None:
        """Returns the smallest position of the four projections, None before setup."""
        try:
            rows = self.connection.execute(
                f"SELECT name, position FROM {POSITIONS_TABLE}"
            ).fetchall()
        except (psycopg.Error, sqlite3.Error):
            return None
        found = {name: int(position) for name, position in rows}
        if not all(name in found for name in PROJECTION_NAMES):
            return None
        return min(found[name] for name in PROJECTION_NAMES)

    def head(self) -> int:
        """Returns the last notification id written."""
        if self.settings.is_postgres:
            query = f"SELECT MAX(notification_id) FROM {AccountPlans.name}_events"
        else:
            query = "SELECT MAX(rowid) FROM stored_events"
        row = self.connection.execute(query).fetchone()
        return int(row[0] or 0)

    def position_of(self, plan_id: str, version: int) -> int | None:
        """Returns the notification id of one plan's event at ``version``."""
        if self.settings.is_postgres:
            row = self.connection.execute(
                f"SELECT notification_id FROM {AccountPlans.name}_events "
                "WHERE originator_id = %s AND originator_version = %s",
                (UUID(plan_id), version),
            ).fetchone()
        else:
            row = self.connection.execute(
                "SELECT rowid FROM stored_events "
                "WHERE originator_id = ? AND originator_version = ?",
                (UUID(plan_id).hex, version),
            ).fetchone()
        return None if row is None else int(row[0])

    def close(self) -> None:
        """Closes the connection."""
        self.connection.close()


class Monitor(threading.Thread):
    """Polls the projections' positions and keeps (time, position) at each change."""

    def __init__(self, settings: Settings, interval: float) -> None:
        super().__init__(name="monitor", daemon=True)
        self.positions = Positions(settings)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                lowest = self.positions.lowest()
                now = time.monotonic()
                if lowest is not None and (
                    not self.samples or lowest != self.samples[-1][1]
                ):
                    self.samples.append((now, lowest))
                self.stop.wait(self.interval)
        finally:
            self.positions.close()

    def reached(self, position: int) -> float | None:
        """Returns when the projections were first seen at ``position`` or later."""
        for seen, lowest in self.samples:
            if lowest >= position:
                return seen
        return None


# The load.


class Api:
    """Sends JSON requests with the bearer token."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token

    def send(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """Returns the status and the response's headers (or raises on no answer)."""
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
                return response.status, response.headers
        except urllib.error.HTTPError as error:
            error.read()
            return error.code, error.headers


def _version(headers: Any) -> int:
    return int(str(headers.get("ETag", "0")).strip('W/"'))


def _header_position(headers: Any) -> int | None:
    raw = headers.get(POSITION_HEADER) if headers is not None else None
    return int(raw) if raw and str(raw).isdigit() else None


def runner_of(store: str, choice: str, settings: Settings) -> str:
    """Returns who keeps the read models: a worker process, or the API itself.

    ``auto`` picks the API's own runner on SQLite when this API has one,
    and a worker otherwise (always on PostgreSQL).
    """
    if choice != AUTO:
        return choice
    if store == "sqlite" and api_runs_projections(settings):
        return IN_PROCESS
    return WORKER


def open_plan(api: Api, name: str) -> tuple[int, str, Any]:
    """Opens a plan; returns the status, its id and the response headers."""
    status, headers = api.send("POST", "/plans", {"partner": name})
    if status != 201:
        return status, "", headers
    plan_id = str(headers["Location"]).rstrip("/").rsplit("/", 1)[-1]
    return status, plan_id, headers


def perform(api: Api, client: Client, write: Write, rng: random.Random) -> None:
    """Sends one write and records its outcome."""
    quarter = current_quarter()
    write.sent = time.monotonic()
    if write.kind == "open":
        status, plan_id, headers = open_plan(api, f"Partner {write.number}")
    else:
        plan_id = rng.choice(list(client.plans))
        if write.kind == "goals":
            status, headers = api.send(
                "PATCH",
                f"/plans/{plan_id}/sections/goals",
                {"values": {"summary": f"Goals, write {write.number}"}},
            )
        else:
            ratings = {key: rng.randint(1, 5) for key in DEFAULT_RUBRIC.keys}
            status, headers = api.send(
                "POST",
                f"/plans/{plan_id}/ratings",
                {"quarter": quarter, "ratings": ratings},
            )
    write.answered = time.monotonic()
    version = _version(headers) if status < 300 else 0
    write.status = status
    write.plan_id = plan_id
    write.version = version
    write.header_position = _header_position(headers)
    if status < 300:
        write.changed = version > client.plans.get(plan_id, 0)
        client.plans[plan_id] = version


_QUARTER: list[str] = []


def current_quarter() -> str:
    """Returns the current calendar quarter, as in 2026-Q2."""
    if not _QUARTER:
        now = datetime.now(UTC)
        _QUARTER.append(f"{now.year}-Q{(now.month - 1) // 3 + 1}")
    return _QUARTER[0]


def drive(
    api: Api, *, rate: float, seconds: float, threads: int, plans: int, seed: int
) -> list[Write]:
    """Sends ``rate`` writes a second for ``seconds`` from ``threads`` clients."""
    rng = random.Random(seed)
    clients = [Client() for _ in range(threads)]
    for number in range(plans):
        status, plan_id, headers = open_plan(api, f"Seed partner {number}")
        if status != 201:
            raise BenchmarkError(f"Opening a plan answered {status}.")
        clients[number % threads].plans[plan_id] = _version(headers)

    count = int(rate * seconds)
    kinds = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    start = time.monotonic() + 0.5
    writes = [
        Write(number, rng.choices(kinds, weights)[0], start + number / rate)
        for number in range(count)
    ]
    queue = iter(writes)
    lock = threading.Lock()

    def work(client: Client, seed: int) -> None:
        own = random.Random(seed)
        while True:
            with lock:
                write = next(queue, None)
            if write is None:
                return
            delay = write.scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                perform(api, client, write, own)
            except OSError:
                write.answered = time.monotonic()
                write.status = 0

    workers = [
        threading.Thread(target=work, args=(client, seed + index), daemon=True)
        for index, client in enumerate(clients)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return writes


# Measuring one store.


def measure_store(
    store: str, settings: Settings, arguments: argparse.Namespace, logs: Path
) -> Result:
    """Starts the API and the worker on a fresh store and measures the lag."""
    progress(f"{store}: creating the tables, the user and its token")
    soh(settings, "init")
    soh(settings, "users", "add", "bench", "--role", "editor")
    token = soh(settings, "tokens", "create", "bench").strip().splitlines()[-1]

    port = arguments.port
    base = f"http://127.0.0.1:{port}"
    worker_command = [
        sys.executable,
        "-m",
        "projections",
        "run",
        "--poll-interval",
        str(arguments.worker_poll_interval),
    ]
    in_process = runner_of(store, arguments.runner, settings) == IN_PROCESS
    api_command = [str(BIN / "soh"), "serve", "--port", str(port)]
    with (
        process(
            [] if in_process else worker_command,
            settings,
            logs / f"{store}-worker.log",
        ),
        process(
            api_command, settings, logs / f"{store}-api.log", in_process=in_process
        ) as api_process,
    ):
        assert api_process is not None
        wait_for_api(base, api_process, timeout=60)
        monitor = Monitor(settings, arguments.poll)
        monitor.start()
        progress(
            f"{store}: {arguments.rate:g} writes/s for {arguments.seconds:g}s "
            f"from {arguments.threads} clients"
        )
        writes = drive(
            Api(base, token),
            rate=arguments.rate,
            seconds=arguments.seconds,
            threads=arguments.threads,
            plans=arguments.plans,
            seed=arguments.seed,
        )
        reader = Positions(settings)
        try:
            head = reader.head()
            deadline = time.monotonic() + 60
            while (reader.lowest() or 0) < head and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(5 * arguments.poll)
            monitor.stop.set()
            monitor.join()
            for write in writes:
                if write.status and write.status < 300 and write.changed:
                    write.position = reader.position_of(write.plan_id, write.version)
                    if write.position is not None:
                        write.projected = monitor.reached(write.position)
        finally:
            reader.close()
    runner = IN_PROCESS if in_process else WORKER
    return summarise(store, runner, writes, arguments, head)


def summarise(
    store: str,
    runner: str,
    writes: Sequence[Write],
    arguments: argparse.Namespace,
    events: int,
) -> Result:
    """Returns the percentiles of one store's run."""
    done = [w for w in writes if w.status and w.status < 300]
    failed = len(writes) - len(done)
    measured = [w for w in done if w.changed and w.position is not None]
    projected = [w for w in measured if w.projected is not None]
    seen = [(w.projected, w) for w in projected if w.projected is not None]
    lags = [max(0.0, at - w.answered) for at, w in seen]
    from_send = [at - w.sent for at, w in seen]
    latencies = [w.answered - w.sent for w in done]
    span = max(w.answered for w in done) - min(w.sent for w in done)
    if not lags:
        raise BenchmarkError(f"No write on {store} was seen projected.")

    def ms(value: float) -> float:
        return round(value * 1000, 1)

    headed = [w for w in measured if w.header_position is not None]
    return Result(
        store=store,
        runner=runner,
        worker_poll_interval=arguments.worker_poll_interval
        if runner == WORKER
        else None,
        writes=len(writes),
        failed=failed,
        unchanged=len([w for w in done if not w.changed]),
        events=events,
        target_rate=arguments.rate,
        achieved_rate=round(len(done) / span, 2),
        write_p50_ms=ms(statistics.median(latencies)),
        write_p99_ms=ms(nearest_rank(latencies, 0.99)),
        lag_p50_ms=ms(statistics.median(lags)),
        lag_p99_ms=ms(nearest_rank(lags, 0.99)),
        lag_max_ms=ms(max(lags)),
        lag_from_send_p50_ms=ms(statistics.median(from_send)),
        lag_from_send_p99_ms=ms(nearest_rank(from_send, 0.99)),
        not_projected=len(measured) - len(projected),
        header_positions=len(headed),
        header_mismatches=len([w for w in headed if w.header_position != w.position]),
    )


def summary(results: Sequence[Result]) -> str:
    """Returns the results as a table."""
    header = (
        "store",
        "runner",
        "writes ok/sent",
        "writes/s",
        "write p50 ms",
        "write p99 ms",
        "lag p50 ms",
        "lag p99 ms",
        "lag max ms",
        "sent→seen p50",
        "sent→seen p99",
    )
    rows = [
        (
            r.store,
            f"worker, poll {r.worker_poll_interval:g}s"
            if r.worker_poll_interval is not None
            else "in the API process",
            f"{r.writes - r.failed}/{r.writes}",
            f"{r.achieved_rate:.1f}",
            f"{r.write_p50_ms:.1f}",
            f"{r.write_p99_ms:.1f}",
            f"{r.lag_p50_ms:.1f}",
            f"{r.lag_p99_ms:.1f}",
            f"{r.lag_max_ms:.1f}",
            f"{r.lag_from_send_p50_ms:.1f}",
            f"{r.lag_from_send_p99_ms:.1f}",
        )
        for r in results
    ]
    return table(header, rows)


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rate", type=float, default=20, help="writes per second (default: 20)"
    )
    parser.add_argument(
        "--seconds", type=float, default=60, help="length of the load (default: 60)"
    )
    parser.add_argument(
        "--threads", type=int, default=8, help="client threads (default: 8)"
    )
    parser.add_argument(
        "--plans",
        type=int,
        default=40,
        help="plans opened before the load (default: 40)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=0.005,
        help="seconds between reads of the positions (default: 0.005)",
    )
    parser.add_argument(
        "--worker-poll-interval",
        type=float,
        default=1.0,
        help="the worker's --poll-interval; on SQLite it bounds the lag "
        "(default: 1.0, the worker's own default)",
    )
    parser.add_argument(
        "--runner",
        choices=(AUTO, WORKER, IN_PROCESS),
        default=AUTO,
        help="who keeps the read models: 'auto' (the API itself on SQLite "
        "when it can, otherwise python -m projections run), 'worker' or "
        "'in-process' (default: auto)",
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="port of the API (default: 8765)"
    )
    add_store_options(parser, DEFAULT_POSTGRES_URL)
    parser.add_argument(
        "--code",
        type=Path,
        default=None,
        help="a source tree of the project for the API, the worker and the soh "
        "command to import first (for example a git archive of a commit); "
        "default: the installed project",
    )
    parser.add_argument("--seed", type=int, default=2024, help="seed of the load")
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS_PATH,
        help="where to write the JSON results "
        "(default: bench/results/projection_lag.json)",
    )
    arguments = parser.parse_args(argv)
    check_stores(parser, arguments)
    if arguments.rate <= 0 or arguments.seconds <= 0 or arguments.threads < 1:
        parser.error("--rate and --seconds must be positive, --threads at least 1.")
    if arguments.plans < arguments.threads:
        parser.error("--plans: at least one per client thread.")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark on each store, prints the table and writes the JSON."""
    arguments = parse_arguments(argv)
    if arguments.code is not None:
        CODE.append(arguments.code.resolve())
    facts = machine_facts(arguments.stores, arguments.postgres_url)
    started_at = datetime.now(UTC)
    logs = Path(tempfile.mkdtemp(prefix="soh-bench-lag-logs-"))
    progress(f"Logs of the API and the worker: {logs}")
    results = []
    for store in arguments.stores:
        with open_store(store, arguments.postgres_url) as settings:
            results.append(measure_store(store, settings, arguments, logs))

    print(facts_line(facts))
    print(
        f"{arguments.rate:g} writes/s for {arguments.seconds:g}s from "
        f"{arguments.threads} client threads (10% open, 60% goals edit, "
        f"30% seven ratings); positions read every {arguments.poll * 1000:g} ms. "
        "Lag: from the 2xx response until every projection was seen at the "
        "write's notification id."
    )
    print()
    print(summary(results))

    report = {
        "started_at": started_at.isoformat(),
        "machine": facts,
        "parameters": {
            key: value
            for key, value in vars(arguments).items()
            if key not in ("output", "postgres_url", "code")
        },
        "code": None if arguments.code is None else str(arguments.code),
        "results": [asdict(r) for r in results],
    }
    arguments.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWritten to {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Appends and reads as of an instant: soh-es next to the plain eventsourcing library.

For each store (a SQLite file, a PostgreSQL database) the script measures:

- soh-es: events per second appended through ``AccountPlans``, one command
  (``edit_section``) per event, building one plan to ``--events`` events; then
  the time to read that plan as of random instants between its first and last
  recorded times (snapshots every 100 events plus the version-at-time index);
- plain: the library used as it comes, with its own infrastructure for the same
  store, a one-attribute aggregate, no snapshots and no index. Events are saved
  one per ``save()``, and a read as of an instant replays the stream, stopping
  at the first event recorded after the instant.

Both systems are read at the same random fractions of their streams' time
spans, and every read is checked against the stored event times. The results
are printed as a table and written to ``bench/results/write_and_read.json``.

The plain baseline keeps its aggregate in memory between saves, whereas every
soh-es command reads the plan from the store first (from its latest snapshot)
and validates its input: the append figures compare a whole command with a
bare save.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, AggregateEvent, event
from psycopg import sql

from soh_es.application import AccountPlans
from soh_es.domain import Context
from soh_es.quarters import Point
from soh_es.settings import Settings

STORES = ("sqlite", "postgres")
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/soh_bench"
RESULTS_PATH = Path(__file__).resolve().parent / "results" / "write_and_read.json"
SOH = "soh-es"
PLAIN = "plain eventsourcing"


class BenchmarkError(Exception):
    """Raised when a system under measurement does not do what it is asked."""


def aggregate_events(
    app: Application[UUID], originator_id: UUID
) -> Iterator[AggregateEvent]:
    """Returns the stream's events, oldest first, decoded one at a time."""
    return cast(Iterator[AggregateEvent], app.events.get(originator_id))


# The plain baseline.


class Dial(Aggregate):
    """The smallest useful aggregate: one value, set by one kind of event."""

    def __init__(self) -> None:
        self.position = 1

    @event("Turned")
    def turn(self, position: int) -> None:
        """Sets the dial to ``position``."""
        self.position = position


class PlainApplication(Application[UUID]):
    """The library's application with its default infrastructure and no snapshots."""

    name = "PlainBaseline"


def read_dial_as_of(app: PlainApplication, dial_id: UUID, instant: datetime) -> Dial:
    """Returns the dial as it stood at ``instant``, replayed from its first event.

    The library has no read by time: the whole stream is selected, and its
    events are decoded and projected until one was recorded after ``instant``.
    """
    dial: Dial | None = None
    for domain_event in aggregate_events(app, dial_id):
        if domain_event.timestamp > instant:
            break
        dial = cast(Dial, domain_event.mutate(dial))
    if dial is None:
        raise BenchmarkError(f"Dial {dial_id} had no events at {instant}.")
    return dial


# Measurements.


@dataclass(frozen=True)
class Result:
    """What one system did on one store."""

    store: str
    system: str
    events: int
    appended: int
    append_seconds: float
    events_per_second: float
    reads: int
    read_median_ms: float
    read_p90_ms: float


@dataclass(frozen=True)
class Timeline:
    """A stream's id and the recorded time of each version, oldest first."""

    originator_id: UUID
    timestamps: list[datetime]

    def instant_at(self, fraction: float) -> datetime:
        """Returns the instant ``fraction`` of the way from first to last event."""
        first, last = self.timestamps[0], self.timestamps[-1]
        return first + (last - first) * fraction

    def version_at(self, instant: datetime) -> int:
        """Returns the last version recorded at or before ``instant``."""
        return bisect_right(self.timestamps, instant)


def nearest_rank(samples: Sequence[float], fraction: float) -> float:
    """Returns the nearest-rank percentile of ``samples`` (0 < fraction <= 1)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def timeline_of(app: Application[UUID], originator_id: UUID) -> Timeline:
    """Returns the stream's recorded times, as stored, with a check of its versions."""
    stored = list(aggregate_events(app, originator_id))
    versions = [e.originator_version for e in stored]
    if versions != list(range(1, len(stored) + 1)):
        raise BenchmarkError(f"Stream {originator_id} has gaps in its versions.")
    return Timeline(originator_id, [e.timestamp for e in stored])


def append_to_plan(app: AccountPlans, events: int) -> tuple[UUID, int, float]:
    """Opens a plan and edits it until it has ``events`` events.

    Returns the plan's id, the number of timed commands and their total
    seconds. Each edit sets the profile's size to the version it creates, so
    each one changes the plan and writes exactly one event.
    """
    opened = app.open_plan("Benchmark Partner", ctx=Context(actor="bench"))
    started = time.perf_counter()
    for version in range(opened.version + 1, events + 1):
        outcome = app.edit_section(
            opened.plan_id,
            "profile",
            {"size": str(version)},
            ctx=Context(actor="bench"),
        )
        if not outcome.changed or outcome.version != version:
            raise BenchmarkError(
                f"An edit made plan version {outcome.version} "
                f"(changed: {outcome.changed}); version {version} was expected."
            )
    elapsed = time.perf_counter() - started
    return opened.plan_id, events - opened.version, elapsed


def append_to_dial(app: PlainApplication, events: int) -> tuple[UUID, int, float]:
    """Creates a dial and turns it, one save per event, until it has ``events``.

    Returns the dial's id, the number of timed saves and their total seconds.
    """
    dial = Dial()
    app.save(dial)
    started = time.perf_counter()
    for position in range(dial.version + 1, events + 1):
        dial.turn(position)
        if len(app.save(dial)) != 1:
            raise BenchmarkError(f"Saving dial version {position} wrote no event.")
    elapsed = time.perf_counter() - started
    return dial.id, events - 1, elapsed


def read_plan_as_of(
    app: AccountPlans, timeline: Timeline, fractions: Sequence[float]
) -> list[float]:
    """Reads the plan as of each instant; returns the seconds each read took."""
    plan_id = timeline.originator_id
    durations = []
    for fraction in fractions:
        instant = timeline.instant_at(fraction)
        started = time.perf_counter()
        plan = app.get_plan(plan_id, Point(instant=instant))
        durations.append(time.perf_counter() - started)

        expected = timeline.version_at(instant)
        indexed = app.version_at(plan_id, Point(instant=instant))
        size = plan.sections["profile"].get("size")
        if plan.version != expected or indexed != expected:
            raise BenchmarkError(
                f"Plan as of {instant.isoformat()} read as version {plan.version} "
                f"(index: {indexed}); the stored events say {expected}."
            )
        if expected > 1 and size != str(expected):
            raise BenchmarkError(
                f"Plan version {expected} has size {size!r}, not {str(expected)!r}."
            )
    return durations


def read_dial(
    app: PlainApplication, timeline: Timeline, fractions: Sequence[float]
) -> list[float]:
    """Reads the dial as of each instant; returns the seconds each read took."""
    durations = []
    for fraction in fractions:
        instant = timeline.instant_at(fraction)
        started = time.perf_counter()
        dial = read_dial_as_of(app, timeline.originator_id, instant)
        durations.append(time.perf_counter() - started)

        expected = timeline.version_at(instant)
        if dial.version != expected or dial.position != expected:
            raise BenchmarkError(
                f"Dial as of {instant.isoformat()} read as version {dial.version} "
                f"at position {dial.position}; the stored events say {expected}."
            )
    return durations


def result_of(
    store: str,
    system: str,
    events: int,
    appended: int,
    append_seconds: float,
    durations: Sequence[float],
) -> Result:
    """Summarises one system's appends and reads on one store."""
    return Result(
        store=store,
        system=system,
        events=events,
        appended=appended,
        append_seconds=round(append_seconds, 3),
        events_per_second=round(appended / append_seconds, 1),
        reads=len(durations),
        read_median_ms=round(statistics.median(durations) * 1000, 3),
        read_p90_ms=round(nearest_rank(durations, 0.9) * 1000, 3),
    )


def progress(message: str) -> None:
    """Writes a line about the run's progress to standard error."""
    print(message, file=sys.stderr, flush=True)


def measure_store(
    store: str,
    settings: Settings,
    plain_env: dict[str, str],
    *,
    events: int,
    fractions: Sequence[float],
) -> list[Result]:
    """Measures soh-es, then the plain library, on one store."""
    results = []

    progress(f"{store}: {SOH}: appending {events:,} events")
    app = AccountPlans(settings)
    try:
        plan_id, appended, seconds = append_to_plan(app, events)
        timeline = timeline_of(app, plan_id)
        progress(f"{store}: {SOH}: {len(fractions)} reads as of an instant")
        durations = read_plan_as_of(app, timeline, fractions)
    finally:
        app.close()
    results.append(result_of(store, SOH, events, appended, seconds, durations))

    progress(f"{store}: {PLAIN}: appending {events:,} events")
    plain = PlainApplication(env=plain_env)
    try:
        if plain.snapshots is not None:
            raise BenchmarkError("The plain baseline must run without snapshots.")
        dial_id, appended, seconds = append_to_dial(plain, events)
        timeline = timeline_of(plain, dial_id)
        progress(f"{store}: {PLAIN}: {len(fractions)} reads as of an instant")
        durations = read_dial(plain, timeline, fractions)
    finally:
        plain.close()
    results.append(result_of(store, PLAIN, events, appended, seconds, durations))
    return results


# Stores.


@contextmanager
def sqlite_store() -> Iterator[tuple[Settings, dict[str, str]]]:
    """Yields settings for two SQLite files in a temporary directory, then removes it.

    soh-es uses one file; the plain library, whose table names are fixed,
    uses the other.
    """
    with tempfile.TemporaryDirectory(prefix="soh-bench-") as directory:
        settings = Settings(f"sqlite:///{Path(directory) / 'soh.sqlite3'}")
        plain_env = {
            **settings.event_store_env(),
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(Path(directory) / "plain.sqlite3"),
        }
        yield settings, plain_env


def _admin_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def _database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


@contextmanager
def postgres_store(url: str) -> Iterator[tuple[Settings, dict[str, str]]]:
    """Yields settings for a freshly created database, and drops it afterwards.

    Both systems share the database: the library names each application's
    tables after it (``soh_events``, ``plainbaseline_events``).
    """
    name = sql.Identifier(_database_name(url))
    with psycopg.connect(_admin_url(url), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
    try:
        settings = Settings(url)
        plain_env = {
            **settings.event_store_env(),
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
        }
        yield settings, plain_env
    finally:
        with psycopg.connect(_admin_url(url), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name)
            )


@contextmanager
def open_store(
    store: str, postgres_url: str
) -> Iterator[tuple[Settings, dict[str, str]]]:
    """Yields settings for an empty store of the given kind and cleans it up."""
    if store == "sqlite":
        with sqlite_store() as pair:
            yield pair
    else:
        with postgres_store(postgres_url) as pair:
            yield pair


# Reporting.


def machine_facts(stores: Sequence[str], postgres_url: str) -> dict[str, Any]:
    """Returns what a reader needs to compare this run with another."""
    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "optimize_flag": sys.flags.optimize,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "eventsourcing": package_version("eventsourcing"),
        "psycopg": package_version("psycopg"),
        "sqlite": sqlite3.sqlite_version,
    }
    if "postgres" in stores:
        with psycopg.connect(_admin_url(postgres_url)) as connection:
            row = connection.execute("SHOW server_version").fetchone()
        facts["postgresql"] = None if row is None else row[0]
    return facts


def ratios(results: Sequence[Result]) -> dict[str, dict[str, float]]:
    """Returns, per store, soh-es's figures divided by the plain library's."""
    by_key = {(r.store, r.system): r for r in results}
    found = {}
    for store in dict.fromkeys(r.store for r in results):
        ours, plain = by_key[(store, SOH)], by_key[(store, PLAIN)]
        found[store] = {
            "append_rate": round(ours.events_per_second / plain.events_per_second, 3),
            "read_median": round(ours.read_median_ms / plain.read_median_ms, 4),
        }
    return found


def table(results: Sequence[Result]) -> str:
    """Returns the results as an aligned text table, with the ratios below it."""
    header = ("store", "system", "append events/s", "as-of read median ms", "p90 ms")
    rows = [
        (
            r.store,
            r.system,
            f"{r.events_per_second:,.0f}",
            f"{r.read_median_ms:,.2f}",
            f"{r.read_p90_ms:,.2f}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        left = [c.ljust(w) for c, w in zip(cells[:2], widths[:2], strict=True)]
        right = [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
        return " | ".join(left + right)

    lines = [line(header), "-+-".join("-" * w for w in widths)]
    lines += [line(row) for row in rows]
    lines.append("")
    for store, ratio in ratios(results).items():
        lines.append(
            f"{store}: soh-es appends {ratio['append_rate']:.2f} times as many "
            "events per second as the plain library, and its median read as of "
            f"an instant is {_times(ratio['read_median'])}."
        )
    return "\n".join(lines)


def _times(ratio: float) -> str:
    if ratio <= 1:
        return f"{1 / ratio:,.1f} times faster"
    return f"{ratio:,.1f} times slower"


# Entry point.


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events",
        type=int,
        default=10_000,
        help="events per stream, all but the first appended one command each "
        "(default: 10000)",
    )
    parser.add_argument(
        "--reads",
        type=int,
        default=100,
        help="reads as of a random instant per system and store (default: 100)",
    )
    parser.add_argument(
        "--stores",
        default=",".join(STORES),
        help="comma-separated stores to measure (default: sqlite,postgres)",
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="database to drop, create, use and drop again "
        f"(default: {DEFAULT_POSTGRES_URL})",
    )
    parser.add_argument(
        "--seed", type=int, default=2024, help="seed of the random instants"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS_PATH,
        help="where to write the JSON results (default: bench/results/...)",
    )
    arguments = parser.parse_args(argv)

    stores = [s.strip() for s in arguments.stores.split(",") if s.strip()]
    unknown = [s for s in stores if s not in STORES]
    if unknown or not stores:
        parser.error(f"--stores {arguments.stores!r}: choose from sqlite,postgres.")
    arguments.stores = list(dict.fromkeys(stores))
    if arguments.events < 2:
        parser.error(f"--events {arguments.events}: at least 2 are needed.")
    if arguments.reads < 1:
        parser.error(f"--reads {arguments.reads}: at least 1 is needed.")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark on each store, prints the table and writes the JSON."""
    arguments = parse_arguments(argv)
    facts = machine_facts(arguments.stores, arguments.postgres_url)
    rng = random.Random(arguments.seed)
    fractions = [rng.random() for _ in range(arguments.reads)]

    started_at = datetime.now(UTC)
    results: list[Result] = []
    for store in arguments.stores:
        with open_store(store, arguments.postgres_url) as (settings, plain_env):
            results += measure_store(
                store,
                settings,
                plain_env,
                events=arguments.events,
                fractions=fractions,
            )

    print(
        f"Python {facts['python']} ({facts['implementation']}, "
        f"optimize={facts['optimize_flag']}), {facts['cpu_count']} CPUs, "
        f"eventsourcing {facts['eventsourcing']}, SQLite {facts['sqlite']}"
        + (f", PostgreSQL {facts['postgresql']}" if "postgresql" in facts else "")
    )
    print(
        f"{arguments.events:,} events per stream "
        f"({arguments.events - 1:,} timed single-event appends), "
        f"{arguments.reads} reads as of a random instant (seed {arguments.seed})"
    )
    print()
    print(table(results))

    report = {
        "started_at": started_at.isoformat(),
        "machine": facts,
        "parameters": {
            "events": arguments.events,
            "reads": arguments.reads,
            "stores": arguments.stores,
            "seed": arguments.seed,
        },
        "results": [asdict(r) for r in results],
        "ratios": ratios(results),
    }
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWritten to {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

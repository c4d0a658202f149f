"""Rebuild throughput of the read models, next to plain reads of the same events.

For each store (a SQLite file, a PostgreSQL database) the script generates
``--events`` events (see ``generate.py``: plans of about
``--events-per-plan`` events each, saved many plans per ``save()``), then
reads the whole log in notification order in four ways:

- plain SELECT: a keyset ``SELECT`` of the events table straight through the
  driver, ``--batch-size`` rows at a time; nothing is decoded. This is the
  limit no reader of this table can beat;
- select_notifications: the library's recorder, same batches, no decoding;
- select + decode: the same, with every event decoded into its domain event;
- rebuild (all): ``ProjectionRunner.rebuild()`` of every projection, which
  also tells each plan event as field changes, keeps plans current and
  writes the read tables; with ``--each``, every projection rebuilt alone.

Events per second are printed as a table with each figure's share of the
plain SELECT, and written to ``bench/results/rebuild.json``. The database
server and the machine are shared with other work, so figures vary between
runs by some percent; the load average at the start is recorded.
"""

from __future__ import annotations

import argparse
import functools
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from generate import GenerationReport, generate
from psycopg import sql
from stores import (
    RESULTS_DIR,
    add_store_options,
    check_stores,
    facts_line,
    machine_facts,
    open_store,
    progress,
    table,
)

from projections import default_projections
from projections.runner import DEFAULT_BATCH_SIZE, ProjectionRunner
from soh_es.application import AccountPlans
from soh_es.settings import Settings

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/soh_bench_projections"
RESULTS_PATH = RESULTS_DIR / "rebuild.json"
PLAIN_SELECT = "plain SELECT"


class BenchmarkError(Exception):
    """Raised when a reader does not see the events that were written."""


@dataclass(frozen=True)
class Result:
    """One way of reading the whole log, on one store."""

    store: str
    reader: str
    events: int
    seconds: float
    events_per_second: float
    share_of_plain_select: float | None = None


def _timed(store: str, reader: str, read: Callable[[], int]) -> Result:
    progress(f"{store}: {reader}")
    started = time.perf_counter()
    events = read()
    seconds = time.perf_counter() - started
    return Result(store, reader, events, round(seconds, 3), round(events / seconds, 1))


def plain_select(settings: Settings, batch_size: int) -> int:
    """Reads every event in notification order with a keyset SELECT; returns them."""
    env = settings.event_store_env()
    if settings.is_postgres:
        query = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(sql.Identifier("public", f"{AccountPlans.name}_events"))
        with psycopg.connect(settings.database_url, autocommit=True) as connection:
            return _keyset(lambda after: connection.execute(query, (after, batch_size)))
    with sqlite3.connect(env["SQLITE_DBNAME"]) as connection:
        return _keyset(
            lambda after: connection.execute(
                "SELECT rowid, originator_id, originator_version, topic, state "
                "FROM stored_events WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (after, batch_size),
            )
        )


def _keyset(select: Callable[[int], object]) -> int:
    after = total = 0
    while True:
        rows = select(after).fetchall()  # type: ignore[attr-defined]
        if not rows:
            return total
        total += len(rows)
        after = rows[-1][0]


def library_select(app: AccountPlans, batch_size: int, *, decode: bool) -> int:
    """Reads every notification through the recorder, decoding each if asked."""
    recorder = app.recorder
    mapper = app.mapper
    after: int | None = None
    total = 0
    while True:
        found = recorder.select_notifications(
            after, batch_size, inclusive_of_start=False
        )
        if not found:
            return total
        if decode:
            for notification in found:
                mapper.to_domain_event(notification)
        total += len(found)
        after = found[-1].id


def rebuild(runner: ProjectionRunner, name: str | None, expected: int) -> int:
    """Rebuilds one projection, or all, and returns the events it read."""
    last = [time.monotonic()]

    def report(events: int, head: int) -> None:
        if time.monotonic() - last[0] >= 10:
            last[0] = time.monotonic()
            progress(f"  {events:,} of {head:,} events")

    done = runner.rebuild(name, progress=report)
    if done.events != expected:
        raise BenchmarkError(f"The rebuild read {done.events} of {expected} events.")
    return done.events


def measure_store(
    store: str,
    settings: Settings,
    arguments: argparse.Namespace,
) -> tuple[GenerationReport, list[Result]]:
    """Generates the log on one store, then times each way of reading it."""
    app = AccountPlans(settings)
    try:
        plans = max(1, arguments.events // arguments.events_per_plan)
        progress(f"{store}: generating {plans:,} plans of ~{arguments.events_per_plan}")
        last = [time.monotonic()]

        def report(events: int, expected: int) -> None:
            if time.monotonic() - last[0] >= 10:
                last[0] = time.monotonic()
                progress(f"  {events:,} of ~{expected:,} events")

        generated = generate(
            app,
            plans=plans,
            events_per_plan=arguments.events_per_plan,
            seed=arguments.seed,
            progress=report,
        )
        head = app.recorder.max_notification_id() or 0
        progress(
            f"{store}: {generated.events:,} events in {generated.seconds:.0f}s "
            f"({generated.events_per_second:,.0f} events/s)"
        )
        batch = arguments.batch_size
        # An untimed pass, so that every timed reader finds the pages cached.
        plain_select(settings, 10_000)

        results = [
            _timed(store, PLAIN_SELECT, lambda: plain_select(settings, batch)),
            _timed(
                store,
                "select_notifications",
                lambda: library_select(app, batch, decode=False),
            ),
            _timed(
                store,
                "select_notifications + decode",
                lambda: library_select(app, batch, decode=True),
            ),
        ]
        runner = ProjectionRunner(app, default_projections(), batch_size=batch)
        results.append(
            _timed(store, "rebuild (all)", lambda: rebuild(runner, None, head))
        )
        if arguments.each:
            for projection in runner.projections:
                name = projection.name
                results.append(
                    _timed(
                        store,
                        f"rebuild {name} alone",
                        functools.partial(rebuild, runner, name, head),
                    )
                )
    finally:
        app.close()

    for result in results:
        if result.events != head:
            raise BenchmarkError(
                f"{result.reader} read {result.events} of {head} events on {store}."
            )
    limit = results[0].events_per_second
    shared = [
        Result(
            **{
                **asdict(r),
                "share_of_plain_select": round(r.events_per_second / limit, 4),
            }
        )
        for r in results
    ]
    return generated, shared


def summary(generated: dict[str, GenerationReport], results: Sequence[Result]) -> str:
    """Returns the generation rates and the readers' table."""
    rows = [
        (
            store,
            f"generate ({report.plans:,} plans, {report.saves:,} saves)",
            f"{report.events:,}",
            f"{report.seconds:,.1f}",
            f"{report.events_per_second:,.0f}",
            "",
        )
        for store, report in generated.items()
    ]
    rows += [
        (
            r.store,
            r.reader,
            f"{r.events:,}",
            f"{r.seconds:,.1f}",
            f"{r.events_per_second:,.0f}",
            f"{r.share_of_plain_select:.3f}" if r.share_of_plain_select else "",
        )
        for r in results
    ]
    header = ("store", "reader", "events", "seconds", "events/s", "of plain SELECT")
    return table(header, rows)


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events",
        type=int,
        default=1_000_000,
        help="events to generate per store (default: 1000000)",
    )
    parser.add_argument(
        "--events-per-plan",
        type=int,
        default=100,
        help="events per plan; plans = events / this (default: 100)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help="events per read and per rebuild transaction, for every reader "
        f"(default: the runner's, {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--each",
        action="store_true",
        help="also rebuild each projection alone (adds about four rebuilds)",
    )
    add_store_options(parser, DEFAULT_POSTGRES_URL)
    parser.add_argument(
        "--sqlite-dir",
        type=Path,
        default=None,
        help="where to put the temporary SQLite file (default: the system's)",
    )
    parser.add_argument("--seed", type=int, default=2024, help="generator seed")
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS_PATH,
        help="where to write the JSON results (default: bench/results/rebuild.json)",
    )
    arguments = parser.parse_args(argv)
    check_stores(parser, arguments)
    if arguments.events_per_plan < 10:
        parser.error("--events-per-plan: at least 10.")
    if arguments.events < arguments.events_per_plan:
        parser.error("--events: at least one plan's worth.")
    if arguments.batch_size < 1:
        parser.error("--batch-size: at least 1.")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark on each store, prints the table and writes the JSON."""
    arguments = parse_arguments(argv)
    facts = machine_facts(arguments.stores, arguments.postgres_url)
    started_at = datetime.now(UTC)
    generated: dict[str, GenerationReport] = {}
    results: list[Result] = []
    for store in arguments.stores:
        with open_store(
            store, arguments.postgres_url, sqlite_dir=arguments.sqlite_dir
        ) as settings:
            generated[store], found = measure_store(store, settings, arguments)
            results += found

    print(facts_line(facts))
    print(
        f"~{arguments.events:,} events per store in plans of "
        f"~{arguments.events_per_plan}; every reader reads "
        f"{arguments.batch_size} events per query"
    )
    print()
    print(summary(generated, results))

    report = {
        "started_at": started_at.isoformat(),
        "machine": facts,
        "parameters": {
            "events": arguments.events,
            "events_per_plan": arguments.events_per_plan,
            "batch_size": arguments.batch_size,
            "each": arguments.each,
            "stores": arguments.stores,
            "seed": arguments.seed,
        },
        "generation": {store: asdict(r) for store, r in generated.items()},
        "results": [asdict(r) for r in results],
    }
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWritten to {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Latency of the read-model queries over a portfolio of 10,000 plans.

For each store the script generates ``--plans`` plans (see ``generate.py``;
by default about 30 events each: a compact start, then quarters of ratings,
so that bands and trajectories vary), rebuilds every projection, and then
calls each query ``--calls`` times with varying arguments:

- ``list_plans`` unfiltered, by band, trajectory, owner, status and review
  overdue, and at random deep pages;
- ``audit_by_actor`` over a random 90-day window, first page;
- ``audit_by_plan`` of a random plan, first page.

It prints the median and p99 of each in milliseconds, with the matching
totals, and how each statement is executed (``EXPLAIN`` on PostgreSQL,
``EXPLAIN QUERY PLAN`` on SQLite): the indexes used, or a full scan. The
results, with the full plans, go to ``bench/results/queries.json``. The
machine is shared with other work; medians are steadier than tails.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from generate import OWNERS, GenerationReport, generate
from psycopg import sql
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

from projections import default_projections
from projections.queries import Page, audit_by_actor, audit_by_plan, list_plans
from projections.runner import ProjectionRunner, RebuildReport
from projections.store import ReadCursor, ReadStore
from soh_es.application import AccountPlans
from soh_es.settings import Settings

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/soh_bench_queries"
RESULTS_PATH = RESULTS_DIR / "queries.json"
BANDS = ("strong", "healthy", "intervention")
TRAJECTORIES = ("improving", "stable", "declining", "new")
WINDOW = timedelta(days=90)

Query = Callable[[ReadStore, random.Random], Page]


@dataclass(frozen=True)
class Result:
    """One query's latency on one store."""

    store: str
    query: str
    calls: int
    median_ms: float
    p99_ms: float
    mean_total: float
    mean_items: float
    plan: str
    explain: list[list[str]]


class RecordingStore(ReadStore):
    """A read store that keeps every statement it runs, for EXPLAIN."""

    def __init__(self, store: ReadStore) -> None:
        super().__init__(store.datastore)
        self.statements: list[tuple[sql.Composable, tuple[Any, ...]]] = []

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[ReadCursor]:
        """Yields a cursor that notes each statement before running it."""
        with super().transaction(commit=commit) as cursor:
            statements = self.statements
            execute = cursor.execute

            def noted(query: sql.Composable, params: Sequence[Any] = ()) -> None:
                statements.append((query, tuple(params)))
                execute(query, params)

            cursor.execute = noted  # type: ignore[method-assign]
            yield cursor


def explain(store: ReadStore, query: Query, rng: random.Random) -> list[list[str]]:
    """Returns the execution plan of each statement one call of ``query`` runs."""
    recording = RecordingStore(store)
    query(recording, rng)
    plans = []
    prefix = "EXPLAIN " if store.is_postgres else "EXPLAIN QUERY PLAN "
    for statement, params in recording.statements:
        with store.transaction(commit=False) as cursor:
            cursor.execute(sql.SQL(prefix) + statement, params)
            rows = cursor.fetchall()
        if store.is_postgres:
            plans.append([row["QUERY PLAN"] for row in rows])
        else:
            plans.append([row["detail"] for row in rows])
    return plans


_ACCESS = re.compile(
    r"(Seq Scan on \S+|(?:Bitmap )?Index(?: Only)? Scan(?: Backward)?"
    r"(?: using \S+)?(?: on \S+)?|Bitmap Index Scan on \S+|"
    r"SCAN \S+(?: USING (?:COVERING )?INDEX \S+)?|"
    r"SEARCH \S+ USING (?:(?:COVERING )?INDEX \S+|(?:INTEGER )?PRIMARY KEY)"
    r"|USE TEMP B-TREE FOR ORDER BY|Sort)"
)


def access_paths(plans: Sequence[Sequence[str]]) -> str:
    """Returns how each statement reads its table, in a few words."""
    described = []
    for lines in plans:
        found = []
        for line in lines:
            found += [m.group(1) for m in _ACCESS.finditer(line)]
        described.append(", ".join(dict.fromkeys(found)) or "?")
    return " / ".join(described)


def cases(
    plan_ids: Sequence[UUID], first: datetime, last: datetime, total: int
) -> dict[str, Query]:
    """Returns the queries to time, each drawing its arguments at random."""
    span = max(timedelta(0), last - first - WINDOW)

    def window(rng: random.Random) -> tuple[datetime, datetime]:
        since = first + span * rng.random()
        return since, since + WINDOW

    def by_actor(store: ReadStore, rng: random.Random) -> Page:
        since, until = window(rng)
        return audit_by_actor(store, rng.choice(OWNERS), since=since, until=until)

    return {
        "list_plans, first page": lambda s, r: list_plans(s),
        "list_plans band=": lambda s, r: list_plans(s, band=r.choice(BANDS)),
        "list_plans trajectory=": lambda s, r: list_plans(
            s, trajectory=r.choice(TRAJECTORIES)
        ),
        "list_plans owner=": lambda s, r: list_plans(s, owner=r.choice(OWNERS)),
        "list_plans status=archived": lambda s, r: list_plans(s, status="archived"),
        "list_plans status=active": lambda s, r: list_plans(s, status="active"),
        "list_plans review_overdue": lambda s, r: list_plans(s, review_overdue=True),
        "list_plans band+status+overdue": lambda s, r: list_plans(
            s, band=r.choice(BANDS), status="active", review_overdue=True
        ),
        "list_plans random page": lambda s, r: list_plans(
            s, offset=r.randrange(0, max(1, total), 50)
        ),
        "audit_by_actor, 90 days": by_actor,
        "audit_by_plan": lambda s, r: audit_by_plan(s, r.choice(plan_ids)),
    }


def time_case(
    store_name: str, store: ReadStore, name: str, query: Query, calls: int, seed: int
) -> Result:
    """Calls ``query`` ``calls`` times (after a few untimed ones) and summarises."""
    rng = random.Random(seed)
    for _ in range(3):
        query(store, rng)
    durations, totals, items = [], [], []
    for _ in range(calls):
        started = time.perf_counter()
        page = query(store, rng)
        durations.append(time.perf_counter() - started)
        totals.append(page.total)
        items.append(len(page.items))
    plans = explain(store, query, random.Random(seed))
    return Result(
        store=store_name,
        query=name,
        calls=calls,
        median_ms=round(statistics.median(durations) * 1000, 2),
        p99_ms=round(nearest_rank(durations, 0.99) * 1000, 2),
        mean_total=round(statistics.fmean(totals), 1),
        mean_items=round(statistics.fmean(items), 1),
        plan=access_paths(plans),
        explain=plans,
    )


def measure_store(
    store_name: str, settings: Settings, arguments: argparse.Namespace
) -> tuple[GenerationReport, RebuildReport, list[Result]]:
    """Generates the portfolio on one store, rebuilds it and times the queries."""
    app = AccountPlans(settings)
    try:
        progress(f"{store_name}: generating {arguments.plans:,} plans")
        generated = generate(
            app,
            plans=arguments.plans,
            events_per_plan=arguments.events_per_plan,
            seed=arguments.seed,
        )
        progress(f"{store_name}: {generated.events:,} events; rebuilding")
        runner = ProjectionRunner(app, default_projections())
        rebuilt = runner.rebuild()
        store = runner.store
        if store.is_postgres:
            # Fresh tables have no statistics until autovacuum gets to them;
            # gather them now so that every run is planned alike.
            with store.transaction(commit=True) as cursor:
                cursor.execute(sql.SQL("ANALYZE"))
        with store.transaction(commit=False) as cursor:
            cursor.execute(
                sql.SQL(
                    "SELECT MIN(recorded_us) AS a, MAX(recorded_us) AS b FROM {}"
                ).format(store.table("soh_read_audit"))
            )
            row = cursor.fetchone() or {}
            cursor.execute(
                sql.SQL("SELECT plan_id FROM {}").format(store.table("soh_read_plans"))
            )
            plan_ids = [UUID(r["plan_id"]) for r in cursor.fetchall()]
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        first = epoch + timedelta(microseconds=int(row["a"]))
        last = epoch + timedelta(microseconds=int(row["b"]))
        results = []
        for name, query in cases(plan_ids, first, last, len(plan_ids)).items():
            progress(f"{store_name}: {name}")
            results.append(
                time_case(
                    store_name, store, name, query, arguments.calls, arguments.seed
                )
            )
    finally:
        app.close()
    return generated, rebuilt, results


def summary(results: Sequence[Result]) -> str:
    """Returns the latencies as a table."""
    header = (
        "store",
        "query",
        "median ms",
        "p99 ms",
        "matching",
        "rows",
        "executed as",
    )
    rows = [
        (
            r.store,
            r.query,
            f"{r.median_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.mean_total:,.0f}",
            f"{r.mean_items:.0f}",
            r.plan,
        )
        for r in results
    ]
    lines = table(header, rows, last_left=True).splitlines()
    return "\n".join(line.rstrip() for line in lines)


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--plans", type=int, default=10_000, help="plans per store (default: 10000)"
    )
    parser.add_argument(
        "--events-per-plan",
        type=int,
        default=30,
        help="events per plan (default: 30: two or three rated quarters)",
    )
    parser.add_argument(
        "--calls", type=int, default=300, help="timed calls per query (default: 300)"
    )
    add_store_options(parser, DEFAULT_POSTGRES_URL)
    parser.add_argument("--seed", type=int, default=2024, help="generator seed")
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS_PATH,
        help="where to write the JSON results (default: bench/results/queries.json)",
    )
    arguments = parser.parse_args(argv)
    check_stores(parser, arguments)
    if arguments.plans < 1 or arguments.calls < 1 or arguments.events_per_plan < 10:
        parser.error("--plans and --calls: at least 1; --events-per-plan: 10.")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark on each store, prints the table and writes the JSON."""
    arguments = parse_arguments(argv)
    facts = machine_facts(arguments.stores, arguments.postgres_url)
    started_at = datetime.now(UTC)
    prepared: dict[str, dict[str, Any]] = {}
    results: list[Result] = []
    for store in arguments.stores:
        with open_store(store, arguments.postgres_url) as settings:
            generated, rebuilt, found = measure_store(store, settings, arguments)
        prepared[store] = {
            "generation": asdict(generated),
            "rebuild": asdict(rebuilt),
        }
        results += found

    print(facts_line(facts))
    print(
        f"{arguments.plans:,} plans of ~{arguments.events_per_plan} events per "
        f"store; {arguments.calls} timed calls per query, pages of 50"
    )
    for store, done in prepared.items():
        generation, rebuild = done["generation"], done["rebuild"]
        print(
            f"{store}: {generation['events']:,} events generated in "
            f"{generation['seconds']:.0f}s, read models rebuilt in "
            f"{rebuild['seconds']:.0f}s ({rebuild['events_per_second']:,.0f} events/s)"
        )
    print()
    print(summary(results))

    report = {
        "started_at": started_at.isoformat(),
        "machine": facts,
        "parameters": {
            "plans": arguments.plans,
            "events_per_plan": arguments.events_per_plan,
            "calls": arguments.calls,
            "stores": arguments.stores,
            "seed": arguments.seed,
        },
        "prepared": prepared,
        "results": [asdict(r) for r in results],
    }
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWritten to {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the read-side benchmarks share: fresh stores, machine facts and tables."""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from soh_es.settings import Settings

STORES = ("sqlite", "postgres")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def progress(message: str) -> None:
    """Writes a line about the run's progress to standard error."""
    print(message, file=sys.stderr, flush=True)


def nearest_rank(samples: Sequence[float], fraction: float) -> float:
    """Returns the nearest-rank percentile of ``samples`` (0 < fraction <= 1)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def parse_stores(text: str) -> list[str] | None:
    """Returns the stores named in a comma-separated list, or None if one is unknown."""
    stores = [s.strip() for s in text.split(",") if s.strip()]
    if not stores or any(s not in STORES for s in stores):
        return None
    return list(dict.fromkeys(stores))


def add_store_options(parser: argparse.ArgumentParser, postgres_url: str) -> None:
    """Adds ``--stores`` and ``--postgres-url`` to a benchmark's options."""
    parser.add_argument(
        "--stores",
        default="sqlite,postgres",
        help="comma-separated stores to measure (default: sqlite,postgres)",
    )
    parser.add_argument(
        "--postgres-url",
        default=postgres_url,
        help=f"database to drop, create, use and drop again (default: {postgres_url})",
    )


def check_stores(parser: argparse.ArgumentParser, arguments: Any) -> None:
    """Replaces ``arguments.stores`` by the list it names, or stops the parser."""
    stores = parse_stores(arguments.stores)
    if stores is None:
        parser.error(f"--stores {arguments.stores!r}: choose from sqlite,postgres.")
    arguments.stores = stores


def admin_url(url: str) -> str:
    """Returns the URL of the maintenance database on the same server."""
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def database_name(url: str) -> str:
    """Returns the database a PostgreSQL URL names."""
    return urlsplit(url).path.lstrip("/")


def _drop_database(url: str) -> None:
    name = sql.Identifier(database_name(url))
    with psycopg.connect(admin_url(url), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


@contextmanager
def postgres_database(url: str) -> Iterator[Settings]:
    """Yields settings for a freshly created database, and drops it afterwards."""
    _drop_database(url)
    name = sql.Identifier(database_name(url))
    with psycopg.connect(admin_url(url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
    try:
        yield Settings(url)
    finally:
        _drop_database(url)


@contextmanager
def sqlite_file(directory: Path | None = None) -> Iterator[Settings]:
    """Yields settings for a new SQLite file in a temporary directory; removes it."""
    path = Path(tempfile.mkdtemp(prefix="soh-bench-", dir=directory))
    try:
        yield Settings(f"sqlite:///{path / 'soh.sqlite3'}")
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def open_store(
    store: str, postgres_url: str, *, sqlite_dir: Path | None = None
) -> Iterator[Settings]:
    """Yields settings for an empty store of the given kind and cleans it up."""
    if store == "sqlite":
        with sqlite_file(sqlite_dir) as settings:
            yield settings
    else:
        with postgres_database(postgres_url) as settings:
            yield settings


def machine_facts(stores: Sequence[str], postgres_url: str) -> dict[str, Any]:
    """Returns what a reader needs to compare this run with another."""
    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "optimize_flag": sys.flags.optimize,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "eventsourcing": package_version("eventsourcing"),
        "psycopg": package_version("psycopg"),
        "sqlite": sqlite3.sqlite_version,
    }
    if "postgres" in stores:
        with psycopg.connect(admin_url(postgres_url)) as connection:
            row = connection.execute("SHOW server_version").fetchone()
        facts["postgresql"] = None if row is None else row[0]
    return facts


def facts_line(facts: dict[str, Any]) -> str:
    """Returns the machine facts as one line for the top of a printed table."""
    return (
        f"Python {facts['python']} ({facts['implementation']}, "
        f"optimize={facts['optimize_flag']}), {facts['cpu_count']} CPUs "
        f"(load {facts['load_average_at_start'][0]} at start), "
        f"eventsourcing {facts['eventsourcing']}, SQLite {facts['sqlite']}"
        + (f", PostgreSQL {facts['postgresql']}" if "postgresql" in facts else "")
    )


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    left: int = 2,
    last_left: bool = False,
) -> str:
    """Returns rows as an aligned text table.

    The first ``left`` columns align left, and the last one too if asked;
    the others, numbers, align right.
    """
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    last = len(header) - 1

    def line(cells: Sequence[str]) -> str:
        return " | ".join(
            cell.ljust(width)
            if index < left or (last_left and index == last)
            else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    lines = [line(header), "-+-".join("-" * w for w in widths)]
    lines += [line(row) for row in rows]
    return "\n".join(lines)

"""A small read-store adapter over the application's SQLite or PostgreSQL datastore.

Statements are composed once with ``psycopg.sql`` and rendered for the store
at hand: PostgreSQL takes them as they are, SQLite gets ``?`` placeholders.
Rows come back as plain dictionaries on both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg import sql

POSITIONS_TABLE = "soh_projection_positions"

# Any constant will do; it only has to be the same in every process.
_DDL_LOCK_KEY = 7_201_446_113


@dataclass(frozen=True)
class Column:
    """A column of a read table; ``type`` is TEXT, INTEGER or BIGINT."""

    name: str
    type: str
    nullable: bool = True


@dataclass(frozen=True)
class Index:
    """A secondary index of a read table."""

    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """The shape of a read table, from which both stores' DDL is composed."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    indexes: tuple[Index, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        """The names of the columns, in order."""
        return tuple(column.name for column in self.columns)


class ReadCursor:
    """A cursor inside one read-store transaction."""

    def __init__(self, store: ReadStore, cursor: Any) -> None:
        self._store = store
        self._cursor = cursor

    def execute(self, query: sql.Composable, params: Sequence[Any] = ()) -> None:
        """Runs one statement with its parameters."""
        self._cursor.execute(self._store.render(query), self._store.values(params))

    def executemany(self, query: sql.Composable, rows: Iterable[Sequence[Any]]) -> None:
        """Runs one statement once per row of parameters."""
        found = [self._store.values(row) for row in rows]
        if found:
            self._cursor.executemany(self._store.render(query), found)

    def fetchall(self) -> list[dict[str, Any]]:
        """Returns the remaining rows of the last query as dictionaries."""
        return [dict(row) for row in self._cursor.fetchall()]

    def fetchone(self) -> dict[str, Any] | None:
        """Returns the next row of the last query, or None."""
        row = self._cursor.fetchone()
        return None if row is None else dict(row)

    @property
    def rowcount(self) -> int:
        """The number of rows the last statement changed."""
        return int(self._cursor.rowcount)


class ReadStore:
    """Transactions, table names and DDL for read tables in the event store."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
        self.is_postgres = isinstance(datastore, PostgresDatastore)

    @classmethod
    def of(cls, app: Application[Any]) -> ReadStore:
        """Returns the read store that shares ``app``'s database."""
        datastore = app.factory.datastore  # type: ignore[attr-defined]
        if not isinstance(datastore, SQLiteDatastore | PostgresDatastore):
            raise TypeError(f"{datastore!r} is neither SQLite nor PostgreSQL.")
        return cls(datastore)

    # Composition.

    def table(self, name: str) -> sql.Identifier:
        """Returns the qualified identifier of the table called ``name``."""
        if isinstance(self.datastore, PostgresDatastore):
            return sql.Identifier(self.datastore.schema or "public", name)
        return sql.Identifier(name)

    def render(self, query: sql.Composable) -> Any:
        """Returns ``query`` in the form this store's driver takes."""
        if self.is_postgres:
            return query
        # Our statements hold no literals, so every %s is a placeholder.
        return query.as_string().replace("%s", "?")

    def values(self, params: Sequence[Any]) -> tuple[Any, ...]:
        """Returns parameters as this store can take them.

        PostgreSQL text cannot hold NUL characters, which events may carry
        (their payloads are stored as bytes): in read rows and lookups they
        become U+FFFD. JSON documents keep them, escaped as ``\\u0000``.
        """
        if not self.is_postgres:
            return tuple(params)
        return tuple(
            value.replace("\x00", "\ufffd")
            if isinstance(value, str) and "\x00" in value
            else value
            for value in params
        )

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[ReadCursor]:
        """Yields a cursor in one transaction, committed only if asked and clean."""
        with self.datastore.transaction(commit=commit) as cursor:
            # The SQLite wrapper hides the row count; use the driver's cursor.
            yield ReadCursor(self, getattr(cursor, "sqlite_cursor", cursor))

    # Schema.

    def lock_schema(self, cursor: ReadCursor) -> None:
        """Serialises schema changes of several processes (PostgreSQL only)."""
        if self.is_postgres:
            cursor.execute(
                sql.SQL("SELECT pg_advisory_xact_lock(%s)"), (_DDL_LOCK_KEY,)
            )

    def create_positions_table(self, cursor: ReadCursor) -> None:
        """Creates the table of projection positions if it is missing."""
        cursor.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                "name TEXT NOT NULL PRIMARY KEY, position BIGINT NOT NULL)"
            ).format(self.table(POSITIONS_TABLE))
        )

    def create_table(
        self, cursor: ReadCursor, table: Table, *, suffix: str = ""
    ) -> None:
        """Creates ``table`` (named with ``suffix``) and its indexes if missing."""
        columns = [
            sql.SQL("{} {}{}").format(
                sql.Identifier(column.name),
                sql.SQL(column.type),
                sql.SQL("" if column.nullable else " NOT NULL"),
            )
            for column in table.columns
        ]
        columns.append(
            sql.SQL("CONSTRAINT {} PRIMARY KEY ({})").format(
                sql.Identifier(table.name + suffix + "_pkey"),
                sql.SQL(", ").join(map(sql.Identifier, table.primary_key)),
            )
        )
        cursor.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                self.table(table.name + suffix), sql.SQL(", ").join(columns)
            )
        )
        for index in table.indexes:
            self._create_index(cursor, table, index, suffix)

    def _create_index(
        self, cursor: ReadCursor, table: Table, index: Index, suffix: str
    ) -> None:
        cursor.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                sql.Identifier(index.name + suffix),
                self.table(table.name + suffix),
                sql.SQL(", ").join(map(sql.Identifier, index.columns)),
            )
        )

    def drop_table(self, cursor: ReadCursor, table: Table, *, suffix: str) -> None:
        """Drops ``table`` named with ``suffix``, with its indexes, if it exists."""
        cursor.execute(
            sql.SQL("DROP TABLE IF EXISTS {}").format(self.table(table.name + suffix))
        )

    def replace_table(self, cursor: ReadCursor, table: Table, *, suffix: str) -> None:
        """Replaces ``table`` with its copy named with ``suffix``.

        The old table is dropped and the copy, its key and its indexes are
        renamed to the canonical names, so the next copy can be built again.
        """
        self.drop_table(cursor, table, suffix="")
        cursor.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                self.table(table.name + suffix), sql.Identifier(table.name)
            )
        )
        if self.is_postgres:
            renames = [(table.name + "_pkey", table.name + suffix + "_pkey")]
            renames += [(index.name, index.name + suffix) for index in table.indexes]
            for canonical, built in renames:
                cursor.execute(
                    sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                        self.table(built), sql.Identifier(canonical)
                    )
                )
            return
        # SQLite cannot rename an index: build it again under its own name.
        for index in table.indexes:
            cursor.execute(
                sql.SQL("DROP INDEX IF EXISTS {}").format(
                    sql.Identifier(index.name + suffix)
                )
            )
            self._create_index(cursor, table, index, "")

    # Statements.

    def insert(self, table: str, columns: Sequence[str]) -> sql.Composed:
        """Returns an INSERT of one row into ``table``."""
        return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            self.table(table),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        )

    def upsert(
        self, table: str, columns: Sequence[str], key: Sequence[str]
    ) -> sql.Composed:
        """Returns an INSERT of one row that replaces the row with the same key."""
        updates = [
            sql.SQL("{} = excluded.{}").format(sql.Identifier(c), sql.Identifier(c))
            for c in columns
            if c not in key
        ]
        return sql.SQL("{} ON CONFLICT ({}) DO UPDATE SET {}").format(
            self.insert(table, columns),
            sql.SQL(", ").join(map(sql.Identifier, key)),
            sql.SQL(", ").join(updates),
        )


def row_values(row: Mapping[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    """Returns the values of ``row`` in the order of ``columns``."""
    return tuple(row[column] for column in columns)


def to_json(value: Any) -> str:
    """Returns plain data as compact JSON text; ids are written as strings."""
    return json.dumps(value, separators=(",", ":"), default=str)

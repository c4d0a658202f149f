"""The production store: PostgreSQL, with the event index and the stakeholder keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ProgrammingError, StoredEvent
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from soh_es.persistence import (
    GENESIS_HASH,
    IndexRow,
    first_versions,
    index_rows,
    to_micros,
)
from soh_es.personal import KeyStore

INDEX_TABLE = "soh_event_index"
KEYS_TABLE = "soh_stakeholder_keys"


class PostgresEventRecorder(PostgresApplicationRecorder):
    """Writes each event with its index row, and answers index queries."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(datastore.schema)
        self.index_table = SQL("{}.{}").format(schema, Identifier(INDEX_TABLE))
        self.sql_create_statements.extend(
            [
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    "originator_id uuid NOT NULL, "
                    "originator_version bigint NOT NULL, "
                    "recorded_us bigint NOT NULL, "
                    "hash bytea NOT NULL, "
                    "PRIMARY KEY (originator_id, originator_version))"
                ).format(self.index_table),
                SQL(
                    "CREATE INDEX IF NOT EXISTS soh_event_index_time "
                    "ON {} (originator_id, recorded_us)"
                ).format(self.index_table),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {}.{} ("
                    "subject text PRIMARY KEY, "
                    "key bytea, "
                    "created_us bigint NOT NULL, "
                    "destroyed_us bigint)"
                ).format(schema, Identifier(KEYS_TABLE)),
            ]
        )

    def _fetch_ids_after_insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> Sequence[int] | None:
        # The events are inserted and the table lock is held: chain onto the
        # last hash of each stream and write the index in the same transaction.
        notification_ids = super()._fetch_ids_after_insert_events(
            curs, stored_events, **kwargs
        )
        if "recorded" not in kwargs:
            raise ProgrammingError("Events must be saved with their recorded times.")
        previous = {}
        for originator_id, first in first_versions(stored_events).items():
            previous[originator_id] = self._hash_before(curs, originator_id, first)
        rows = index_rows(stored_events, kwargs["recorded"], previous)
        curs.executemany(
            SQL("INSERT INTO {} VALUES (%s, %s, %s, %s)").format(self.index_table),
            [
                (r.originator_id, r.originator_version, r.recorded_us, r.hash)
                for r in rows
            ],
        )
        return notification_ids

    def _hash_before(
        self, curs: Cursor[DictRow], originator_id: UUID, version: int
    ) -> bytes:
        if version == 1:
            return GENESIS_HASH
        curs.execute(
            SQL(
                "SELECT hash FROM {} "
                "WHERE originator_id = %s AND originator_version = %s"
            ).format(self.index_table),
            (originator_id, version - 1),
        )
        row = curs.fetchone()
        if row is None:
            raise ProgrammingError(
                f"No index row for {originator_id} version {version - 1}."
            )
        return bytes(row["hash"])

    def _fetch_one(self, query: SQL, params: tuple[Any, ...]) -> Any:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(query.format(self.index_table), params)
            row = curs.fetchone()
            return None if row is None else row["v"]

    def version_at(self, originator_id: UUID, instant: datetime) -> int | None:
        """Returns the last version recorded at or before ``instant``."""
        return self._fetch_one(
            SQL(
                "SELECT MAX(originator_version) AS v FROM {} "
                "WHERE originator_id = %s AND recorded_us <= %s"
            ),
            (originator_id, to_micros(instant)),
        )

    def head_version(self, originator_id: UUID) -> int | None:
        """Returns the stream's latest version, or None if it has no events."""
        return self._fetch_one(
            SQL("SELECT MAX(originator_version) AS v FROM {} WHERE originator_id = %s"),
            (originator_id,),
        )

    def index_of(self, originator_id: UUID) -> list[IndexRow]:
        """Returns the stream's index rows in version order."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT * FROM {} WHERE originator_id = %s "
                    "ORDER BY originator_version"
                ).format(self.index_table),
                (originator_id,),
            )
            return [
                IndexRow(
                    row["originator_id"],
                    row["originator_version"],
                    row["recorded_us"],
                    bytes(row["hash"]),
                )
                for row in curs.fetchall()
            ]

    def export_rows(
        self, after: int, limit: int
    ) -> list[tuple[int, StoredEvent, IndexRow]]:
        """Returns the events after notification ``after`` with their index rows."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT e.notification_id, e.originator_id, e.originator_version, "
                    "e.topic, e.state, i.recorded_us, i.hash "
                    "FROM {}.{} AS e JOIN {} AS i "
                    "ON i.originator_id = e.originator_id "
                    "AND i.originator_version = e.originator_version "
                    "WHERE e.notification_id > %s ORDER BY e.notification_id LIMIT %s"
                ).format(
                    Identifier(self.datastore.schema),
                    Identifier(self.events_table_name),
                    self.index_table,
                ),
                (after, limit),
            )
            return [
                (
                    row["notification_id"],
                    StoredEvent(
                        row["originator_id"],
                        row["originator_version"],
                        row["topic"],
                        bytes(row["state"]),
                    ),
                    IndexRow(
                        row["originator_id"],
                        row["originator_version"],
                        row["recorded_us"],
                        bytes(row["hash"]),
                    ),
                )
                for row in curs.fetchall()
            ]

    def originator_ids(self, topic: str) -> list[UUID]:
        """Returns the ids of the streams whose first event has ``topic``."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT originator_id FROM {}.{} "
                    "WHERE originator_version = 1 AND topic = %s "
                    "ORDER BY notification_id"
                ).format(
                    Identifier(self.datastore.schema),
                    Identifier(self.events_table_name),
                ),
                (topic,),
            )
            return [row["originator_id"] for row in curs.fetchall()]


class PostgresKeyStore(KeyStore):
    """Stakeholder keys in a table of the PostgreSQL database."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore
        self.table = SQL("{}.{}").format(
            Identifier(datastore.schema), Identifier(KEYS_TABLE)
        )

    def key_for(self, subject: str, *, create: bool) -> bytes | None:
        with self.datastore.transaction(commit=create) as curs:
            if create:
                curs.execute(
                    SQL(
                        "INSERT INTO {} (subject, key, created_us) "
                        "VALUES (%s, %s, %s) ON CONFLICT (subject) DO NOTHING"
                    ).format(self.table),
                    (subject, self.new_key(), to_micros(datetime.now(UTC))),
                )
            curs.execute(
                SQL("SELECT key FROM {} WHERE subject = %s").format(self.table),
                (subject,),
            )
            row = curs.fetchone()
            return None if row is None or row["key"] is None else bytes(row["key"])

    def destroy(self, subject: str) -> bool:
        now = to_micros(datetime.now(UTC))
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL(
                    "UPDATE {} SET key = NULL, destroyed_us = %s "
                    "WHERE subject = %s AND key IS NOT NULL"
                ).format(self.table),
                (now, subject),
            )
            destroyed = curs.rowcount > 0
            curs.execute(
                SQL(
                    "INSERT INTO {} (subject, key, created_us, destroyed_us) "
                    "VALUES (%s, NULL, %s, %s) ON CONFLICT (subject) DO NOTHING"
                ).format(self.table),
                (subject, now, now),
            )
            return destroyed

    def all_keys(self) -> dict[str, bytes | None]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT subject, key FROM {}").format(self.table))
            return {
                row["subject"]: None if row["key"] is None else bytes(row["key"])
                for row in curs.fetchall()
            }

    def restore_keys(self, keys: dict[str, bytes | None]) -> None:
        now = to_micros(datetime.now(UTC))
        with self.datastore.transaction(commit=True) as curs:
            curs.executemany(
                SQL(
                    "INSERT INTO {} (subject, key, created_us, destroyed_us) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (subject) DO NOTHING"
                ).format(self.table),
                [
                    (subject, key, now, None if key is not None else now)
                    for subject, key in keys.items()
                ],
            )


class PostgresStore(PostgresFactory):
    """The infrastructure factory for the PostgreSQL store."""

    application_recorder_class = PostgresEventRecorder

    def key_store(self) -> KeyStore:
        """Returns the store's stakeholder key table."""
        return PostgresKeyStore(self.datastore)

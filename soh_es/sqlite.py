"""The embedded store: SQLite, with the event index and the stakeholder keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ProgrammingError, StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
)

from soh_es.persistence import (
    GENESIS_HASH,
    IndexRow,
    first_versions,
    index_rows,
    to_micros,
)
from soh_es.personal import KeyStore

INDEX_TABLE = (
    "CREATE TABLE IF NOT EXISTS soh_event_index ("
    "originator_id TEXT NOT NULL, "
    "originator_version INTEGER NOT NULL, "
    "recorded_us INTEGER NOT NULL, "
    "hash BLOB NOT NULL, "
    "PRIMARY KEY (originator_id, originator_version)) WITHOUT ROWID"
)
INDEX_BY_TIME = (
    "CREATE INDEX IF NOT EXISTS soh_event_index_time "
    "ON soh_event_index (originator_id, recorded_us)"
)
KEYS_TABLE = (
    "CREATE TABLE IF NOT EXISTS soh_stakeholder_keys ("
    "subject TEXT PRIMARY KEY, "
    "key BLOB, "
    "created_us INTEGER NOT NULL, "
    "destroyed_us INTEGER)"
)


class SQLiteEventRecorder(SQLiteApplicationRecorder):
    """Writes each event with its index row, and answers index queries."""

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        return [*statements, INDEX_TABLE, INDEX_BY_TIME, KEYS_TABLE]

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> Sequence[int] | None:
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        if "recorded" not in kwargs:
            raise ProgrammingError("Events must be saved with their recorded times.")
        previous = {}
        for originator_id, first in first_versions(stored_events).items():
            previous[originator_id] = self._hash_before(c, originator_id, first)
        rows = index_rows(stored_events, kwargs["recorded"], previous)
        c.executemany(
            "INSERT INTO soh_event_index VALUES (?, ?, ?, ?)",
            [
                (r.originator_id.hex, r.originator_version, r.recorded_us, r.hash)
                for r in rows
            ],
        )
        return notification_ids

    @staticmethod
    def _hash_before(c: SQLiteCursor, originator_id: UUID, version: int) -> bytes:
        if version == 1:
            return GENESIS_HASH
        c.execute(
            "SELECT hash FROM soh_event_index "
            "WHERE originator_id = ? AND originator_version = ?",
            (originator_id.hex, version - 1),
        )
        row = c.fetchone()
        if row is None:
            raise ProgrammingError(
                f"No index row for {originator_id} version {version - 1}."
            )
        return bytes(row["hash"])

    def version_at(self, originator_id: UUID, instant: datetime) -> int | None:
        """Returns the last version recorded at or before ``instant``."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT MAX(originator_version) AS v FROM soh_event_index "
                "WHERE originator_id = ? AND recorded_us <= ?",
                (originator_id.hex, to_micros(instant)),
            )
            return c.fetchone()["v"]

    def head_version(self, originator_id: UUID) -> int | None:
        """Returns the stream's latest version, or None if it has no events."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT MAX(originator_version) AS v FROM soh_event_index "
                "WHERE originator_id = ?",
                (originator_id.hex,),
            )
            return c.fetchone()["v"]

    def index_of(self, originator_id: UUID) -> list[IndexRow]:
        """Returns the stream's index rows in version order."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT * FROM soh_event_index WHERE originator_id = ? "
                "ORDER BY originator_version",
                (originator_id.hex,),
            )
            return [
                IndexRow(
                    UUID(row["originator_id"]),
                    row["originator_version"],
                    row["recorded_us"],
                    bytes(row["hash"]),
                )
                for row in c.fetchall()
            ]

    def export_rows(
        self, after: int, limit: int
    ) -> list[tuple[int, StoredEvent, IndexRow]]:
        """Returns the events after notification ``after`` with their index rows."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT e.rowid AS position, e.*, i.recorded_us, i.hash "
                f"FROM {self.events_table_name} AS e JOIN soh_event_index AS i "
                "ON i.originator_id = e.originator_id "
                "AND i.originator_version = e.originator_version "
                "WHERE e.rowid > ? ORDER BY e.rowid LIMIT ?",
                (after, limit),
            )
            rows = []
            for row in c.fetchall():
                originator_id = UUID(row["originator_id"])
                version = row["originator_version"]
                rows.append(
                    (
                        row["position"],
                        StoredEvent(originator_id, version, row["topic"], row["state"]),
                        IndexRow(
                            originator_id, version, row["recorded_us"], row["hash"]
                        ),
                    )
                )
            return rows

    def originator_ids(self, topic: str) -> list[UUID]:
        """Returns the ids of the streams whose first event has ``topic``."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_id FROM {self.events_table_name} "
                "WHERE originator_version = 1 AND topic = ? ORDER BY rowid",
                (topic,),
            )
            return [UUID(row["originator_id"]) for row in c.fetchall()]


class SQLiteKeyStore(KeyStore):
    """Stakeholder keys in a table of the SQLite database."""

    def __init__(self, datastore: SQLiteDatastore) -> None:
        self.datastore = datastore

    def key_for(self, subject: str, *, create: bool) -> bytes | None:
        with self.datastore.transaction(commit=create) as c:
            if create:
                c.execute(
                    "INSERT OR IGNORE INTO soh_stakeholder_keys "
                    "(subject, key, created_us) VALUES (?, ?, ?)",
                    (subject, self.new_key(), to_micros(datetime.now(UTC))),
                )
            c.execute(
                "SELECT key FROM soh_stakeholder_keys WHERE subject = ?", (subject,)
            )
            row = c.fetchone()
            return None if row is None or row["key"] is None else bytes(row["key"])

    def destroy(self, subject: str) -> bool:
        now = to_micros(datetime.now(UTC))
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                "SELECT key FROM soh_stakeholder_keys WHERE subject = ?", (subject,)
            )
            row = c.fetchone()
            c.execute(
                "INSERT OR REPLACE INTO soh_stakeholder_keys "
                "(subject, key, created_us, destroyed_us) VALUES (?, NULL, ?, ?)",
                (subject, now, now),
            )
            return row is not None and row["key"] is not None

    def all_keys(self) -> dict[str, bytes | None]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT subject, key FROM soh_stakeholder_keys")
            return {
                row["subject"]: None if row["key"] is None else bytes(row["key"])
                for row in c.fetchall()
            }

    def restore_keys(self, keys: dict[str, bytes | None]) -> None:
        now = to_micros(datetime.now(UTC))
        with self.datastore.transaction(commit=True) as c:
            c.executemany(
                "INSERT OR IGNORE INTO soh_stakeholder_keys "
                "(subject, key, created_us, destroyed_us) VALUES (?, ?, ?, ?)",
                [
                    (subject, key, now, None if key is not None else now)
                    for subject, key in keys.items()
                ],
            )


class SQLiteStore(SQLiteFactory):
    """The infrastructure factory for the embedded store."""

    application_recorder_class = SQLiteEventRecorder

    def key_store(self) -> KeyStore:
        """Returns the store's stakeholder key table."""
        return SQLiteKeyStore(self.datastore)

"""What both stores share: transcodings, the hash chain and the event index.

Every event is written together with one row of the event index, in the same
transaction: the time it was recorded (for reads as of an instant) and a hash
that covers the stored event and the hash of the event before it in the same
stream (so an altered, missing or reordered event is detected).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent, Transcoding

from soh_es.personal import KeyStore
from soh_es.quarters import Quarter

GENESIS_HASH = bytes(32)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(instant: datetime) -> int:
    """Returns ``instant`` as whole microseconds since the Unix epoch."""
    return (instant - EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    """Returns the UTC instant ``micros`` microseconds after the Unix epoch."""
    return EPOCH + timedelta(microseconds=micros)


def chain_hash(previous: bytes, event: StoredEvent) -> bytes:
    """Returns the SHA-256 hash of ``event`` chained to the ``previous`` hash.

    The hashed bytes are the previous hash, then the originator id, version
    and topic as UTF-8 text separated by newlines, then a newline and the
    stored state exactly as written.
    """
    head = f"{event.originator_id}\n{event.originator_version}\n{event.topic}\n"
    return hashlib.sha256(previous + head.encode() + bytes(event.state)).digest()


@dataclass(frozen=True)
class IndexRow:
    """One row of the event index."""

    originator_id: UUID
    originator_version: int
    recorded_us: int
    hash: bytes


class KeyedStore(Protocol):
    """An infrastructure factory that also keeps stakeholder keys."""

    def key_store(self) -> KeyStore:
        """Returns the store's stakeholder key table."""


class EventIndex(Protocol):
    """What both stores' recorders answer about the event index."""

    def version_at(self, originator_id: UUID, instant: datetime) -> int | None:
        """Returns the last version recorded at or before ``instant``."""

    def head_version(self, originator_id: UUID) -> int | None:
        """Returns the stream's latest version, or None if it has no events."""

    def index_of(self, originator_id: UUID) -> list[IndexRow]:
        """Returns the stream's index rows in version order."""

    def originator_ids(self, topic: str) -> list[UUID]:
        """Returns the ids of the streams whose first event has ``topic``."""

    def export_rows(
        self, after: int, limit: int
    ) -> list[tuple[int, StoredEvent, IndexRow]]:
        """Returns the events after notification ``after`` with their index rows."""


def index_rows(
    stored_events: Sequence[StoredEvent],
    recorded: Mapping[tuple[UUID, int], datetime],
    previous_hashes: Mapping[UUID, bytes],
) -> list[IndexRow]:
    """Returns the index rows for a batch of events about to be inserted.

    ``previous_hashes`` holds, for each stream in the batch, the hash of the
    event just before the batch's first (the genesis hash for a new stream).
    """
    last = dict(previous_hashes)
    rows = []
    for event in stored_events:
        originator_id = UUID(str(event.originator_id))
        digest = chain_hash(last[originator_id], event)
        last[originator_id] = digest
        rows.append(
            IndexRow(
                originator_id,
                event.originator_version,
                to_micros(recorded[(originator_id, event.originator_version)]),
                digest,
            )
        )
    return rows


def first_versions(stored_events: Iterable[StoredEvent]) -> dict[UUID, int]:
    """Returns the lowest version per stream in a batch of events."""
    firsts: dict[UUID, int] = {}
    for event in stored_events:
        originator_id = UUID(str(event.originator_id))
        version = event.originator_version
        firsts[originator_id] = min(version, firsts.get(originator_id, version))
    return firsts


class DateAsISO(Transcoding):
    """Stores a date as ``YYYY-MM-DD``."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class QuarterAsText(Transcoding):
    """Stores a quarter as ``YYYY-Qn``."""

    type = Quarter
    name = "quarter"

    def encode(self, obj: Quarter) -> str:
        return str(obj)

    def decode(self, data: str) -> Quarter:
        return Quarter.parse(data)


class EnumAsValue(Transcoding):
    """Stores a member of one enumeration as its value."""

    def __init__(self, enum: type[Enum]) -> None:
        self.type = enum
        self.name = f"enum.{enum.__name__}"

    def encode(self, obj: Enum) -> Any:
        return obj.value

    def decode(self, data: Any) -> Enum:
        return self.type(data)

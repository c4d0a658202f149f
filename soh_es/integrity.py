"""Checks of the hash chains, and the export a third party can check offline.

Offline check of an export (one JSON object per line, in stream order):
start from 32 zero bytes; for each line compute SHA-256 over the previous
hash, then ``"{originator_id}\\n{originator_version}\\n{topic}\\n"`` in UTF-8,
then ``state`` in UTF-8; the result must equal the line's ``hash`` (hex), and
versions must run 1, 2, 3 ... without gaps.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from soh_es.errors import ValidationError
from soh_es.persistence import GENESIS_HASH, IndexRow, chain_hash


@dataclass(frozen=True)
class ChainReport:
    """Whether one stream's chain verifies, and if not, where it first breaks."""

    originator_id: UUID
    events: int
    intact: bool
    first_bad_version: int | None = None
    problem: str | None = None


def verify_stream(
    originator_id: UUID,
    stored_events: Sequence[StoredEvent],
    index: Sequence[IndexRow],
) -> ChainReport:
    """Walks one stream's events against its index and reports the first break.

    A changed byte breaks the hash of its event; a deleted event leaves a gap
    in the versions; two swapped events break the hash of the first of them.
    """
    recorded = {row.originator_version: row for row in index}
    previous = GENESIS_HASH
    expected_version = 1
    for event in stored_events:
        version = event.originator_version
        if version != expected_version:
            return ChainReport(
                originator_id,
                len(stored_events),
                False,
                expected_version,
                f"version {expected_version} is missing from the event log",
            )
        row = recorded.get(version)
        digest = chain_hash(previous, event)
        if row is None or row.hash != digest:
            return ChainReport(
                originator_id,
                len(stored_events),
                False,
                version,
                f"version {version} does not match its recorded hash",
            )
        previous = digest
        expected_version += 1
    if len(index) >= expected_version:
        return ChainReport(
            originator_id,
            len(stored_events),
            False,
            expected_version,
            f"version {expected_version} is indexed but missing from the event log",
        )
    return ChainReport(originator_id, len(stored_events), True)


def export_line(event: StoredEvent, row: IndexRow) -> str:
    """Returns one stored event as a JSON line, with its recorded time and hash."""
    line: dict[str, Any] = {
        "originator_id": str(event.originator_id),
        "originator_version": event.originator_version,
        "topic": event.topic,
        "state": bytes(event.state).decode("utf-8"),
        "recorded_us": row.recorded_us,
        "hash": row.hash.hex(),
    }
    return json.dumps(line, ensure_ascii=False, sort_keys=True)


def read_line(line: str) -> tuple[StoredEvent, IndexRow]:
    """Returns the stored event and index row of one exported line."""
    try:
        data = json.loads(line)
        originator_id = UUID(data["originator_id"])
        version = int(data["originator_version"])
        event = StoredEvent(
            originator_id, version, str(data["topic"]), data["state"].encode("utf-8")
        )
        row = IndexRow(
            originator_id,
            version,
            int(data["recorded_us"]),
            bytes.fromhex(data["hash"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValidationError(
            "line", f"{line[:80]!r} is not an exported event: {error}"
        ) from None
    return event, row


def verify_export(lines: Iterable[str]) -> list[ChainReport]:
    """Checks exported lines the way a third party would, stream by stream."""
    streams: dict[UUID, tuple[list[StoredEvent], list[IndexRow]]] = {}
    for line in lines:
        event, row = read_line(line)
        events, rows = streams.setdefault(row.originator_id, ([], []))
        events.append(event)
        rows.append(row)
    return [
        verify_stream(originator_id, events, rows)
        for originator_id, (events, rows) in streams.items()
    ]

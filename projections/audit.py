"""The audit log read model: one row per event across all plans and the register."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import sql

from projections.runner import Batch, ProjectedEvent, Projection
from projections.store import (
    Column,
    Index,
    ReadCursor,
    ReadStore,
    Table,
    row_values,
    to_json,
)
from soh_es.domain import ERASED, AccountPlan, RubricRegister
from soh_es.history import Change
from soh_es.persistence import to_micros
from soh_es.sections import RECORD_KINDS
from soh_es.views import plain

RUBRIC_SECTION = "rubric"

AUDIT = Table(
    "soh_read_audit",
    (
        Column("position", "BIGINT", nullable=False),
        Column("originator_id", "TEXT", nullable=False),
        Column("version", "INTEGER", nullable=False),
        Column("plan_id", "TEXT"),
        Column("event", "TEXT", nullable=False),
        Column("section", "TEXT", nullable=False),
        Column("actor", "TEXT", nullable=False),
        Column("recorded_at", "TEXT", nullable=False),
        Column("recorded_us", "BIGINT", nullable=False),
        Column("reason", "TEXT"),
        Column("source", "TEXT", nullable=False),
        Column("correlation_id", "TEXT", nullable=False),
        Column("record_kind", "TEXT"),
        Column("record_id", "TEXT"),
        Column("changes", "TEXT", nullable=False),
    ),
    primary_key=("position",),
    indexes=(
        Index("soh_read_audit_actor", ("actor", "recorded_us")),
        Index("soh_read_audit_plan", ("plan_id", "position")),
        Index("soh_read_audit_time", ("recorded_us",)),
        Index("soh_read_audit_record", ("record_id",)),
    ),
)

_STAKEHOLDER_PERSONAL = sorted(RECORD_KINDS["stakeholder"].personal_fields)


def change_fields(change: Change) -> list[dict[str, Any]]:
    """Returns a change's field changes as plain data."""
    return [
        {"field": c.field, "before": plain(c.before), "after": plain(c.after)}
        for c in change.changes
    ]


def audit_row(projected: ProjectedEvent) -> dict[str, Any]:
    """Returns the audit row of one event of a plan or of the rubric register."""
    event = projected.event
    change = projected.change
    if change is not None:
        return {
            "position": projected.position,
            "originator_id": str(event.originator_id),
            "version": change.version,
            "plan_id": str(event.originator_id),
            "event": change.event,
            "section": change.section,
            "actor": change.actor,
            "recorded_at": plain(change.recorded_at),
            "recorded_us": to_micros(change.recorded_at),
            "reason": change.reason,
            "source": change.source,
            "correlation_id": change.correlation_id,
            "record_kind": change.record_kind,
            "record_id": change.record_id,
            "changes": to_json(change_fields(change)),
        }
    fields: list[dict[str, Any]] = []
    if isinstance(event, RubricRegister.RubricAdopted):
        fields = [{"field": "rubric", "before": None, "after": plain(event.rubric)}]
    return {
        "position": projected.position,
        "originator_id": str(event.originator_id),
        "version": event.originator_version,
        "plan_id": None,
        "event": type(event).__name__,
        "section": RUBRIC_SECTION,
        "actor": event.actor,
        "recorded_at": plain(event.timestamp),
        "recorded_us": to_micros(event.timestamp),
        "reason": event.reason,
        "source": plain(event.source),
        "correlation_id": event.correlation_id,
        "record_kind": None,
        "record_id": None,
        "changes": to_json(fields),
    }


def erase_fields(event: str, fields: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Returns a stakeholder event's field changes with the personal ones erased.

    The result is what telling the event gives once the stakeholder's key is
    destroyed: the record shows every personal field as erased. Erasing twice
    changes nothing.
    """
    kept = [f for f in fields if f["field"] not in _STAKEHOLDER_PERSONAL]
    touched = len(kept) != len(fields)
    if event == AccountPlan.StakeholderAdded.__name__:
        before, after = None, ERASED
    elif event == AccountPlan.StakeholderRemoved.__name__:
        before, after = ERASED, None
    elif event == AccountPlan.StakeholderChanged.__name__ and not touched:
        return list(fields)
    else:
        before, after = ERASED, ERASED
    return kept + [
        {"field": name, "before": before, "after": after}
        for name in _STAKEHOLDER_PERSONAL
    ]


class AuditLog(Projection):
    """Keeps one row per event; an erasure rewrites that stakeholder's rows."""

    name = "audit"
    tables = (AUDIT,)

    def apply(self, cursor: ReadCursor, store: ReadStore, batch: Batch) -> None:
        table = self.table_name(AUDIT)
        columns = AUDIT.column_names
        cursor.executemany(
            store.insert(table, columns),
            [row_values(audit_row(e), columns) for e in batch.events],
        )
        for projected in batch.events:
            if isinstance(projected.event, AccountPlan.StakeholderErased):
                self._erase(cursor, store, projected)

    def _erase(
        self, cursor: ReadCursor, store: ReadStore, projected: ProjectedEvent
    ) -> None:
        table = store.table(self.table_name(AUDIT))
        cursor.execute(
            sql.SQL(
                "SELECT position, event, changes FROM {} "
                "WHERE record_id = %s AND plan_id = %s AND record_kind = %s"
            ).format(table),
            (projected.event.record_id, str(projected.plan_id), "stakeholder"),
        )
        updates = []
        for row in cursor.fetchall():
            fields = json.loads(row["changes"])
            erased = erase_fields(row["event"], fields)
            if erased != fields:
                updates.append((to_json(erased), row["position"]))
        cursor.executemany(
            sql.SQL("UPDATE {} SET changes = %s WHERE position = %s").format(table),
            updates,
        )


def parse_time(text: str) -> datetime:
    """Returns the instant of an ISO 8601 text written by the audit log."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))

"""The portfolio read model: each plan's barriers and market threats, normalized.

Portfolio figures are queries over the current plans table and this one
(see ``projections.queries.portfolio``); nothing here replays a stream.
"""

from __future__ import annotations

import re
from typing import Any

from psycopg import sql

from projections.runner import Batch, Projection
from projections.store import (
    Column,
    Index,
    ReadCursor,
    ReadStore,
    Table,
    row_values,
)
from soh_es.domain import AccountPlan
from soh_es.sections import Section

BARRIER = "barrier"
THREAT = "threat"

CONCERNS = Table(
    "soh_read_concerns",
    (
        Column("plan_id", "TEXT", nullable=False),
        Column("kind", "TEXT", nullable=False),
        Column("normalized", "TEXT", nullable=False),
        Column("text", "TEXT", nullable=False),
    ),
    primary_key=("plan_id", "kind", "normalized"),
    indexes=(Index("soh_read_concerns_text", ("kind", "normalized")),),
)

_NOT_WORD = re.compile(r"[^\w]+")


def normalize(text: str) -> str:
    """Returns ``text`` reduced to lower-case words, for grouping like concerns."""
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).split())


def concern_rows(plan: AccountPlan) -> list[dict[str, Any]]:
    """Returns the plan's barriers and threats, one row per distinct text."""
    found: dict[tuple[str, str], str] = {}
    texts = [(BARRIER, r["description"]) for r in plan.records["barrier"].values()]
    threats = plan.sections[Section.MARKET_DEMAND.value].get("threats") or []
    texts += [(THREAT, text) for text in threats]
    for kind, text in texts:
        key = normalize(text)
        if key:
            found.setdefault((kind, key), text)
    return [
        {"plan_id": str(plan.id), "kind": kind, "normalized": key, "text": text}
        for (kind, key), text in found.items()
    ]


def _changes_concerns(event: Any) -> bool:
    if isinstance(event, AccountPlan.SectionEdited):
        return event.edited is Section.MARKET_DEMAND and "threats" in event.values
    return getattr(type(event), "kind", None) == BARRIER


class Portfolio(Projection):
    """Keeps the barriers and threats of each plan for cross-partner patterns."""

    name = "portfolio"
    tables = (CONCERNS,)

    def apply(self, cursor: ReadCursor, store: ReadStore, batch: Batch) -> None:
        table = self.table_name(CONCERNS)
        plans = {
            e.plan_id: batch.plans[e.plan_id]
            for e in batch.events
            if e.plan_id is not None and _changes_concerns(e.event)
        }
        if not plans:
            return
        cursor.executemany(
            sql.SQL("DELETE FROM {} WHERE plan_id = %s").format(store.table(table)),
            [(str(plan_id),) for plan_id in plans],
        )
        columns = CONCERNS.column_names
        cursor.executemany(
            store.insert(table, columns),
            [
                row_values(row, columns)
                for plan in plans.values()
                for row in concern_rows(plan)
            ],
        )

"""The quarterly scores read model: per plan and quarter, ratings and labels."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import sql

from projections.runner import Batch, Projection
from projections.store import (
    Column,
    Index,
    ReadCursor,
    ReadStore,
    Table,
    row_values,
    to_json,
)
from soh_es.domain import AccountPlan
from soh_es.rubric import RubricSchedule
from soh_es.scorecard import score_quarters
from soh_es.views import plain, score_document

SCORES = Table(
    "soh_read_scores",
    (
        Column("plan_id", "TEXT", nullable=False),
        Column("quarter", "TEXT", nullable=False),
        Column("plan_version", "INTEGER", nullable=False),
        Column("rubric_version", "INTEGER", nullable=False),
        Column("complete", "INTEGER", nullable=False),
        Column("total", "INTEGER"),
        Column("band", "TEXT"),
        Column("trajectory", "TEXT"),
        Column("change", "INTEGER"),
        Column("compared_with", "TEXT"),
        Column("last_rated_by", "TEXT", nullable=False),
        Column("last_rated_at", "TEXT", nullable=False),
        Column("document", "TEXT", nullable=False),
    ),
    primary_key=("plan_id", "quarter"),
    indexes=(Index("soh_read_scores_quarter", ("quarter", "band")),),
)


def score_rows(plan: AccountPlan, schedule: RubricSchedule) -> list[dict[str, Any]]:
    """Returns one read row per rated quarter of ``plan``, oldest first."""
    # The version of the last rating, so the rows do not depend on where
    # batches happened to end.
    rated_version = max((r.plan_version or 0 for r in plan.ratings), default=0)
    rows = []
    for score in score_quarters(plan.ratings, schedule):
        latest = max(score.ratings.values(), key=lambda r: r.recorded_at, default=None)
        if latest is None:
            # A quarter rated only on indicators the rubric no longer has.
            latest = max(
                (r for r in plan.ratings if r.quarter == score.quarter),
                key=lambda r: r.recorded_at,
            )
        document = score_document(score)
        rows.append(
            {
                "plan_id": str(plan.id),
                "quarter": str(score.quarter),
                "plan_version": rated_version,
                "rubric_version": score.rubric_version,
                "complete": int(score.complete),
                "total": score.total,
                "band": score.band,
                "trajectory": score.trajectory,
                "change": score.change,
                "compared_with": document["compared_with"],
                "last_rated_by": latest.actor,
                "last_rated_at": plain(latest.recorded_at),
                "document": to_json(document),
            }
        )
    return rows


class QuarterlyScores(Projection):
    """Keeps each plan's quarterly scorecards under the rubric in force for each.

    A rating rewrites the plan's quarters (a late correction can change the
    trajectory of the quarters after it); a change of rubric rewrites all.
    """

    name = "scores"
    tables = (SCORES,)

    def apply(self, cursor: ReadCursor, store: ReadStore, batch: Batch) -> None:
        table = store.table(self.table_name(SCORES))
        plans = {
            e.plan_id: batch.plans[e.plan_id]
            for e in batch.events
            if isinstance(e.event, AccountPlan.IndicatorRated) and e.plan_id is not None
        }
        if batch.rubric_changed():
            cursor.execute(
                sql.SQL("SELECT DISTINCT plan_id, plan_version FROM {}").format(table)
            )
            stored = {
                UUID(row["plan_id"]): int(row["plan_version"])
                for row in cursor.fetchall()
                if UUID(row["plan_id"]) not in plans
            }
            plans.update(batch.plans_at(stored))
        if not plans:
            return
        cursor.executemany(
            sql.SQL("DELETE FROM {} WHERE plan_id = %s").format(table),
            [(str(plan_id),) for plan_id in plans],
        )
        columns = SCORES.column_names
        cursor.executemany(
            store.insert(self.table_name(SCORES), columns),
            [
                row_values(row, columns)
                for plan in plans.values()
                for row in score_rows(plan, batch.schedule)
            ],
        )

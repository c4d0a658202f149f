"""The current plans read model: one row per plan with what a list needs."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
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
from soh_es.rubric import DECLINING, RubricSchedule
from soh_es.scorecard import score_quarters
from soh_es.sections import OPEN_INITIATIVE_STATUSES, ActionStatus, InitiativeStatus
from soh_es.views import pipeline_metrics, plan_document

PLANS = Table(
    "soh_read_plans",
    (
        Column("plan_id", "TEXT", nullable=False),
        Column("version", "INTEGER", nullable=False),
        Column("partner", "TEXT", nullable=False),
        Column("owner", "TEXT", nullable=False),
        Column("status", "TEXT", nullable=False),
        Column("opened_on", "TEXT", nullable=False),
        Column("updated_at", "TEXT", nullable=False),
        Column("latest_quarter", "TEXT"),
        Column("total", "INTEGER"),
        Column("band", "TEXT"),
        Column("trajectory", "TEXT"),
        Column("declining_quarters", "INTEGER", nullable=False),
        Column("open_value_cents", "BIGINT", nullable=False),
        Column("weighted_forecast_cents", "BIGINT", nullable=False),
        Column("active_opportunities", "INTEGER", nullable=False),
        Column("open_initiatives", "INTEGER", nullable=False),
        Column("open_actions", "INTEGER", nullable=False),
        Column("next_action_due", "TEXT"),
        Column("action_due_dates", "TEXT", nullable=False),
        Column("last_review_on", "TEXT"),
        Column("review_basis_on", "TEXT", nullable=False),
        Column("document", "TEXT", nullable=False),
    ),
    primary_key=("plan_id",),
    indexes=(
        Index("soh_read_plans_partner", ("partner", "plan_id")),
        # Each filter's index also holds the list order, so a filtered page
        # is read in order instead of sorted.
        Index("soh_read_plans_owner", ("owner", "partner", "plan_id")),
        Index("soh_read_plans_band", ("band", "partner", "plan_id")),
        Index("soh_read_plans_trajectory", ("trajectory", "partner", "plan_id")),
        Index("soh_read_plans_status", ("status", "partner", "plan_id")),
        Index("soh_read_plans_review", ("review_basis_on",)),
    ),
)


def to_cents(amount: str | Decimal | None) -> int:
    """Returns an amount of money as a whole number of cents."""
    return 0 if amount is None else int(Decimal(amount) * 100)


def declining_streak(trajectories: list[str | None]) -> int:
    """Returns how many of the latest complete quarters in a row were declining."""
    streak = 0
    for trajectory in reversed([t for t in trajectories if t is not None]):
        if trajectory != DECLINING:
            break
        streak += 1
    return streak


def plan_row(plan: AccountPlan, schedule: RubricSchedule) -> dict[str, Any]:
    """Returns the read row of ``plan``: list fields and the full document."""
    scores = score_quarters(plan.ratings, schedule)
    complete = [score for score in scores if score.complete]
    latest = complete[-1] if complete else None
    metrics = pipeline_metrics(
        {"id": key, **record} for key, record in plan.records["opportunity"].items()
    )
    initiatives = plan.records["initiative"].values()
    open_due = sorted(
        record["due_date"].isoformat()
        for record in plan.records["action"].values()
        if record.get("status", ActionStatus.OPEN) is ActionStatus.OPEN
        and record.get("due_date") is not None
    )
    open_actions = [
        record
        for record in plan.records["action"].values()
        if record.get("status", ActionStatus.OPEN) is ActionStatus.OPEN
    ]
    reviewed: list[date] = [review["reviewed_on"] for review in plan.reviews]
    last_review = max(reviewed) if reviewed else None
    opened_on = plan.created_on.date()
    document = plan_document(plan, schedule)
    return {
        "plan_id": str(plan.id),
        "version": plan.version,
        "partner": plan.partner,
        "owner": plan.owner,
        "status": plan.status.value,
        "opened_on": opened_on.isoformat(),
        "updated_at": document["updated_at"],
        "latest_quarter": None if latest is None else str(latest.quarter),
        "total": None if latest is None else latest.total,
        "band": None if latest is None else latest.band,
        "trajectory": None if latest is None else latest.trajectory,
        "declining_quarters": declining_streak([s.trajectory for s in complete]),
        "open_value_cents": to_cents(metrics["open_value"]),
        "weighted_forecast_cents": to_cents(metrics["weighted_forecast"]),
        "active_opportunities": metrics["active_opportunities"],
        "open_initiatives": sum(
            1
            for record in initiatives
            if record.get("status", InitiativeStatus.PLANNED)
            in OPEN_INITIATIVE_STATUSES
        ),
        "open_actions": len(open_actions),
        "next_action_due": open_due[0] if open_due else None,
        "action_due_dates": json.dumps(open_due),
        "last_review_on": None if last_review is None else last_review.isoformat(),
        "review_basis_on": (last_review or opened_on).isoformat(),
        "document": to_json(document),
    }


class CurrentPlans(Projection):
    """Keeps one row per plan, written once per batch with the plan's final state.

    A change of rubric rewrites every plan, since its labels may change.
    """

    name = "current_plans"
    tables = (PLANS,)

    def apply(self, cursor: ReadCursor, store: ReadStore, batch: Batch) -> None:
        table = self.table_name(PLANS)
        plans = batch.touched_plans()
        if batch.rubric_changed():
            cursor.execute(
                sql.SQL("SELECT plan_id, version FROM {}").format(store.table(table))
            )
            stored = {
                UUID(row["plan_id"]): int(row["version"])
                for row in cursor.fetchall()
                if UUID(row["plan_id"]) not in plans
            }
            plans.update(batch.plans_at(stored))
        if not plans:
            return
        columns = PLANS.column_names
        rows = [plan_row(plan, batch.schedule) for plan in plans.values()]
        cursor.executemany(
            store.upsert(table, columns, PLANS.primary_key),
            [row_values(row, columns) for row in rows],
        )

"""Read functions over the read models: lists, score histories, audit, portfolio.

None of these replays an event stream; each reads tables the projections
keep. Answers are plain data, ready to serialise. Dates that decide what is
overdue are compared with ``today`` (by default today in UTC).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import sql

from projections.audit import AUDIT
from projections.current_plans import PLANS
from projections.portfolio import CONCERNS
from projections.scores import SCORES
from projections.store import ReadStore
from soh_es.persistence import to_micros

REVIEW_CADENCE = timedelta(days=31)
MAX_LIMIT = 500

_SUMMARY_COLUMNS = [c for c in PLANS.column_names if c != "document"]


@dataclass(frozen=True)
class Page:
    """One page of a list and the number of items that match in all."""

    items: list[dict[str, Any]]
    total: int


class QueryError(ValueError):
    """Raised when a query gets an argument it cannot use."""


def _today(today: date | None) -> date:
    return today if today is not None else datetime.now(UTC).date()


def _check_page(offset: int, limit: int) -> None:
    if offset < 0 or not 1 <= limit <= MAX_LIMIT:
        raise QueryError(
            f"limit is 1 to {MAX_LIMIT} and offset at least 0, "
            f"not limit={limit!r}, offset={offset!r}."
        )


def _money(cents: int) -> str:
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


def review_due_before(today: date) -> str:
    """Returns the date a plan's last review must be on or after to be on time."""
    return (today - REVIEW_CADENCE).isoformat()


def _summary(row: dict[str, Any], today: date) -> dict[str, Any]:
    due_dates = json.loads(row["action_due_dates"])
    return {
        "plan_id": row["plan_id"],
        "version": row["version"],
        "partner": row["partner"],
        "owner": row["owner"],
        "status": row["status"],
        "opened_on": row["opened_on"],
        "updated_at": row["updated_at"],
        "latest_quarter": row["latest_quarter"],
        "total": row["total"],
        "band": row["band"],
        "trajectory": row["trajectory"],
        "declining_quarters": row["declining_quarters"],
        "pipeline": {
            "open_value": _money(row["open_value_cents"]),
            "weighted_forecast": _money(row["weighted_forecast_cents"]),
            "active_opportunities": row["active_opportunities"],
        },
        "open_initiatives": row["open_initiatives"],
        "open_actions": row["open_actions"],
        "overdue_actions": sum(1 for due in due_dates if due < today.isoformat()),
        "next_action_due": row["next_action_due"],
        "last_review_on": row["last_review_on"],
        "review_overdue": row["review_basis_on"] < review_due_before(today),
    }


def list_plans(
    store: ReadStore,
    *,
    band: str | None = None,
    trajectory: str | None = None,
    owner: str | None = None,
    status: str | None = None,
    review_overdue: bool | None = None,
    today: date | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page:
    """Returns plan summaries matching every filter given, by partner name."""
    _check_page(offset, limit)
    today = _today(today)
    conditions: list[sql.Composable] = []
    params: list[Any] = []
    for column, value in (
        ("band", band),
        ("trajectory", trajectory),
        ("owner", owner),
        ("status", status),
    ):
        if value is not None:
            conditions.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if review_overdue is not None:
        operator = "<" if review_overdue else ">="
        conditions.append(sql.SQL("review_basis_on " + operator + " %s"))
        params.append(review_due_before(today))
    where = (
        sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
        if conditions
        else sql.SQL("")
    )
    table = store.table(PLANS.name)
    with store.transaction(commit=False) as cursor:
        cursor.execute(
            sql.SQL("SELECT COUNT(*) AS n FROM {}{}").format(table, where), params
        )
        found = cursor.fetchone()
        total = 0 if found is None else int(found["n"])
        cursor.execute(
            sql.SQL(
                "SELECT {} FROM {}{} ORDER BY partner, plan_id LIMIT %s OFFSET %s"
            ).format(
                sql.SQL(", ").join(map(sql.Identifier, _SUMMARY_COLUMNS)), table, where
            ),
            [*params, limit, offset],
        )
        rows = cursor.fetchall()
    return Page([_summary(row, today) for row in rows], total)


def plan_document(store: ReadStore, plan_id: UUID) -> dict[str, Any] | None:
    """Returns the current document of a plan, or None if there is no such plan."""
    with store.transaction(commit=False) as cursor:
        cursor.execute(
            sql.SQL("SELECT document FROM {} WHERE plan_id = %s").format(
                store.table(PLANS.name)
            ),
            (str(plan_id),),
        )
        row = cursor.fetchone()
    return None if row is None else dict(json.loads(row["document"]))


def score_history(store: ReadStore, plan_id: UUID) -> list[dict[str, Any]]:
    """Returns a plan's quarterly scorecards, oldest quarter first."""
    with store.transaction(commit=False) as cursor:
        cursor.execute(
            sql.SQL(
                "SELECT document FROM {} WHERE plan_id = %s ORDER BY quarter"
            ).format(store.table(SCORES.name)),
            (str(plan_id),),
        )
        rows = cursor.fetchall()
    return [json.loads(row["document"]) for row in rows]


def explain_score_change(
    store: ReadStore, plan_id: UUID, before: str, after: str
) -> dict[str, Any] | None:
    """Explains how a plan's score moved from one quarter to another.

    Lists each indicator with its rating in both quarters, the difference,
    and who rated it (and when) in the later quarter. Returns None when the
    plan has no scorecard for either quarter.
    """
    scores = {s["quarter"]: s for s in score_history(store, plan_id)}
    if before not in scores or after not in scores:
        return None
    first, second = scores[before], scores[after]
    keys = list(dict.fromkeys([*first["ratings"], *second["ratings"]]))
    indicators = []
    for key in keys:
        old = first["ratings"].get(key)
        new = second["ratings"].get(key)
        old_rating = None if old is None else old["rating"]
        new_rating = None if new is None else new["rating"]
        indicators.append(
            {
                "indicator": key,
                "before": old_rating,
                "after": new_rating,
                "change": None
                if old_rating is None or new_rating is None
                else new_rating - old_rating,
                "rated_by": None if new is None else new["actor"],
                "rated_at": None if new is None else new["recorded_at"],
                "reason": None if new is None else new["reason"],
            }
        )
    total_change = (
        None
        if first["total"] is None or second["total"] is None
        else second["total"] - first["total"]
    )
    return {
        "plan_id": str(plan_id),
        "before": _labels(first),
        "after": _labels(second),
        "change": total_change,
        "indicators": indicators,
        "moved": [i["indicator"] for i in indicators if i["change"]],
    }


def _labels(score: dict[str, Any]) -> dict[str, Any]:
    return {
        key: score[key]
        for key in ("quarter", "rubric_version", "total", "band", "trajectory")
    }


def audit_item(row: dict[str, Any]) -> dict[str, Any]:
    """Returns an audit row as an entry: its field changes decoded, no micros."""
    item = {key: row[key] for key in row if key not in ("recorded_us", "changes")}
    item["changes"] = json.loads(row["changes"])
    return item


def _audit_page(
    store: ReadStore,
    conditions: list[sql.Composable],
    params: list[Any],
    offset: int,
    limit: int,
) -> Page:
    _check_page(offset, limit)
    table = store.table(AUDIT.name)
    where = (
        sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
        if conditions
        else sql.SQL("")
    )
    with store.transaction(commit=False) as cursor:
        cursor.execute(
            sql.SQL("SELECT COUNT(*) AS n FROM {}{}").format(table, where), params
        )
        found = cursor.fetchone()
        cursor.execute(
            sql.SQL("SELECT * FROM {}{} ORDER BY position LIMIT %s OFFSET %s").format(
                table, where
            ),
            [*params, limit, offset],
        )
        rows = cursor.fetchall()
    total = 0 if found is None else int(found["n"])
    return Page([audit_item(row) for row in rows], total)


def audit_by_actor(
    store: ReadStore,
    actor: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page:
    """Returns what ``actor`` did across all plans, oldest first.

    ``since`` is inclusive and ``until`` exclusive.
    """
    conditions: list[sql.Composable] = [sql.SQL("actor = %s")]
    params: list[Any] = [actor]
    if since is not None:
        conditions.append(sql.SQL("recorded_us >= %s"))
        params.append(to_micros(since))
    if until is not None:
        conditions.append(sql.SQL("recorded_us < %s"))
        params.append(to_micros(until))
    return _audit_page(store, conditions, params, offset, limit)


def audit_log(
    store: ReadStore,
    *,
    actor: str | None = None,
    plan_id: UUID | None = None,
    section: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page:
    """Returns the events across all plans that match every filter, oldest first.

    ``since`` is inclusive and ``until`` exclusive.
    """
    conditions: list[sql.Composable] = []
    params: list[Any] = []
    for column, value in (
        ("actor", actor),
        ("plan_id", None if plan_id is None else str(plan_id)),
        ("section", section),
    ):
        if value is not None:
            conditions.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if since is not None:
        conditions.append(sql.SQL("recorded_us >= %s"))
        params.append(to_micros(since))
    if until is not None:
        conditions.append(sql.SQL("recorded_us < %s"))
        params.append(to_micros(until))
    return _audit_page(store, conditions, params, offset, limit)


def audit_by_plan(
    store: ReadStore,
    plan_id: UUID,
    *,
    section: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page:
    """Returns everything that happened to a plan, oldest first."""
    conditions: list[sql.Composable] = [sql.SQL("plan_id = %s")]
    params: list[Any] = [str(plan_id)]
    if section is not None:
        conditions.append(sql.SQL("section = %s"))
        params.append(section)
    return _audit_page(store, conditions, params, offset, limit)


def portfolio(
    store: ReadStore, *, today: date | None = None, recurring_from: int = 2
) -> dict[str, Any]:
    """Returns patterns across active plans, for leadership.

    Counts per band and trajectory of the latest complete quarter, the plans
    declining now (with how many quarters in a row), the barriers and threats
    that ``recurring_from`` or more partners share, pipeline totals, and the
    plans overdue for their monthly review.
    """
    today = _today(today)
    plans = store.table(PLANS.name)
    concerns = store.table(CONCERNS.name)
    active = ("active",)
    with store.transaction(commit=False) as cursor:
        counts: dict[str, dict[str, int]] = {}
        for column in ("band", "trajectory"):
            cursor.execute(
                sql.SQL(
                    "SELECT {} AS label, COUNT(*) AS n FROM {} "
                    "WHERE status = %s GROUP BY {} ORDER BY {}"
                ).format(
                    sql.Identifier(column),
                    plans,
                    sql.Identifier(column),
                    sql.Identifier(column),
                ),
                active,
            )
            counts[column] = {
                row["label"] or "unscored": int(row["n"]) for row in cursor.fetchall()
            }

        cursor.execute(
            sql.SQL(
                "SELECT plan_id, partner, owner, latest_quarter, total, band, "
                "declining_quarters FROM {} "
                "WHERE status = %s AND declining_quarters >= 1 "
                "ORDER BY declining_quarters DESC, partner, plan_id"
            ).format(plans),
            active,
        )
        declining = cursor.fetchall()

        cursor.execute(
            sql.SQL(
                "SELECT c.kind, c.normalized, MIN(c.text) AS text, "
                "COUNT(*) AS partners FROM {} c JOIN {} p ON p.plan_id = c.plan_id "
                "WHERE p.status = %s GROUP BY c.kind, c.normalized "
                "HAVING COUNT(*) >= %s ORDER BY COUNT(*) DESC, c.kind, c.normalized"
            ).format(concerns, plans),
            ("active", recurring_from),
        )
        recurring = cursor.fetchall()

        cursor.execute(
            sql.SQL(
                "SELECT COUNT(*) AS plans, "
                "COALESCE(SUM(open_value_cents), 0) AS open_value, "
                "COALESCE(SUM(weighted_forecast_cents), 0) AS weighted, "
                "COALESCE(SUM(active_opportunities), 0) AS active "
                "FROM {} WHERE status = %s"
            ).format(plans),
            active,
        )
        totals = cursor.fetchone() or {}

        cursor.execute(
            sql.SQL(
                "SELECT plan_id, partner, owner, last_review_on, review_basis_on "
                "FROM {} WHERE status = %s AND review_basis_on < %s "
                "ORDER BY review_basis_on, partner, plan_id"
            ).format(plans),
            ("active", review_due_before(today)),
        )
        overdue = cursor.fetchall()

    return {
        "plans": int(totals.get("plans") or 0),
        "bands": counts["band"],
        "trajectories": counts["trajectory"],
        "declining": declining,
        "recurring_concerns": [
            {
                "kind": row["kind"],
                "text": row["text"],
                "normalized": row["normalized"],
                "partners": int(row["partners"]),
            }
            for row in recurring
        ],
        "pipeline": {
            "open_value": _money(int(totals.get("open_value") or 0)),
            "weighted_forecast": _money(int(totals.get("weighted") or 0)),
            "active_opportunities": int(totals.get("active") or 0),
        },
        "review_overdue": [
            {
                "plan_id": row["plan_id"],
                "partner": row["partner"],
                "owner": row["owner"],
                "last_review_on": row["last_review_on"],
                "days_since": (today - date.fromisoformat(row["review_basis_on"])).days,
            }
            for row in overdue
        ],
    }

"""Briefings over the read models: the handover digest and review preparation.

Both are composed from the current plan document, the quarterly scores and
the audit log, never from a replayed stream. Dates that decide what is
overdue or stale are compared with ``today``.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

from psycopg import sql

from projections.audit import AUDIT
from projections.queries import (
    audit_item,
    explain_score_change,
    plan_document,
    score_history,
)
from projections.store import ReadStore
from soh_es.persistence import to_micros
from soh_es.sections import CLOSED_STAGES, OPEN_INITIATIVE_STATUSES, Section
from soh_es.views import plain

# The most changes a briefing lists in full; counts always cover them all.
MAX_LISTED_CHANGES = 500
HEALTH_TREND_QUARTERS = 4

_OPEN_INITIATIVES = tuple(sorted(s.value for s in OPEN_INITIATIVE_STATUSES))
_CLOSED_STAGES = tuple(sorted(s.value for s in CLOSED_STAGES))
_SECTION_ORDER = [section.value for section in Section]


def _section_rank(name: str) -> tuple[int, str]:
    if name in _SECTION_ORDER:
        return (_SECTION_ORDER.index(name), name)
    return (len(_SECTION_ORDER), name)


def changes_by_section(
    store: ReadStore, plan_id: UUID, since: datetime
) -> dict[str, Any]:
    """Returns the plan's changes recorded at or after ``since``, by section.

    Each section lists how many changes it had, who made them, and the
    changes themselves, oldest first; past ``MAX_LISTED_CHANGES`` in all,
    only the latest are listed (``listed`` says how many).
    """
    table = store.table(AUDIT.name)
    params = (str(plan_id), to_micros(since))
    with store.transaction(commit=False) as cursor:
        cursor.execute(
            sql.SQL(
                "SELECT section, COUNT(*) AS n FROM {} "
                "WHERE plan_id = %s AND recorded_us >= %s GROUP BY section"
            ).format(table),
            params,
        )
        counts = {row["section"]: int(row["n"]) for row in cursor.fetchall()}
        cursor.execute(
            sql.SQL(
                "SELECT * FROM {} WHERE plan_id = %s AND recorded_us >= %s "
                "ORDER BY position DESC LIMIT %s"
            ).format(table),
            [*params, MAX_LISTED_CHANGES],
        )
        rows = cursor.fetchall()

    listed: dict[str, list[dict[str, Any]]] = {name: [] for name in counts}
    for row in reversed(rows):
        listed[row["section"]].append(audit_item(row))
    sections = [
        {
            "section": name,
            "count": counts[name],
            "listed": len(listed[name]),
            "actors": sorted(Counter(c["actor"] for c in listed[name])),
            "last_changed_at": listed[name][-1]["recorded_at"]
            if listed[name]
            else None,
            "changes": listed[name],
        }
        for name in sorted(counts, key=_section_rank)
    ]
    return {"total": sum(counts.values()), "sections": sections}


def _records(document: dict[str, Any], section: Section, plural: str) -> list[Any]:
    found: list[dict[str, Any]] = document["sections"][section.value].get(plural, [])
    return found


def open_initiatives(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Returns the initiatives planned or in progress, with their open actions."""
    actions = _records(document, Section.INITIATIVES, "actions")
    found = []
    for initiative in _records(document, Section.INITIATIVES, "initiatives"):
        status = initiative.get("status") or "planned"
        if status not in _OPEN_INITIATIVES:
            continue
        found.append(
            {
                "id": initiative["id"],
                "title": initiative["title"],
                "quarter": initiative.get("quarter"),
                "status": status,
                "owner": initiative.get("owner"),
                "owner_party": initiative.get("owner_party"),
                "deadline": initiative.get("deadline"),
                "open_actions": sum(
                    1
                    for action in actions
                    if action.get("initiative_id") == initiative["id"]
                    and (action.get("status") or "open") == "open"
                ),
            }
        )
    return found


def overdue_actions(document: dict[str, Any], today: date) -> list[dict[str, Any]]:
    """Returns the open actions whose due date is before ``today``, oldest first."""
    titles = {
        i["id"]: i["title"]
        for i in _records(document, Section.INITIATIVES, "initiatives")
    }
    found = []
    for action in _records(document, Section.INITIATIVES, "actions"):
        due = action.get("due_date")
        if (action.get("status") or "open") != "open" or due is None:
            continue
        if date.fromisoformat(due) >= today:
            continue
        found.append(
            {
                "id": action["id"],
                "description": action["description"],
                "owner": action.get("owner"),
                "due_date": due,
                "days_overdue": (today - date.fromisoformat(due)).days,
                "initiative_id": action["initiative_id"],
                "initiative": titles.get(action["initiative_id"]),
            }
        )
    return sorted(found, key=lambda a: (a["due_date"], a["id"]))


def health_trend(
    scores: list[dict[str, Any]], quarters: int = HEALTH_TREND_QUARTERS
) -> list[dict[str, Any]]:
    """Returns the last ``quarters`` complete quarters' totals and labels."""
    complete = [score for score in scores if score["complete"]]
    return [
        {
            "quarter": score["quarter"],
            "total": score["total"],
            "band": score["band"],
            "trajectory": score["trajectory"],
            "change": score["change"],
        }
        for score in complete[-quarters:]
    ]


def _heading(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "plan_id": document["id"],
        "version": document["version"],
        "partner": document["partner"],
        "owner": document["owner"],
        "status": document["status"],
    }


def handover_digest(
    store: ReadStore, plan_id: UUID, since: datetime, *, today: date
) -> dict[str, Any] | None:
    """Returns what a new owner needs: changes since a time, open work, health.

    None when the read models hold no such plan.
    """
    document = plan_document(store, plan_id)
    if document is None:
        return None
    return {
        **_heading(document),
        "since": plain(since),
        "changes": changes_by_section(store, plan_id, since),
        "open_initiatives": open_initiatives(document),
        "overdue_actions": overdue_actions(document, today),
        "health_trend": health_trend(score_history(store, plan_id)),
    }


def _last_review(document: dict[str, Any]) -> dict[str, Any] | None:
    reviews = document.get("reviews") or []
    if not reviews:
        return None
    latest = max(reviews, key=lambda r: (r["reviewed_on"], r["recorded_at"]))
    return {
        "reviewed_on": latest["reviewed_on"],
        "summary": latest.get("summary"),
        "actor": latest["actor"],
    }


def declining_indicators(
    store: ReadStore, plan_id: UUID, scores: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Returns the indicators rated lower in the latest complete quarter.

    Compared with the complete quarter before it; empty with fewer than two.
    """
    complete = [score["quarter"] for score in scores if score["complete"]]
    if len(complete) < 2:
        return []
    explained = explain_score_change(store, plan_id, complete[-2], complete[-1])
    if explained is None:
        return []
    return [
        {**indicator, "from_quarter": complete[-2], "to_quarter": complete[-1]}
        for indicator in explained["indicators"]
        if indicator["change"] is not None and indicator["change"] < 0
    ]


def incomplete_quarter(
    scores: list[dict[str, Any]], current_quarter: str, indicators: list[str]
) -> dict[str, Any] | None:
    """Returns the current quarter's missing indicators, or None when complete."""
    for score in scores:
        if score["quarter"] == current_quarter:
            if score["complete"]:
                return None
            return {"quarter": current_quarter, "missing": list(score["missing"])}
    return {"quarter": current_quarter, "missing": list(indicators)}


def stale_opportunities(document: dict[str, Any], today: date) -> list[dict[str, Any]]:
    """Returns the open opportunities whose projected close date has passed."""
    found = []
    for opportunity in _records(document, Section.PIPELINE, "opportunities"):
        close = opportunity.get("close_date")
        if opportunity["stage"] in _CLOSED_STAGES or close is None:
            continue
        if date.fromisoformat(close) >= today:
            continue
        found.append(
            {
                "id": opportunity["id"],
                "name": opportunity["name"],
                "stage": opportunity["stage"],
                "value": opportunity.get("value"),
                "close_date": close,
                "days_past_close": (today - date.fromisoformat(close)).days,
            }
        )
    return sorted(found, key=lambda o: (o["close_date"], o["id"]))


def open_risks(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Returns the risks of open initiatives, with their mitigations."""
    initiatives = {i["id"]: i for i in open_initiatives(document)}
    return [
        {
            "id": risk["id"],
            "description": risk["description"],
            "likelihood": risk.get("likelihood"),
            "impact": risk.get("impact"),
            "mitigation": risk.get("mitigation"),
            "initiative_id": risk["initiative_id"],
            "initiative": initiatives[risk["initiative_id"]]["title"],
        }
        for risk in _records(document, Section.INITIATIVES, "risks")
        if risk["initiative_id"] in initiatives
    ]


def review_preparation(
    store: ReadStore,
    plan_id: UUID,
    *,
    today: date,
    current_quarter: str,
    indicators: list[str],
) -> dict[str, Any] | None:
    """Returns what a quarterly business review should cover.

    Progress since the last review (or since the plan was opened), the
    topics that need discussion, and the open risks. None when the read
    models hold no such plan.
    """
    document = plan_document(store, plan_id)
    if document is None:
        return None
    last_review = _last_review(document)
    if last_review is None:
        since = datetime.fromisoformat(document["opened_at"].replace("Z", "+00:00"))
    else:
        reviewed_on = date.fromisoformat(last_review["reviewed_on"])
        since = datetime.combine(reviewed_on, time.min, tzinfo=UTC)
    scores = score_history(store, plan_id)
    return {
        **_heading(document),
        "last_review": last_review,
        "since": plain(since),
        "progress": changes_by_section(store, plan_id, since),
        "topics": {
            "declining_indicators": declining_indicators(store, plan_id, scores),
            "overdue_actions": overdue_actions(document, today),
            "incomplete_quarter": incomplete_quarter(
                scores, current_quarter, indicators
            ),
            "stale_opportunities": stale_opportunities(document, today),
        },
        "open_risks": open_risks(document),
        "health_trend": health_trend(scores),
    }

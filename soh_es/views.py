"""Plain documents of a plan, its scorecard and pipeline, and diffs between them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from soh_es.domain import AccountPlan, flatten_record
from soh_es.personal import Personal
from soh_es.quarters import Quarter
from soh_es.rubric import RubricSchedule
from soh_es.scorecard import QuarterScore, latest_complete, score_quarters
from soh_es.sections import CLOSED_STAGES, RECORD_KINDS, Section

CENT = Decimal("0.01")


def plain(value: Any) -> Any:
    """Returns ``value`` as JSON-ready data (amounts as strings, times in UTC)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Quarter | UUID):
        return str(value)
    if isinstance(value, Personal):
        return None if value.data is None else plain(value.data)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def pipeline_metrics(opportunities: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Returns open pipeline value, weighted forecast, count and average deal size.

    Open items are those not won or lost; an item without a value counts as
    active but adds nothing to the sums; an item without a probability adds
    nothing to the forecast.
    """
    open_items = [o for o in opportunities if o["stage"] not in CLOSED_STAGES]
    valued = [o["value"] for o in open_items if o.get("value") is not None]
    total = sum(valued, Decimal(0))
    weighted = sum(
        (
            o["value"] * o["probability"] / 100
            for o in open_items
            if o.get("value") is not None and o.get("probability") is not None
        ),
        Decimal(0),
    )
    average = total / len(valued) if valued else None
    return {
        "open_value": total.quantize(CENT),
        "weighted_forecast": weighted.quantize(CENT),
        "active_opportunities": len(open_items),
        "average_deal_size": None if average is None else average.quantize(CENT),
    }


def score_document(score: QuarterScore) -> dict[str, Any]:
    """Returns one quarter's scorecard as plain data."""
    return {
        "quarter": str(score.quarter),
        "rubric_version": score.rubric_version,
        "complete": score.complete,
        "missing": list(score.missing),
        "total": score.total,
        "band": score.band,
        "trajectory": score.trajectory,
        "change": score.change,
        "compared_with": None
        if score.compared_with is None
        else str(score.compared_with),
        "ratings": {
            key: {
                "rating": r.rating,
                "actor": r.actor,
                "recorded_at": plain(r.recorded_at),
                "reason": r.reason,
            }
            for key, r in score.ratings.items()
        },
    }


def records_of(plan: AccountPlan, kind: str) -> list[dict[str, Any]]:
    """Returns the plan's records of ``kind`` with their ids, in the order added."""
    spec = RECORD_KINDS[kind]
    return [
        {"id": key, **flatten_record(spec, record)}
        for key, record in plan.records[kind].items()
    ]


def plan_document(plan: AccountPlan, schedule: RubricSchedule) -> dict[str, Any]:
    """Returns the whole plan as plain data, with its derived figures."""
    sections: dict[str, dict[str, Any]] = {
        s.value: dict(plan.sections[s.value]) for s in Section
    }
    for kind in RECORD_KINDS.values():
        sections[kind.section.value][kind.plural] = records_of(plan, kind.name)
    sections[Section.PIPELINE.value]["metrics"] = pipeline_metrics(
        sections[Section.PIPELINE.value]["opportunities"]
    )
    scores = score_quarters(plan.ratings, schedule)
    latest = latest_complete(scores)
    sections[Section.HEALTH.value]["scorecard"] = {
        "latest_complete": None if latest is None else score_document(latest),
        "quarters": [score_document(s) for s in scores],
    }
    return plain(
        {
            "id": plan.id,
            "version": plan.version,
            "partner": plan.partner,
            "owner": plan.owner,
            "status": plan.status,
            "opened_at": plan.created_on,
            "updated_at": plan.modified_on,
            "sections": sections,
            "reviews": plan.reviews,
            "handovers": plan.handovers,
        }
    )


def diff_documents(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """Returns the field-level differences between two plain documents.

    Lists of objects keyed by ``id`` (records) or ``quarter`` (scores) are
    compared item by item; other lists are compared whole. Each difference
    has a dotted ``path``.
    """
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        changes = []
        for key in [*before, *(k for k in after if k not in before)]:
            sub = f"{path}.{key}" if path else str(key)
            changes += diff_documents(before.get(key), after.get(key), sub)
        return changes
    key = _item_key(before, after)
    if key is not None:
        return diff_documents(
            {item[key]: item for item in before},
            {item[key]: item for item in after},
            path,
        )
    if before == after:
        return []
    return [{"path": path, "before": before, "after": after}]


def _item_key(before: Any, after: Any) -> str | None:
    if not isinstance(before, list) or not isinstance(after, list):
        return None
    for key in ("id", "quarter"):
        if all(isinstance(i, Mapping) and key in i for i in [*before, *after]):
            return key
    return None

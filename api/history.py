"""A plan's history of changes and the differences between two of its points."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from api import schemas
from api.auth import Access, access
from api.common import Blueprint, bound, etag, plans, point
from soh_es.history import Change
from soh_es.quarters import Point
from soh_es.views import plain


def change_document(change: Change) -> dict[str, Any]:
    """Returns one change of the history as plain data."""
    return {
        "version": change.version,
        "event": change.event,
        "section": change.section,
        "actor": change.actor,
        "recorded_at": plain(change.recorded_at),
        "reason": change.reason,
        "source": change.source,
        "correlation_id": change.correlation_id,
        "record_kind": change.record_kind,
        "record_id": change.record_id,
        "changes": [
            {"field": c.field, "before": plain(c.before), "after": plain(c.after)}
            for c in change.changes
        ],
    }


def create_blueprint() -> Blueprint:
    """Returns the blueprint of plan histories and diffs."""
    blp = Blueprint(
        "history", __name__, url_prefix="/plans", description="Who changed what."
    )

    @blp.route("/<uuid:plan_id>/history", methods=["GET"])
    @blp.arguments(schemas.HistoryQuerySchema, location="query")
    @blp.response(200, schemas.HistoryPageSchema)
    @access(Access.READ)
    def read_history(query: dict[str, Any], plan_id: UUID) -> Any:
        """Read the plan's changes with actor, time, reason and field changes."""
        page = plans().history(
            plan_id,
            section=query.get("section"),
            actor=query.get("actor"),
            since=bound(query.get("since"), field="since", end=False),
            until=bound(query.get("until"), field="until", end=True),
            offset=query["offset"],
            limit=query["limit"],
        )
        version = plans().get_plan(plan_id).version
        body = {
            "items": [change_document(change) for change in page.changes],
            "total": page.total,
            "offset": query["offset"],
            "limit": query["limit"],
        }
        return body, 200, etag(version)

    @blp.route("/<uuid:plan_id>/diff", methods=["GET"])
    @blp.arguments(schemas.DiffQuerySchema, location="query")
    @blp.response(200, schemas.DiffSchema)
    @access(Access.READ)
    def read_diff(query: dict[str, Any], plan_id: UUID) -> Any:
        """Compare the plan at two points (versions, quarters or instants)."""
        before = plans().version_at(plan_id, Point.parse(query["from_"], field="from"))
        after_point = point(query.get("to"), field="to")
        after = (
            plans().get_plan(plan_id).version
            if after_point is None
            else plans().version_at(plan_id, after_point)
        )
        differences = plans().diff(plan_id, Point(version=before), Point(version=after))
        return {
            "from_version": before,
            "to_version": after,
            "differences": differences,
        }

    return blp

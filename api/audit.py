"""The audit log across plans: who changed what, when and why."""

from __future__ import annotations

from typing import Any

from api import read_schemas
from api.auth import Access, access
from api.common import LAGGING, Blueprint, bound, read_store
from projections import queries


def create_blueprint() -> Blueprint:
    """Returns the blueprint of the cross-plan audit log."""
    blp = Blueprint(
        "audit", __name__, url_prefix="/audit", description="Who changed what."
    )

    @blp.route("", methods=["GET"])
    @blp.arguments(read_schemas.AuditQuerySchema, location="query")
    @blp.response(200, read_schemas.AuditPageSchema)
    @blp.alt_response(503, response=LAGGING)
    @access(Access.READ)
    def read_audit(query: dict[str, Any]) -> dict[str, Any]:
        """Read every event across plans, filtered by actor, plan, section, time."""
        store = read_store(query.get("after"), "audit")
        page = queries.audit_log(
            store,
            actor=query.get("actor"),
            plan_id=query.get("plan"),
            section=query.get("section"),
            since=bound(query.get("since"), field="since", end=False),
            until=bound(query.get("until"), field="until", end=True),
            offset=query["offset"],
            limit=query["limit"],
        )
        return {
            "items": page.items,
            "total": page.total,
            "offset": query["offset"],
            "limit": query["limit"],
        }

    return blp

"""Briefings of one plan: the handover digest and review preparation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from api import read_schemas
from api.auth import Access, access
from api.common import LAGGING, Blueprint, bound, plans, read_store
from api.errors import ProblemError
from projections import briefings

BRIEFING_PROJECTIONS = ("current_plans", "scores", "audit")


def _not_found(plan_id: UUID) -> ProblemError:
    return ProblemError(
        404,
        "not-found",
        f"The read models hold no plan {str(plan_id)!r}. A plan opened just now "
        "appears once projected: pass after=<Soh-Position> to wait for it.",
    )


def create_blueprint() -> Blueprint:
    """Returns the blueprint of plan briefings."""
    blp = Blueprint(
        "briefings",
        __name__,
        url_prefix="/plans",
        description="Handover digests and review preparation.",
    )

    @blp.route("/<uuid:plan_id>/digest", methods=["GET"])
    @blp.arguments(read_schemas.DigestQuerySchema, location="query")
    @blp.response(200, read_schemas.DigestSchema)
    @blp.alt_response(503, response=LAGGING)
    @access(Access.READ)
    def read_digest(query: dict[str, Any], plan_id: UUID) -> Any:
        """Read the handover digest: changes since, open work and health trend."""
        store = read_store(query.get("after"), *BRIEFING_PROJECTIONS)
        since = bound(query["since"], field="since", end=False)
        assert since is not None
        digest = briefings.handover_digest(
            store, plan_id, since, today=datetime.now(UTC).date()
        )
        if digest is None:
            raise _not_found(plan_id)
        return digest

    @blp.route("/<uuid:plan_id>/review-preparation", methods=["GET"])
    @blp.arguments(read_schemas.ReadQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, read_schemas.ReviewPreparationSchema)
    @blp.alt_response(503, response=LAGGING)
    @access(Access.READ)
    def read_review_preparation(plan_id: UUID, after: int | None = None) -> Any:
        """Prepare the quarterly review: progress, topics to discuss, open risks."""
        store = read_store(after, *BRIEFING_PROJECTIONS)
        now = datetime.now(UTC)
        quarter = plans().calendar.quarter_of(now)
        # The rubric register is a short stream of its own, read to know
        # which indicators the current quarter needs.
        rubric = plans().rubric_schedule().for_quarter(quarter)
        preparation = briefings.review_preparation(
            store,
            plan_id,
            today=now.date(),
            current_quarter=str(quarter),
            indicators=list(rubric.keys),
        )
        if preparation is None:
            raise _not_found(plan_id)
        return preparation

    return blp

"""Plans: open, list, read now or as of a point, archive, review and hand over."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import url_for

from api import read_schemas, schemas
from api.auth import Access, access, current_user
from api.common import (
    LAGGING,
    POSITION_HEADERS,
    Blueprint,
    context,
    etag,
    expected_version,
    plans,
    point,
    read_store,
    written,
)
from api.errors import ProblemError
from projections import queries
from soh_es.application import Outcome
from soh_es.identity import Role
from soh_es.quarters import Point
from soh_es.scorecard import latest_complete
from soh_es.sections import Section
from soh_es.views import score_document

SHARED_SECTIONS = (Section.GOALS.value, Section.MARKET_DEMAND.value)
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": 'The plan version the change is based on, as in "7".',
}


def shown_to_caller(document: dict[str, Any]) -> dict[str, Any]:
    """Returns the plan document, cut to the shared sections for a partner."""
    if current_user().role is not Role.PARTNER:
        return document
    return {
        "id": document["id"],
        "version": document["version"],
        "partner": document["partner"],
        "sections": {name: document["sections"][name] for name in SHARED_SECTIONS},
    }


def plan_at(outcome: Outcome) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Returns the plan document a write left, with its ETag and Soh-Position."""
    document = plans().plan_document(outcome.plan_id, Point(version=outcome.version))
    return document, 200, written(outcome)


def scorecard_at(
    plan_id: UUID, at: Point | None
) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Returns the plan's quarterly scores at ``at`` with the plan's ETag."""
    plan, scores = plans().scored_plan(plan_id, at)
    latest = latest_complete(scores)
    scorecard = {
        "latest_complete": None if latest is None else score_document(latest),
        "quarters": [score_document(score) for score in scores],
    }
    return scorecard, 200, etag(plan.version)


def _not_projected(plan_id: UUID) -> ProblemError:
    return ProblemError(
        404,
        "not-found",
        f"The read models hold no plan {str(plan_id)!r}. A plan opened just now "
        "appears once projected: pass after=<Soh-Position> to wait for it.",
    )


def _section_view(blp: Blueprint, section: Section) -> None:
    """Registers the edit endpoint of one section."""

    def edit_section(body: dict[str, Any], plan_id: UUID) -> Any:
        outcome = plans().edit_section(
            plan_id,
            section.value,
            body["values"],
            ctx=context(body),
            expected_version=expected_version(),
        )
        document, status, headers = plan_at(outcome)
        return document["sections"][section.value], status, headers

    edit_section.__doc__ = (
        f"Edit fields of the {section.value.replace('_', ' ')} section; "
        "null clears a field."
    )
    view = access(Access.WRITE)(edit_section)
    view = blp.doc(parameters=[IF_MATCH])(view)
    view = blp.response(200, schemas.section_schema(section), headers=POSITION_HEADERS)(
        view
    )
    view = blp.arguments(schemas.section_edit_schema(section))(view)
    blp.route(
        f"/<uuid:plan_id>/sections/{section.value}",
        methods=["PATCH"],
        endpoint=f"edit_{section.value}",
    )(view)


def create_blueprint() -> Blueprint:
    """Returns the blueprint of plans, their scorecards and their sections."""
    blp = Blueprint(
        "plans", __name__, url_prefix="/plans", description="Account plans."
    )

    @blp.route("", methods=["GET"])
    @blp.arguments(schemas.PlanFilterSchema, location="query", as_kwargs=True)
    @blp.response(200, schemas.PlanListSchema)
    @blp.alt_response(503, response=LAGGING)
    @access(Access.READ)
    def list_plans(
        offset: int, limit: int, after: int | None = None, **filters: Any
    ) -> dict[str, Any]:
        """List plans by partner; filter by status, owner, band, trajectory, review."""
        store = read_store(after, "current_plans")
        page = queries.list_plans(store, offset=offset, limit=limit, **filters)
        return {
            "items": page.items,
            "total": page.total,
            "offset": offset,
            "limit": limit,
        }

    @blp.route("", methods=["POST"])
    @blp.arguments(schemas.OpenPlanSchema)
    @blp.response(201, schemas.plan_schema(), headers=POSITION_HEADERS)
    @access(Access.WRITE)
    def open_plan(body: dict[str, Any]) -> Any:
        """Open a plan for a partner."""
        outcome = plans().open_plan(
            body["partner"], owner=body.get("owner"), ctx=context(body)
        )
        document, _, headers = plan_at(outcome)
        headers["Location"] = url_for(".read_plan", plan_id=outcome.plan_id)
        return document, 201, headers

    @blp.route("/<uuid:plan_id>", methods=["GET"])
    @blp.arguments(schemas.AsOfSchema, location="query", as_kwargs=True)
    @blp.response(200, schemas.plan_schema())
    @access(Access.READ, shared=True)
    def read_plan(plan_id: UUID, at: str | None = None) -> Any:
        """Read a plan now, or as it stood at a version, quarter end or instant."""
        document = plans().plan_document(plan_id, point(at, field="at"))
        return shown_to_caller(document), 200, etag(document["version"])

    @blp.route("/<uuid:plan_id>/archive", methods=["POST"])
    @blp.arguments(schemas.WriteSchema, required=False)
    @blp.response(200, schemas.plan_schema(), headers=POSITION_HEADERS)
    @blp.doc(parameters=[IF_MATCH])
    @access(Access.WRITE)
    def archive_plan(body: dict[str, Any], plan_id: UUID) -> Any:
        """Archive a plan: it stays readable and takes no more edits."""
        outcome = plans().archive_plan(
            plan_id, ctx=context(body), expected_version=expected_version()
        )
        return plan_at(outcome)

    @blp.route("/<uuid:plan_id>/restore", methods=["POST"])
    @blp.arguments(schemas.WriteSchema, required=False)
    @blp.response(200, schemas.plan_schema(), headers=POSITION_HEADERS)
    @blp.doc(parameters=[IF_MATCH])
    @access(Access.WRITE)
    def restore_plan(body: dict[str, Any], plan_id: UUID) -> Any:
        """Bring an archived plan back into use."""
        outcome = plans().restore_plan(
            plan_id, ctx=context(body), expected_version=expected_version()
        )
        return plan_at(outcome)

    @blp.route("/<uuid:plan_id>/reviews", methods=["POST"])
    @blp.arguments(schemas.ReviewRequestSchema)
    @blp.response(200, schemas.plan_schema(), headers=POSITION_HEADERS)
    @blp.doc(parameters=[IF_MATCH])
    @access(Access.WRITE)
    def record_review(body: dict[str, Any], plan_id: UUID) -> Any:
        """Record a review of the plan held on a day."""
        outcome = plans().record_review(
            plan_id,
            reviewed_on=body["reviewed_on"],
            summary=body.get("summary"),
            ctx=context(body),
            expected_version=expected_version(),
        )
        return plan_at(outcome)

    @blp.route("/<uuid:plan_id>/handovers", methods=["POST"])
    @blp.arguments(schemas.HandOverSchema)
    @blp.response(200, schemas.plan_schema(), headers=POSITION_HEADERS)
    @blp.doc(parameters=[IF_MATCH])
    @access(Access.WRITE)
    def hand_over(body: dict[str, Any], plan_id: UUID) -> Any:
        """Hand the plan over to a new owner."""
        outcome = plans().hand_over(
            plan_id,
            new_owner=body["new_owner"],
            notes=body.get("notes"),
            ctx=context(body),
            expected_version=expected_version(),
        )
        return plan_at(outcome)

    @blp.route("/<uuid:plan_id>/scorecard", methods=["GET"])
    @blp.arguments(schemas.AsOfSchema, location="query", as_kwargs=True)
    @blp.response(200, schemas.ScorecardSchema)
    @access(Access.READ)
    def read_scorecard(plan_id: UUID, at: str | None = None) -> Any:
        """Read the quarterly scores with totals, bands and trajectories."""
        return scorecard_at(plan_id, point(at, field="at"))

    @blp.route("/<uuid:plan_id>/ratings", methods=["POST"])
    @blp.arguments(schemas.RateSchema)
    @blp.response(200, schemas.ScorecardSchema, headers=POSITION_HEADERS)
    @blp.doc(parameters=[IF_MATCH])
    @access(Access.WRITE)
    def rate_indicators(body: dict[str, Any], plan_id: UUID) -> Any:
        """Rate indicators for a quarter, 1 to 5 each; all are stored or none."""
        outcome = plans().rate_indicators(
            plan_id,
            body["quarter"],
            body["ratings"],
            ctx=context(body),
            expected_version=expected_version(),
        )
        scorecard, status, _ = scorecard_at(plan_id, Point(version=outcome.version))
        return scorecard, status, written(outcome)

    @blp.route("/<uuid:plan_id>/scores", methods=["GET"])
    @blp.arguments(read_schemas.ReadQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, read_schemas.ScoreHistorySchema)
    @blp.alt_response(503, response=LAGGING)
    @access(Access.READ)
    def read_scores(plan_id: UUID, after: int | None = None) -> Any:
        """Read the quarterly score history from the scores model (see after)."""
        store = read_store(after, "current_plans", "scores")
        if queries.plan_document(store, plan_id) is None:
            raise _not_projected(plan_id)
        quarters = queries.score_history(store, plan_id)
        complete = [quarter for quarter in quarters if quarter["complete"]]
        return {
            "plan_id": plan_id,
            "latest_complete": complete[-1] if complete else None,
            "quarters": quarters,
        }

    @blp.route("/<uuid:plan_id>/scorecard/explain", methods=["GET"])
    @blp.arguments(read_schemas.ExplainQuerySchema, location="query")
    @blp.response(200, read_schemas.ScoreExplanationSchema)
    @blp.alt_response(503, response=LAGGING)
    @access(Access.READ)
    def explain_scores(query: dict[str, Any], plan_id: UUID) -> Any:
        """Explain a score change: which indicators moved, who rated them, why."""
        store = read_store(query.get("after"), "current_plans", "scores")
        if queries.plan_document(store, plan_id) is None:
            raise _not_projected(plan_id)
        explained = queries.explain_score_change(
            store, plan_id, query["from_"], query["to"]
        )
        if explained is None:
            raise ProblemError(
                404,
                "not-found",
                f"The plan has no scores for {query['from_']!r} or for "
                f"{query['to']!r}; both quarters need ratings.",
            )
        return explained

    for section in Section:
        _section_view(blp, section)
    return blp

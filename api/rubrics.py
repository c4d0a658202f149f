"""Scoring rubrics: read the versions in force, adopt a new one."""

from __future__ import annotations

from typing import Any

from api import schemas
from api.auth import Access, access
from api.common import Blueprint, context, plans
from soh_es.quarters import Quarter
from soh_es.rubric import Band, Indicator, Rubric


def create_blueprint() -> Blueprint:
    """Returns the blueprint of the scoring rubrics."""
    blp = Blueprint("rubrics", __name__, description="Share of Heart scoring rules.")

    @blp.route("/rubrics", methods=["GET"])
    @blp.response(200, schemas.RubricListSchema)
    @access(Access.READ)
    def list_rubrics() -> Any:
        """List the rubric versions: indicators, bands and trajectory threshold."""
        schedule = plans().rubric_schedule()
        return {"items": [rubric.as_data() for rubric in schedule.rubrics]}

    @blp.route("/rubrics", methods=["POST"])
    @blp.arguments(schemas.NewRubricSchema)
    @blp.response(201, schemas.RubricSchema)
    @access(Access.ADMIN)
    def adopt_rubric(body: dict[str, Any]) -> Any:
        """Adopt a new rubric from the current or a later quarter on."""
        proposed = Rubric(
            version=0,
            indicators=tuple(
                Indicator(i["key"], i["statement"]) for i in body["indicators"]
            ),
            bands=tuple(
                Band(b["label"], b["minimum"], b["maximum"]) for b in body["bands"]
            ),
            trajectory_threshold=body["trajectory_threshold"],
            effective_from=Quarter.parse(
                body["effective_from"], field="effective_from"
            ),
        )
        adopted = plans().adopt_rubric(proposed, ctx=context(body))
        return adopted.as_data(), 201

    return blp

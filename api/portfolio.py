"""The leadership view: patterns across all active plans."""

from __future__ import annotations

from typing import Any

from api import read_schemas
from api.auth import Access, access
from api.common import LAGGING, Blueprint, read_store
from projections import queries


def create_blueprint() -> Blueprint:
    """Returns the blueprint of the portfolio view."""
    blp = Blueprint(
        "portfolio",
        __name__,
        url_prefix="/portfolio",
        description="Patterns across plans, for leadership.",
    )

    @blp.route("", methods=["GET"])
    @blp.arguments(read_schemas.ReadQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, read_schemas.PortfolioSchema)
    @blp.alt_response(503, response=LAGGING)
    @access(Access.READ)
    def read_portfolio(after: int | None = None) -> dict[str, Any]:
        """Read bands, declines, shared concerns, pipeline and overdue reviews."""
        return queries.portfolio(read_store(after, "current_plans", "portfolio"))

    return blp

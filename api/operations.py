"""Operations on the read models: their status and lag, and rebuilds."""

from __future__ import annotations

from typing import Any

from api import read_schemas
from api.auth import Access, access
from api.common import Blueprint, read_models


def create_blueprint() -> Blueprint:
    """Returns the blueprint of projection status and rebuilds."""
    blp = Blueprint(
        "projections",
        __name__,
        url_prefix="/projections",
        description="Read models: status, lag and rebuilds.",
    )

    @blp.route("", methods=["GET"])
    @blp.response(200, read_schemas.ProjectionsSchema)
    @access(Access.ADMIN)
    def read_projections() -> dict[str, Any]:
        """Read each projection's position, the log's head and the lag."""
        models = read_models()
        return {"in_process": models.in_process, "items": models.status()}

    @blp.route("/rebuild", methods=["POST"])
    @blp.arguments(read_schemas.RebuildRequestSchema, required=False)
    @blp.response(200, read_schemas.RebuildReportSchema)
    @blp.doc(
        description="Runs synchronously: the answer comes once the rebuild is "
        "done. The new rows are built aside while reads go on; one transaction "
        "then swaps them in. One rebuild at a time per process (409 otherwise)."
    )
    @access(Access.ADMIN)
    def rebuild_projections(body: dict[str, Any]) -> Any:
        """Rebuild one projection, or all, from the first event."""
        return read_models().rebuild(body.get("name"))

    return blp

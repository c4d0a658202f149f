"""Administration over HTTP: walking the hash chains of the event log."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from api import schemas
from api.auth import Access, access
from api.common import Blueprint, plans
from soh_es.domain import RUBRIC_REGISTER_ID
from soh_es.integrity import ChainReport


def report_document(report: ChainReport) -> dict[str, Any]:
    """Returns one stream's chain report as plain data."""
    kind = "rubric_register" if report.originator_id == RUBRIC_REGISTER_ID else "plan"
    return {
        "stream_id": report.originator_id,
        "kind": kind,
        "events": report.events,
        "intact": report.intact,
        "first_bad_version": report.first_bad_version,
        "problem": report.problem,
    }


def verification_document(reports: list[ChainReport]) -> dict[str, Any]:
    """Returns the verification of several streams, broken ones counted."""
    broken = sum(1 for report in reports if not report.intact)
    return {
        "intact": broken == 0,
        "streams": len(reports),
        "broken": broken,
        "items": [report_document(report) for report in reports],
    }


def create_blueprint() -> Blueprint:
    """Returns the blueprint of the administration endpoints."""
    blp = Blueprint(
        "admin", __name__, description="Administration: integrity of the event log."
    )

    @blp.route("/admin/verify", methods=["GET"])
    @blp.response(200, schemas.VerificationSchema)
    @access(Access.ADMIN)
    def verify_all() -> Any:
        """Walk the hash chain of every plan and of the rubric register."""
        return verification_document(plans().verify())

    @blp.route("/plans/<uuid:plan_id>/verify", methods=["GET"])
    @blp.response(200, schemas.VerificationSchema)
    @access(Access.ADMIN)
    def verify_plan(plan_id: UUID) -> Any:
        """Walk one plan's hash chain: intact, or the first version that fails."""
        return verification_document(plans().verify(plan_id))

    return blp

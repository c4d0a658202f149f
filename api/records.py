"""Child records of a plan: list, add, read, change and remove each kind."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Response, url_for

from api import schemas
from api.auth import Access, access
from api.common import (
    POSITION_HEADERS,
    Blueprint,
    context,
    etag,
    expected_version,
    plans,
    point,
    written,
)
from api.plans import IF_MATCH
from soh_es.errors import NotFoundError
from soh_es.quarters import Point
from soh_es.sections import RECORD_KINDS, RecordKind, Section
from soh_es.views import plain, records_of

SHARED_KINDS = frozenset(
    kind.name
    for kind in RECORD_KINDS.values()
    if kind.section in (Section.GOALS, Section.MARKET_DEMAND)
)


def records_at(
    plan_id: UUID, kind: RecordKind, at: Point | None
) -> tuple[list[dict[str, Any]], int]:
    """Returns the plan's records of ``kind`` at ``at``, and the plan's version."""
    plan = plans().get_plan(plan_id, at)
    found: list[dict[str, Any]] = plain(records_of(plan, kind.name))
    return found, plan.version


def record_at(
    plan_id: UUID, kind: RecordKind, record_id: str, version: int | None
) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Returns one record as a response with the plan's ETag, or raises 404."""
    at = None if version is None else Point(version=version)
    found, version = records_at(plan_id, kind, at)
    for record in found:
        if record["id"] == record_id:
            return record, 200, etag(version)
    raise NotFoundError(f"The plan has no {kind.name} {record_id!r}.")


def _kind_views(blp: Blueprint, kind: RecordKind) -> None:
    """Registers the five endpoints of one kind of record."""
    name, plural = kind.name, kind.plural
    shared = name in SHARED_KINDS
    collection = f"/<uuid:plan_id>/{plural}"
    item = f"{collection}/<string(maxlength=100):record_id>"
    words = name.replace("_", " ")

    def list_records(plan_id: UUID, at: str | None = None) -> Any:
        found, version = records_at(plan_id, kind, point(at, field="at"))
        return found, 200, etag(version)

    def add_record(body: dict[str, Any], plan_id: UUID) -> Any:
        outcome = plans().add_record(
            plan_id,
            name,
            body["values"],
            ctx=context(body),
            expected_version=expected_version(),
        )
        assert outcome.record_id is not None
        record, _, _ = record_at(plan_id, kind, outcome.record_id, outcome.version)
        headers = written(outcome)
        headers["Location"] = url_for(
            f".read_{name}", plan_id=plan_id, record_id=outcome.record_id
        )
        return record, 201, headers

    def read_record(plan_id: UUID, record_id: str) -> Any:
        return record_at(plan_id, kind, record_id, None)

    def change_record(body: dict[str, Any], plan_id: UUID, record_id: str) -> Any:
        outcome = plans().change_record(
            plan_id,
            name,
            record_id,
            body["values"],
            ctx=context(body),
            expected_version=expected_version(),
        )
        record, status, _ = record_at(plan_id, kind, record_id, outcome.version)
        return record, status, written(outcome)

    def remove_record(body: dict[str, Any], plan_id: UUID, record_id: str) -> Any:
        outcome = plans().remove_record(
            plan_id,
            name,
            record_id,
            ctx=context(body),
            expected_version=expected_version(),
        )
        return Response(status=204, headers=written(outcome))

    article = "an" if words[0] in "aeiou" else "a"
    list_records.__doc__ = f"List the plan's {plural.replace('_', ' ')}."
    add_record.__doc__ = f"Add {article} {words} to the plan."
    read_record.__doc__ = f"Read one {words}."
    change_record.__doc__ = f"Change fields of {article} {words}; null clears a field."
    remove_record.__doc__ = f"Remove {article} {words}."

    record = schemas.record_schema(kind.name)
    blp.route(collection, methods=["GET"], endpoint=f"list_{plural}")(
        blp.arguments(schemas.AsOfSchema, location="query", as_kwargs=True)(
            blp.response(200, record(many=True))(
                access(Access.READ, shared=shared)(list_records)
            )
        )
    )
    blp.route(collection, methods=["POST"], endpoint=f"add_{name}")(
        blp.arguments(schemas.record_write_schema(name, complete=True))(
            blp.response(201, record, headers=POSITION_HEADERS)(
                blp.doc(parameters=[IF_MATCH])(access(Access.WRITE)(add_record))
            )
        )
    )
    blp.route(item, methods=["GET"], endpoint=f"read_{name}")(
        blp.response(200, record)(access(Access.READ, shared=shared)(read_record))
    )
    blp.route(item, methods=["PATCH"], endpoint=f"change_{name}")(
        blp.arguments(schemas.record_write_schema(name, complete=False))(
            blp.response(200, record, headers=POSITION_HEADERS)(
                blp.doc(parameters=[IF_MATCH])(access(Access.WRITE)(change_record))
            )
        )
    )
    blp.route(item, methods=["DELETE"], endpoint=f"remove_{name}")(
        blp.arguments(schemas.WriteSchema, required=False)(
            blp.response(204, headers=POSITION_HEADERS)(
                blp.doc(parameters=[IF_MATCH])(access(Access.WRITE)(remove_record))
            )
        )
    )
    if name == "stakeholder":
        _erasure_view(blp, kind, item)


def _erasure_view(blp: Blueprint, kind: RecordKind, item: str) -> None:
    """Registers the endpoint that erases a stakeholder's personal data."""

    def erase_stakeholder(body: dict[str, Any], plan_id: UUID, record_id: str) -> Any:
        """Erase a stakeholder's personal data for good; the record stays."""
        outcome = plans().erase_stakeholder(
            plan_id, record_id, ctx=context(body), expected_version=expected_version()
        )
        record, status, _ = record_at(plan_id, kind, record_id, outcome.version)
        return record, status, written(outcome)

    blp.route(f"{item}/erasure", methods=["POST"], endpoint="erase_stakeholder")(
        blp.arguments(schemas.WriteSchema, required=False)(
            blp.response(
                200, schemas.record_schema(kind.name), headers=POSITION_HEADERS
            )(blp.doc(parameters=[IF_MATCH])(access(Access.WRITE)(erase_stakeholder)))
        )
    )


def create_blueprint() -> Blueprint:
    """Returns the blueprint of every kind of child record."""
    blp = Blueprint(
        "records",
        __name__,
        url_prefix="/plans",
        description="Child records: stakeholders, goals, opportunities, initiatives...",
    )
    for kind in RECORD_KINDS.values():
        _kind_views(blp, kind)
    return blp

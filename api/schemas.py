"""Marshmallow schemas of requests and responses, derived from the section specs.

The fields of the seven sections and of the child records are described once,
as data, in ``soh_es.sections``; the schemas here are built from those
descriptions when the app is created, so the API and the domain cannot drift.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from soh_es.domain import PlanStatus
from soh_es.identity import Role
from soh_es.sections import (
    MAX_LIST,
    MAX_NAME,
    MAX_TEXT,
    RECORD_KINDS,
    SECTION_FIELDS,
    Field,
    Section,
)

QUARTER_PATTERN = r"^\d{4}-Q[1-4]$"
MAX_AMOUNT = 10**15
AFTER_DESCRIPTION = (
    "A Soh-Position a write answered with: the read waits until the read "
    "models reached it (at most SOH_READ_WAIT_SECONDS, default 5 s), else "
    "answers 503 /problems/projection-lagging with Retry-After. Without it the "
    "read models are read as they are, which may lag the latest writes."
)
POINT_DESCRIPTION = (
    "A point in the plan's past: a version (12 or v12), the end of a quarter "
    "(2026-Q2), or an ISO 8601 date or instant with an offset."
)


def _reason() -> fields.Field:
    return fields.String(
        validate=validate.Length(max=MAX_TEXT),
        allow_none=True,
        metadata={"description": "Why the change is made; stored on its events."},
    )


def after_field() -> fields.Field:
    """Returns the optional ``after`` query parameter of a read-model read."""
    return fields.Integer(
        validate=validate.Range(0, 2**62),
        metadata={"description": AFTER_DESCRIPTION, "example": 42},
    )


def _instant(**options: Any) -> fields.Field:
    return fields.String(metadata={"format": "date-time"}, **options)


class WriteSchema(ma.Schema):
    """Base of every write body: an optional reason."""

    reason = _reason()


# Fields, from the section specs.


def input_field(spec: Field, *, required: bool) -> fields.Field:
    """Returns the marshmallow field that reads ``spec`` from a request."""
    options: dict[str, Any] = {
        "required": required,
        "allow_none": not spec.required,
    }
    if spec.kind == "text":
        return fields.String(validate=validate.Length(max=spec.max_length), **options)
    if spec.kind == "texts":
        item = fields.String(validate=validate.Length(min=1, max=MAX_NAME))
        return fields.List(item, validate=validate.Length(max=MAX_LIST), **options)
    if spec.kind == "choice":
        assert spec.choices is not None
        accepted = [choice.value for choice in spec.choices]
        return fields.String(validate=validate.OneOf(accepted), **options)
    if spec.kind == "date":
        return fields.Date(**options)
    if spec.kind == "money":
        # Ranges are checked by the domain and documented here: a Range
        # validator on a Decimal would be published as text, not a number.
        return fields.Decimal(
            allow_nan=False,
            metadata={
                "description": "An amount; two decimals are kept.",
                "minimum": 0,
                "maximum": MAX_AMOUNT,
                "exclusiveMaximum": True,
            },
            **options,
        )
    if spec.kind == "percent":
        return fields.Decimal(
            allow_nan=False, metadata={"minimum": 0, "maximum": 100}, **options
        )
    if spec.kind == "rating":
        return fields.Integer(strict=True, validate=validate.Range(1, 5), **options)
    if spec.kind == "quarter":
        return fields.String(
            validate=validate.Regexp(QUARTER_PATTERN),
            metadata={"example": "2026-Q2"},
            **options,
        )
    raise ValueError(f"No request field for kind {spec.kind!r}.")


def output_field(spec: Field) -> fields.Field:
    """Returns the marshmallow field that documents ``spec`` in a response."""
    if spec.kind == "texts":
        return fields.List(fields.String(), allow_none=True)
    if spec.kind == "rating":
        return fields.Integer(allow_none=True)
    if spec.kind == "choice":
        assert spec.choices is not None
        accepted = [choice.value for choice in spec.choices]
        return fields.String(allow_none=True, validate=validate.OneOf(accepted))
    formats = {"date": "date", "money": "decimal", "percent": "decimal"}
    metadata = {"format": formats[spec.kind]} if spec.kind in formats else {}
    return fields.String(allow_none=True, metadata=metadata)


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


# Sections.


@cache
def section_values_schema(section: Section) -> type[ma.Schema]:
    """The fields a section edit may set; null clears a field."""
    attrs = {
        spec.name: input_field(spec, required=False) for spec in SECTION_FIELDS[section]
    }
    return ma.Schema.from_dict(attrs, name=f"{_title(section.value)}ValuesSchema")


@cache
def section_edit_schema(section: Section) -> type[ma.Schema]:
    """The body of a section edit: values to set and an optional reason."""
    values = section_values_schema(section)
    attrs = {"values": fields.Nested(values, required=True), "reason": _reason()}
    return ma.Schema.from_dict(attrs, name=f"{_title(section.value)}EditSchema")


# Child records.


@cache
def record_values_schema(name: str, *, complete: bool) -> type[ma.Schema]:
    """The fields of a new record (``complete``) or of a change to one."""
    kind = RECORD_KINDS[name]
    attrs = {
        spec.name: input_field(spec, required=complete and spec.required)
        for spec in kind.fields
    }
    verb = "New" if complete else "Changed"
    name = f"{verb}{_title(kind.name)}ValuesSchema"
    return ma.Schema.from_dict(attrs, name=name)


@cache
def record_write_schema(name: str, *, complete: bool) -> type[ma.Schema]:
    """The body that adds or changes a record: its values and a reason."""
    kind = RECORD_KINDS[name]
    values = record_values_schema(name, complete=complete)
    attrs = {"values": fields.Nested(values, required=True), "reason": _reason()}
    verb = "Add" if complete else "Change"
    return ma.Schema.from_dict(attrs, name=f"{verb}{_title(kind.name)}Schema")


@cache
def record_schema(name: str) -> type[ma.Schema]:
    """A child record as the API shows it, with its id."""
    kind = RECORD_KINDS[name]
    attrs: dict[str, fields.Field] = {"id": fields.String(required=True)}
    attrs.update({spec.name: output_field(spec) for spec in kind.fields})
    return ma.Schema.from_dict(attrs, name=f"{_title(kind.name)}Schema")


# Scorecards.


class RatingSchema(ma.Schema):
    """One rating in force for a quarter, with who recorded it and when."""

    rating = fields.Integer(required=True)
    actor = fields.String(required=True)
    recorded_at = _instant(required=True)
    reason = fields.String(allow_none=True)


class QuarterScoreSchema(ma.Schema):
    """One quarter's scorecard: total, band and trajectory once complete."""

    quarter = fields.String(required=True, metadata={"example": "2026-Q2"})
    rubric_version = fields.Integer(required=True)
    complete = fields.Boolean(required=True)
    missing = fields.List(fields.String(), required=True)
    total = fields.Integer(allow_none=True)
    band = fields.String(allow_none=True)
    trajectory = fields.String(allow_none=True)
    change = fields.Integer(allow_none=True)
    compared_with = fields.String(allow_none=True)
    ratings = fields.Dict(
        keys=fields.String(), values=fields.Nested(RatingSchema), required=True
    )


class ScorecardSchema(ma.Schema):
    """The quarterly score history of a plan and its latest complete quarter."""

    latest_complete = fields.Nested(QuarterScoreSchema, allow_none=True)
    quarters = fields.List(fields.Nested(QuarterScoreSchema), required=True)


class RateSchema(ma.Schema):
    """Ratings for one quarter, 1 to 5 per indicator, stored all or none."""

    quarter = fields.String(
        required=True,
        validate=validate.Regexp(QUARTER_PATTERN),
        metadata={"example": "2026-Q2"},
    )
    ratings = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=100)),
        values=fields.Integer(strict=True, validate=validate.Range(1, 5)),
        required=True,
        metadata={
            "example": {"brings_opportunities": 4, "seeks_input": 3},
            "minProperties": 1,
        },
    )
    reason = _reason()


class PipelineMetricsSchema(ma.Schema):
    """Derived figures of the open pipeline."""

    open_value = fields.String(required=True, metadata={"format": "decimal"})
    weighted_forecast = fields.String(required=True, metadata={"format": "decimal"})
    active_opportunities = fields.Integer(required=True)
    average_deal_size = fields.String(allow_none=True, metadata={"format": "decimal"})


# Plans.


@cache
def section_schema(section: Section) -> type[ma.Schema]:
    """A section as the API shows it: its fields and its child records."""
    attrs: dict[str, fields.Field] = {
        spec.name: output_field(spec) for spec in SECTION_FIELDS[section]
    }
    for kind in RECORD_KINDS.values():
        if kind.section is section:
            attrs[kind.plural] = fields.List(fields.Nested(record_schema(kind.name)))
    if section is Section.PIPELINE:
        attrs["metrics"] = fields.Nested(PipelineMetricsSchema)
    if section is Section.HEALTH:
        attrs["scorecard"] = fields.Nested(ScorecardSchema)
    return ma.Schema.from_dict(attrs, name=f"{_title(section.value)}SectionSchema")


@cache
def sections_schema() -> type[ma.Schema]:
    """The seven sections; a partner sees only the shared ones."""
    attrs: dict[str, fields.Field] = {
        section.value: fields.Nested(section_schema(section)) for section in Section
    }
    return ma.Schema.from_dict(attrs, name="SectionsSchema")


class ReviewSchema(ma.Schema):
    """A review held of the plan."""

    reviewed_on = fields.String(required=True, metadata={"format": "date"})
    summary = fields.String(allow_none=True)
    actor = fields.String(required=True)
    recorded_at = _instant(required=True)


class HandoverSchema(ma.Schema):
    """A handover of the plan from one owner to another."""

    previous_owner = fields.String(required=True)
    new_owner = fields.String(required=True)
    notes = fields.String(allow_none=True)
    actor = fields.String(required=True)
    recorded_at = _instant(required=True)


@cache
def plan_schema() -> type[ma.Schema]:
    """A whole plan, now or as of a point in its past."""
    attrs: dict[str, fields.Field] = {
        "id": fields.UUID(required=True),
        "version": fields.Integer(required=True),
        "partner": fields.String(required=True),
        "owner": fields.String(),
        "status": fields.String(validate=validate.OneOf([s.value for s in PlanStatus])),
        "opened_at": _instant(),
        "updated_at": _instant(),
        "sections": fields.Nested(sections_schema(), required=True),
        "reviews": fields.List(fields.Nested(ReviewSchema)),
        "handovers": fields.List(fields.Nested(HandoverSchema)),
    }
    return ma.Schema.from_dict(attrs, name="PlanSchema")


class OpenPlanSchema(ma.Schema):
    """Opens a plan for a partner; the owner defaults to the caller."""

    partner = fields.String(
        required=True, validate=validate.Length(min=1, max=MAX_NAME)
    )
    owner = fields.String(validate=validate.Length(min=1, max=MAX_NAME))
    reason = _reason()


class PlanPipelineSchema(ma.Schema):
    """A plan's open pipeline value, weighted forecast and active opportunities."""

    open_value = fields.String(required=True, metadata={"format": "decimal"})
    weighted_forecast = fields.String(required=True, metadata={"format": "decimal"})
    active_opportunities = fields.Integer(required=True)


class PlanSummarySchema(ma.Schema):
    """One plan in a list: its latest complete scorecard, pipeline and open work."""

    id = fields.UUID(required=True, attribute="plan_id")
    version = fields.Integer(required=True)
    partner = fields.String(required=True)
    owner = fields.String(required=True)
    status = fields.String(required=True)
    opened_on = fields.String(required=True, metadata={"format": "date"})
    updated_at = _instant(required=True)
    quarter = fields.String(allow_none=True, attribute="latest_quarter")
    total = fields.Integer(allow_none=True)
    band = fields.String(allow_none=True)
    trajectory = fields.String(allow_none=True)
    declining_quarters = fields.Integer(required=True)
    pipeline = fields.Nested(PlanPipelineSchema, required=True)
    open_initiatives = fields.Integer(required=True)
    open_actions = fields.Integer(required=True)
    overdue_actions = fields.Integer(required=True)
    next_action_due = fields.String(allow_none=True, metadata={"format": "date"})
    last_review_on = fields.String(allow_none=True, metadata={"format": "date"})
    review_overdue = fields.Boolean(required=True)


class PlanListSchema(ma.Schema):
    """A page of the plans that match the filters, by partner name."""

    items = fields.List(fields.Nested(PlanSummarySchema), required=True)
    total = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    limit = fields.Integer(required=True)


class PlanFilterSchema(ma.Schema):
    """Filters and page of the plan list, read from the current plans model."""

    status = fields.String(validate=validate.OneOf([s.value for s in PlanStatus]))
    owner = fields.String(validate=validate.Length(min=1, max=MAX_NAME))
    band = fields.String(validate=validate.Length(min=1, max=100))
    trajectory = fields.String(validate=validate.Length(min=1, max=100))
    review_overdue = fields.Boolean(
        metadata={
            "description": "true: only plans not reviewed in the last 31 days "
            "(counted from opening when never reviewed); false: only the others."
        }
    )
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 10**9))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    after = after_field()


class AsOfSchema(ma.Schema):
    """Reads the plan as of a point in its past instead of now."""

    at = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": POINT_DESCRIPTION, "example": "2026-Q2"},
    )


class ReviewRequestSchema(ma.Schema):
    """Records a review held on a day, with an optional summary."""

    reviewed_on = fields.Date(required=True)
    summary = fields.String(validate=validate.Length(max=MAX_TEXT), allow_none=True)
    reason = _reason()


class HandOverSchema(ma.Schema):
    """Hands the plan to a new owner, with optional notes."""

    new_owner = fields.String(
        required=True, validate=validate.Length(min=1, max=MAX_NAME)
    )
    notes = fields.String(validate=validate.Length(max=MAX_TEXT), allow_none=True)
    reason = _reason()


# History and diffs.


class HistoryQuerySchema(ma.Schema):
    """Filters and page of a plan's history."""

    section = fields.String(
        validate=validate.OneOf([s.value for s in Section] + ["lifecycle"])
    )
    actor = fields.String(validate=validate.Length(min=1, max=200))
    since = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Inclusive start: a quarter, a date or an instant."},
    )
    until = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Exclusive end: a quarter, a date or an instant."},
    )
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 10**9))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))


class FieldChangeSchema(ma.Schema):
    """One field's value before and after a change."""

    field = fields.String(required=True)
    before = fields.Raw(allow_none=True)
    after = fields.Raw(allow_none=True)


class ChangeSchema(ma.Schema):
    """One event of the plan: who, when, why, and the fields it changed."""

    version = fields.Integer(required=True)
    event = fields.String(required=True)
    section = fields.String(required=True)
    actor = fields.String(required=True)
    recorded_at = _instant(required=True)
    reason = fields.String(allow_none=True)
    source = fields.String(required=True)
    correlation_id = fields.String(required=True)
    record_kind = fields.String(allow_none=True)
    record_id = fields.String(allow_none=True)
    changes = fields.List(fields.Nested(FieldChangeSchema), required=True)


class HistoryPageSchema(ma.Schema):
    """A page of the plan's history, oldest first."""

    items = fields.List(fields.Nested(ChangeSchema), required=True)
    total = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    limit = fields.Integer(required=True)


class DiffQuerySchema(ma.Schema):
    """The two points to compare; ``to`` defaults to now."""

    from_ = fields.String(
        data_key="from",
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": POINT_DESCRIPTION},
    )
    to = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": POINT_DESCRIPTION},
    )


class DifferenceSchema(ma.Schema):
    """One field that differs between the two points."""

    path = fields.String(required=True)
    before = fields.Raw(allow_none=True)
    after = fields.Raw(allow_none=True)


class DiffSchema(ma.Schema):
    """The field-level differences between two points of a plan."""

    from_version = fields.Integer(required=True)
    to_version = fields.Integer(required=True)
    differences = fields.List(fields.Nested(DifferenceSchema), required=True)


# Verification of the hash chains.


class ChainReportSchema(ma.Schema):
    """Whether one stream's hash chain verifies, and where it first breaks."""

    stream_id = fields.UUID(required=True)
    kind = fields.String(
        required=True, validate=validate.OneOf(["plan", "rubric_register"])
    )
    events = fields.Integer(required=True)
    intact = fields.Boolean(required=True)
    first_bad_version = fields.Integer(allow_none=True)
    problem = fields.String(allow_none=True)


class VerificationSchema(ma.Schema):
    """The verification of one plan's chain, or of every stream's."""

    intact = fields.Boolean(required=True)
    streams = fields.Integer(required=True)
    broken = fields.Integer(required=True)
    items = fields.List(fields.Nested(ChainReportSchema), required=True)


# Users and tokens.


class IndicatorSchema(ma.Schema):
    """One indicator of a rubric: its key and the statement rated 1 to 5."""

    key = fields.String(
        required=True,
        validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,49}$"),
        metadata={"example": "seeks_input"},
    )
    statement = fields.String(required=True, validate=validate.Length(min=1, max=300))


class BandSchema(ma.Schema):
    """A named range of quarter totals, both ends included."""

    label = fields.String(required=True, validate=validate.Length(min=1, max=50))
    minimum = fields.Integer(
        strict=True, required=True, validate=validate.Range(0, 500)
    )
    maximum = fields.Integer(
        strict=True, required=True, validate=validate.Range(0, 500)
    )


class RubricSchema(ma.Schema):
    """A version of the scoring rules and the first quarter it applies to."""

    version = fields.Integer(required=True)
    effective_from = fields.String(allow_none=True, required=True)
    indicators = fields.List(fields.Nested(IndicatorSchema), required=True)
    bands = fields.List(fields.Nested(BandSchema), required=True)
    trajectory_threshold = fields.Integer(required=True)


class RubricListSchema(ma.Schema):
    """The rubric versions, the built-in first one first."""

    items = fields.List(fields.Nested(RubricSchema), required=True)


class NewRubricSchema(ma.Schema):
    """A rubric to adopt from the current or a later quarter."""

    effective_from = fields.String(
        required=True,
        validate=validate.Regexp(QUARTER_PATTERN),
        metadata={"example": "2027-Q1"},
    )
    indicators = fields.List(
        fields.Nested(IndicatorSchema),
        required=True,
        validate=validate.Length(min=1, max=20),
    )
    bands = fields.List(
        fields.Nested(BandSchema),
        required=True,
        validate=validate.Length(min=1, max=10),
    )
    trajectory_threshold = fields.Integer(
        strict=True, required=True, validate=validate.Range(1, 100)
    )
    reason = _reason()


class NewUserSchema(ma.Schema):
    """A user to add; a partner is bound to one plan."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    role = fields.String(
        required=True, validate=validate.OneOf([r.value for r in Role])
    )
    plan_id = fields.UUID(allow_none=True)


class UserSchema(ma.Schema):
    """A user and its role."""

    name = fields.String(required=True)
    role = fields.String(required=True)
    plan_id = fields.UUID(allow_none=True)
    created_at = fields.DateTime(required=True)


class UserListSchema(ma.Schema):
    """Every user."""

    items = fields.List(fields.Nested(UserSchema), required=True)


class TokenSchema(ma.Schema):
    """A token's public facts; ``secret`` is shown only when it is created."""

    token_id = fields.String(required=True)
    user_name = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    revoked_at = fields.DateTime(allow_none=True)
    secret = fields.String()


# Errors.


class FieldErrorSchema(ma.Schema):
    """What is wrong with one field of a request."""

    field = fields.String(required=True)
    message = fields.String(required=True)


class ProblemSchema(ma.Schema):
    """An error, as an RFC 9457 problem document."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.List(fields.Nested(FieldErrorSchema))

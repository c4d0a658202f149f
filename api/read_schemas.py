"""Marshmallow schemas of the reads served from the read models, and operations."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas import QUARTER_PATTERN, ChangeSchema, QuarterScoreSchema, after_field
from projections.queries import MAX_LIMIT
from soh_es.sections import Section

BOUND_DESCRIPTION = "a quarter (2026-Q2), a date (2026-05-01) or an instant"


def _instant(**options: Any) -> fields.Field:
    return fields.String(metadata={"format": "date-time"}, **options)


def _date(**options: Any) -> fields.Field:
    return fields.String(metadata={"format": "date"}, **options)


def _money() -> fields.Field:
    return fields.String(required=True, metadata={"format": "decimal"})


class ReadQuerySchema(ma.Schema):
    """Query of a read served from the read models."""

    after = after_field()


class PageQuerySchema(ReadQuerySchema):
    """A page of a list served from the read models."""

    offset = fields.Integer(load_default=0, validate=validate.Range(0, 10**9))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, MAX_LIMIT))


# Scores.


class ScoreHistorySchema(ma.Schema):
    """A plan's quarterly scorecards from the read model, oldest first."""

    plan_id = fields.UUID(required=True)
    latest_complete = fields.Nested(QuarterScoreSchema, allow_none=True)
    quarters = fields.List(fields.Nested(QuarterScoreSchema), required=True)


class ExplainQuerySchema(ReadQuerySchema):
    """The two quarters whose scores to compare."""

    from_ = fields.String(
        data_key="from",
        required=True,
        validate=validate.Regexp(QUARTER_PATTERN),
        metadata={"example": "2026-Q2"},
    )
    to = fields.String(
        required=True,
        validate=validate.Regexp(QUARTER_PATTERN),
        metadata={"example": "2026-Q3"},
    )


class QuarterLabelsSchema(ma.Schema):
    """A quarter's total and labels, under the rubric it was scored with."""

    quarter = fields.String(required=True)
    rubric_version = fields.Integer(required=True)
    total = fields.Integer(allow_none=True)
    band = fields.String(allow_none=True)
    trajectory = fields.String(allow_none=True)


class IndicatorMoveSchema(ma.Schema):
    """One indicator in both quarters: ratings, difference, who rated it."""

    indicator = fields.String(required=True)
    before = fields.Integer(allow_none=True)
    after = fields.Integer(allow_none=True)
    change = fields.Integer(allow_none=True)
    rated_by = fields.String(allow_none=True)
    rated_at = _instant(allow_none=True)
    reason = fields.String(allow_none=True)


class ScoreExplanationSchema(ma.Schema):
    """How the score moved between two quarters, indicator by indicator."""

    plan_id = fields.UUID(required=True)
    before = fields.Nested(QuarterLabelsSchema, required=True)
    after = fields.Nested(QuarterLabelsSchema, required=True)
    change = fields.Integer(allow_none=True)
    indicators = fields.List(fields.Nested(IndicatorMoveSchema), required=True)
    moved = fields.List(fields.String(), required=True)


# Audit.


class AuditQuerySchema(PageQuerySchema):
    """Filters and page of the audit log across plans."""

    actor = fields.String(validate=validate.Length(min=1, max=200))
    plan = fields.UUID(metadata={"description": "Only this plan's events."})
    section = fields.String(
        validate=validate.OneOf([s.value for s in Section] + ["lifecycle", "rubric"])
    )
    since = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": f"Inclusive start: {BOUND_DESCRIPTION}."},
    )
    until = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": f"Exclusive end: {BOUND_DESCRIPTION}."},
    )


class AuditEntrySchema(ChangeSchema):
    """One event: where it sits in the log, who did what to which plan, and why."""

    position = fields.Integer(required=True)
    originator_id = fields.String(required=True)
    plan_id = fields.String(allow_none=True)


class AuditPageSchema(ma.Schema):
    """A page of the audit log, oldest first."""

    items = fields.List(fields.Nested(AuditEntrySchema), required=True)
    total = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    limit = fields.Integer(required=True)


# Portfolio.


class PipelineTotalsSchema(ma.Schema):
    """Open pipeline value, weighted forecast and active opportunities."""

    open_value = _money()
    weighted_forecast = _money()
    active_opportunities = fields.Integer(required=True)


class DecliningPlanSchema(ma.Schema):
    """A plan whose latest complete quarter declined."""

    plan_id = fields.String(required=True)
    partner = fields.String(required=True)
    owner = fields.String(required=True)
    latest_quarter = fields.String(allow_none=True)
    total = fields.Integer(allow_none=True)
    band = fields.String(allow_none=True)
    declining_quarters = fields.Integer(required=True)


class RecurringConcernSchema(ma.Schema):
    """A barrier or threat that several partners share."""

    kind = fields.String(required=True)
    text = fields.String(required=True)
    normalized = fields.String(required=True)
    partners = fields.Integer(required=True)


class OverdueReviewSchema(ma.Schema):
    """An active plan not reviewed within the monthly cadence."""

    plan_id = fields.String(required=True)
    partner = fields.String(required=True)
    owner = fields.String(required=True)
    last_review_on = _date(allow_none=True)
    days_since = fields.Integer(required=True)


class PortfolioSchema(ma.Schema):
    """Patterns across the active plans, for leadership."""

    plans = fields.Integer(required=True)
    bands = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    trajectories = fields.Dict(
        keys=fields.String(), values=fields.Integer(), required=True
    )
    declining = fields.List(fields.Nested(DecliningPlanSchema), required=True)
    recurring_concerns = fields.List(
        fields.Nested(RecurringConcernSchema), required=True
    )
    pipeline = fields.Nested(PipelineTotalsSchema, required=True)
    review_overdue = fields.List(fields.Nested(OverdueReviewSchema), required=True)


# Briefings.


class DigestQuerySchema(ReadQuerySchema):
    """Where the digest starts."""

    since = fields.String(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": f"Inclusive start: {BOUND_DESCRIPTION}."},
    )


class SectionChangesSchema(ma.Schema):
    """The changes of one section: how many, by whom, and the latest in full."""

    section = fields.String(required=True)
    count = fields.Integer(required=True)
    listed = fields.Integer(required=True)
    actors = fields.List(fields.String(), required=True)
    last_changed_at = _instant(allow_none=True)
    changes = fields.List(fields.Nested(AuditEntrySchema), required=True)


class ChangesSchema(ma.Schema):
    """Changes grouped by section, in the order of the plan's sections."""

    total = fields.Integer(required=True)
    sections = fields.List(fields.Nested(SectionChangesSchema), required=True)


class OpenInitiativeSchema(ma.Schema):
    """An initiative planned or in progress."""

    id = fields.String(required=True)
    title = fields.String(required=True)
    quarter = fields.String(allow_none=True)
    status = fields.String(required=True)
    owner = fields.String(allow_none=True)
    owner_party = fields.String(allow_none=True)
    deadline = _date(allow_none=True)
    open_actions = fields.Integer(required=True)


class OverdueActionSchema(ma.Schema):
    """An open action past its due date."""

    id = fields.String(required=True)
    description = fields.String(required=True)
    owner = fields.String(allow_none=True)
    due_date = _date(required=True)
    days_overdue = fields.Integer(required=True)
    initiative_id = fields.String(required=True)
    initiative = fields.String(allow_none=True)


class TrendPointSchema(ma.Schema):
    """One complete quarter of the health trend."""

    quarter = fields.String(required=True)
    total = fields.Integer(allow_none=True)
    band = fields.String(allow_none=True)
    trajectory = fields.String(allow_none=True)
    change = fields.Integer(allow_none=True)


class DigestSchema(ma.Schema):
    """The handover digest of a plan."""

    plan_id = fields.String(required=True)
    version = fields.Integer(required=True)
    partner = fields.String(required=True)
    owner = fields.String(required=True)
    status = fields.String(required=True)
    since = _instant(required=True)
    changes = fields.Nested(ChangesSchema, required=True)
    open_initiatives = fields.List(fields.Nested(OpenInitiativeSchema), required=True)
    overdue_actions = fields.List(fields.Nested(OverdueActionSchema), required=True)
    health_trend = fields.List(fields.Nested(TrendPointSchema), required=True)


class LastReviewSchema(ma.Schema):
    """The latest review held."""

    reviewed_on = _date(required=True)
    summary = fields.String(allow_none=True)
    actor = fields.String(required=True)


class DecliningIndicatorSchema(IndicatorMoveSchema):
    """An indicator rated lower than in the complete quarter before."""

    from_quarter = fields.String(required=True)
    to_quarter = fields.String(required=True)


class IncompleteQuarterSchema(ma.Schema):
    """The current quarter's indicators not rated yet."""

    quarter = fields.String(required=True)
    missing = fields.List(fields.String(), required=True)


class StaleOpportunitySchema(ma.Schema):
    """An open opportunity past its projected close date."""

    id = fields.String(required=True)
    name = fields.String(required=True)
    stage = fields.String(required=True)
    value = fields.String(allow_none=True, metadata={"format": "decimal"})
    close_date = _date(required=True)
    days_past_close = fields.Integer(required=True)


class TopicsSchema(ma.Schema):
    """What needs discussing at the review."""

    declining_indicators = fields.List(
        fields.Nested(DecliningIndicatorSchema), required=True
    )
    overdue_actions = fields.List(fields.Nested(OverdueActionSchema), required=True)
    incomplete_quarter = fields.Nested(IncompleteQuarterSchema, allow_none=True)
    stale_opportunities = fields.List(
        fields.Nested(StaleOpportunitySchema), required=True
    )


class OpenRiskSchema(ma.Schema):
    """A risk of an open initiative and its mitigation."""

    id = fields.String(required=True)
    description = fields.String(required=True)
    likelihood = fields.String(allow_none=True)
    impact = fields.String(allow_none=True)
    mitigation = fields.String(allow_none=True)
    initiative_id = fields.String(required=True)
    initiative = fields.String(required=True)


class ReviewPreparationSchema(ma.Schema):
    """What a quarterly business review of the plan should cover."""

    plan_id = fields.String(required=True)
    version = fields.Integer(required=True)
    partner = fields.String(required=True)
    owner = fields.String(required=True)
    status = fields.String(required=True)
    last_review = fields.Nested(LastReviewSchema, allow_none=True)
    since = _instant(required=True)
    progress = fields.Nested(ChangesSchema, required=True)
    topics = fields.Nested(TopicsSchema, required=True)
    open_risks = fields.List(fields.Nested(OpenRiskSchema), required=True)
    health_trend = fields.List(fields.Nested(TrendPointSchema), required=True)


# Operations.


class ProjectionStatusSchema(ma.Schema):
    """Where one projection stands against the head of the event log."""

    name = fields.String(required=True)
    position = fields.Integer(required=True)
    head = fields.Integer(required=True)
    lag = fields.Integer(required=True)


class ProjectionsSchema(ma.Schema):
    """Every projection's status, and whether this process runs them."""

    in_process = fields.Boolean(required=True)
    items = fields.List(fields.Nested(ProjectionStatusSchema), required=True)


class RebuildRequestSchema(ma.Schema):
    """Which projection to rebuild; all of them when no name is given."""

    name = fields.String(validate=validate.Length(min=1, max=100))


class RebuildReportSchema(ma.Schema):
    """What a rebuild did and how fast."""

    names = fields.List(fields.String(), required=True)
    events = fields.Integer(required=True)
    seconds = fields.Float(required=True)
    events_per_second = fields.Float(required=True)

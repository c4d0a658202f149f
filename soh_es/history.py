"""A plan's history: each event as a change with before and after values."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from soh_es.domain import ERASED, AccountPlan, PlanStatus, flatten_record
from soh_es.personal import Personal
from soh_es.sections import RECORD_KINDS, Section

LIFECYCLE = "lifecycle"


@dataclass(frozen=True)
class FieldChange:
    """One field's value before and after an event."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Change:
    """One event of a plan, told as a change.

    ``section`` is the plan section the event touched, or ``lifecycle`` for
    opening, reviews, handovers, archiving and restoring.
    """

    version: int
    event: str
    section: str
    actor: str
    recorded_at: datetime
    reason: str | None
    source: str
    correlation_id: str
    record_kind: str | None = None
    record_id: str | None = None
    changes: list[FieldChange] = field(default_factory=list)


def changes_of(events: Iterable[AccountPlan.Event]) -> Iterator[Change]:
    """Replays ``events`` from the plan's first and tells each as a Change."""
    plan: AccountPlan | None = None
    for event in events:
        change = describe(event, plan)
        plan = event.mutate(plan)
        yield change


def _section_of(event: AccountPlan.Event) -> str:
    if isinstance(event, AccountPlan.SectionEdited):
        return event.edited.value
    kind = getattr(type(event), "kind", None)
    if kind is not None:
        return RECORD_KINDS[kind].section.value
    if isinstance(event, AccountPlan.StakeholderErased):
        return Section.PROFILE.value
    if isinstance(event, AccountPlan.IndicatorRated):
        return Section.HEALTH.value
    return LIFECYCLE


def describe(event: AccountPlan.Event, plan: AccountPlan | None) -> Change:
    """Tells one event as a Change, given the plan as it stood before it."""
    kind, record_id, changes = _field_changes(event, plan)
    return Change(
        version=event.originator_version,
        event=type(event).__name__,
        section=_section_of(event),
        actor=event.actor,
        recorded_at=event.timestamp,
        reason=event.reason,
        source=event.source.value,
        correlation_id=event.correlation_id,
        record_kind=kind,
        record_id=record_id,
        changes=changes,
    )


def _field_changes(
    event: AccountPlan.Event, plan: AccountPlan | None
) -> tuple[str | None, str | None, list[FieldChange]]:
    if isinstance(event, AccountPlan.Opened):
        return (
            None,
            None,
            [
                FieldChange("partner", None, event.partner),
                FieldChange("owner", None, event.owner),
            ],
        )
    assert plan is not None
    if isinstance(event, AccountPlan.SectionEdited):
        current = plan.sections[event.edited.value]
        return (
            None,
            None,
            [
                FieldChange(name, current.get(name), value)
                for name, value in event.values.items()
            ],
        )
    if isinstance(event, AccountPlan.RecordAdded):
        spec = RECORD_KINDS[event.kind]
        added = flatten_record(spec, _record_from(event.values, event.personal))
        return (
            event.kind,
            event.record_id,
            [FieldChange(name, None, value) for name, value in added.items()],
        )
    if isinstance(event, AccountPlan.RecordChanged):
        spec = RECORD_KINDS[event.kind]
        before = plan.record_fields(event.kind, event.record_id)
        after = flatten_record(spec, _record_from(event.values, event.personal))
        return (
            event.kind,
            event.record_id,
            [
                FieldChange(name, before.get(name), value)
                for name, value in after.items()
            ],
        )
    if isinstance(event, AccountPlan.RecordRemoved):
        before = plan.record_fields(event.kind, event.record_id)
        removed = [FieldChange(name, value, None) for name, value in before.items()]
        if event.kind == "initiative":
            for child in ("action", "risk"):
                for key, record in plan.records[child].items():
                    if record["initiative_id"] == event.record_id:
                        removed.append(FieldChange(f"{child}:{key}", record, None))
        return event.kind, event.record_id, removed
    if isinstance(event, AccountPlan.StakeholderErased):
        spec = RECORD_KINDS["stakeholder"]
        return (
            "stakeholder",
            event.record_id,
            [
                FieldChange(name, ERASED, ERASED)
                for name in sorted(spec.personal_fields)
            ],
        )
    if isinstance(event, AccountPlan.IndicatorRated):
        in_force = {
            r.indicator: r.rating for r in plan.ratings if r.quarter == event.quarter
        }
        return (
            None,
            None,
            [
                FieldChange(
                    f"ratings.{event.quarter}.{event.indicator}",
                    in_force.get(event.indicator),
                    event.rating,
                )
            ],
        )
    if isinstance(event, AccountPlan.Reviewed):
        return (
            None,
            None,
            [
                FieldChange("reviewed_on", None, event.reviewed_on),
                FieldChange("summary", None, event.summary),
            ],
        )
    if isinstance(event, AccountPlan.HandedOver):
        return (
            None,
            None,
            [
                FieldChange("owner", event.previous_owner, event.new_owner),
                FieldChange("notes", None, event.notes),
            ],
        )
    if isinstance(event, AccountPlan.Archived):
        return None, None, [FieldChange("status", plan.status, PlanStatus.ARCHIVED)]
    if isinstance(event, AccountPlan.Restored):
        return None, None, [FieldChange("status", plan.status, PlanStatus.ACTIVE)]
    return None, None, []


def _record_from(values: dict[str, Any], personal: Personal | None) -> dict[str, Any]:
    record = dict(values)
    if personal is not None:
        record["personal"] = personal
    return record

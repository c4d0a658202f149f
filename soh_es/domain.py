"""The account plan aggregate, its events, and the register of scoring rubrics."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, ClassVar, cast
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate

from soh_es.errors import ConflictError, NotFoundError, ValidationError
from soh_es.personal import Personal
from soh_es.quarters import DEFAULT_CALENDAR, FiscalCalendar, Quarter
from soh_es.rubric import RATING_MAX, RATING_MIN, Rubric, RubricSchedule
from soh_es.scorecard import Rating
from soh_es.sections import (
    MAX_NAME,
    MAX_TEXT,
    OPEN_INITIATIVE_STATUSES,
    RECORD_KINDS,
    SECTION_FIELDS_BY_NAME,
    Field,
    InitiativeStatus,
    RecordKind,
    Section,
    clean_values,
    parse_section,
    record_kind,
)

MAX_INITIATIVES_PER_QUARTER = 5


class Source(Enum):
    """Where a change came from."""

    API = "api"
    IMPORT = "import"
    CLI = "cli"


class PlanStatus(Enum):
    """Whether a plan is in use or archived."""

    ACTIVE = "active"
    ARCHIVED = "archived"


_ACTOR = re.compile(r"^[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]{0,199}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Context:
    """Who makes a change, why, from where, and under which correlation id.

    ``recorded_at`` is for imports and demo data only: the time to record the
    change at, never earlier than the plan's last change.
    """

    actor: str
    reason: str | None = None
    source: Source = Source.API
    correlation_id: str = field(default_factory=lambda: uuid4().hex)
    recorded_at: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.actor, str) or not _ACTOR.match(self.actor):
            raise ValidationError(
                "actor", f"{self.actor!r} is not an actor name (1 to 200 characters)."
            )
        if self.reason is not None and (
            not isinstance(self.reason, str)
            or len(self.reason) > MAX_TEXT
            or _CONTROL.search(self.reason)
        ):
            raise ValidationError(
                "reason",
                f"A reason is text of at most {MAX_TEXT} characters, without "
                "control characters other than tab and newline.",
            )
        if not isinstance(self.correlation_id, str) or not (
            1 <= len(self.correlation_id) <= 200
        ):
            raise ValidationError(
                "correlation_id", "A correlation id is 1 to 200 characters."
            )

    def as_event_fields(self) -> dict[str, Any]:
        """Returns the metadata fields every event carries."""
        return {
            "actor": self.actor,
            "reason": self.reason,
            "source": self.source,
            "correlation_id": self.correlation_id,
        }


def _clean_owner(owner: Any, field_name: str) -> str:
    if not isinstance(owner, str) or not owner.strip() or len(owner) > MAX_NAME:
        raise ValidationError(
            field_name, f"{owner!r} is not an owner name (1 to {MAX_NAME} characters)."
        )
    return owner.strip()


def _clean_note(note: Any, field_name: str) -> str | None:
    cleaned = Field(field_name, "text").clean(note, path=field_name)
    return cast(str | None, cleaned) or None


class AccountPlan(Aggregate):
    """One partner's account plan: seven sections, child records and ratings.

    Commands validate their input and trigger past-tense events; a command
    that would change nothing triggers none.
    """

    def __init__(self, partner: str, owner: str) -> None:
        self.partner = partner
        self.owner = owner
        self.status = PlanStatus.ACTIVE
        self.sections: dict[str, dict[str, Any]] = {s.value: {} for s in Section}
        self.sections[Section.PROFILE.value]["company_name"] = partner
        self.records: dict[str, dict[str, dict[str, Any]]] = {
            kind: {} for kind in RECORD_KINDS
        }
        self.ratings: list[Rating] = []
        self.reviews: list[dict[str, Any]] = []
        self.handovers: list[dict[str, Any]] = []

    class Event(Aggregate.Event):
        """Base of every plan event: who, why, from where, and the correlation id."""

        actor: str
        reason: str | None
        source: Source
        correlation_id: str

        section: ClassVar[Section | None] = None

    class Opened(Event, Aggregate.Created):
        """The plan was opened for a partner, owned by a channel manager."""

        partner: str
        owner: str

        section: ClassVar[Section | None] = Section.PROFILE

    class SectionEdited(Event):
        """Fields of a section were set to new values (None clears a field)."""

        edited: Section
        values: dict[str, Any]

        def apply(self, plan: AccountPlan) -> None:
            fields = plan.sections[self.edited.value]
            for name, value in self.values.items():
                if value is None:
                    fields.pop(name, None)
                else:
                    fields[name] = value
            if self.edited is Section.PROFILE and "company_name" in self.values:
                plan.partner = self.values["company_name"] or plan.partner

    class RecordAdded(Event):
        """Base of the events that add a child record."""

        kind: ClassVar[str]
        record_id: str
        values: dict[str, Any]
        personal: Personal | None

        def apply(self, plan: AccountPlan) -> None:
            record = dict(self.values)
            if self.personal is not None:
                record["personal"] = self.personal
            plan.records[self.kind][self.record_id] = record

    class RecordChanged(Event):
        """Base of the events that change fields of a child record."""

        kind: ClassVar[str]
        record_id: str
        values: dict[str, Any]
        personal: Personal | None

        def apply(self, plan: AccountPlan) -> None:
            record = plan.records[self.kind][self.record_id]
            for name, value in self.values.items():
                if value is None:
                    record.pop(name, None)
                else:
                    record[name] = value
            if self.personal is not None:
                record["personal"] = _merge_personal(
                    record.get("personal"), self.personal
                )

    class RecordRemoved(Event):
        """Base of the events that remove a child record."""

        kind: ClassVar[str]
        record_id: str

        def apply(self, plan: AccountPlan) -> None:
            del plan.records[self.kind][self.record_id]
            if self.kind == "initiative":
                for child in ("action", "risk"):
                    plan.records[child] = {
                        key: record
                        for key, record in plan.records[child].items()
                        if record["initiative_id"] != self.record_id
                    }

    class StakeholderAdded(RecordAdded):
        """A stakeholder was added to the partner profile."""

        kind = "stakeholder"

    class StakeholderChanged(RecordChanged):
        """Fields of a stakeholder changed."""

        kind = "stakeholder"

    class StakeholderRemoved(RecordRemoved):
        """A stakeholder was removed from the partner profile."""

        kind = "stakeholder"

    class StakeholderErased(Event):
        """A stakeholder's personal data was erased; their key is destroyed."""

        record_id: str

        def apply(self, plan: AccountPlan) -> None:
            record = plan.records["stakeholder"].get(self.record_id)
            if record is not None:
                record["personal"] = Personal(self.record_id, None)

    class GoalAdded(RecordAdded):
        """A goal of the partner was added."""

        kind = "goal"

    class GoalChanged(RecordChanged):
        """Fields of a goal changed."""

        kind = "goal"

    class GoalRemoved(RecordRemoved):
        """A goal was removed."""

        kind = "goal"

    class ResponsibilityAdded(RecordAdded):
        """A responsibility was assigned to us, the partner, or both."""

        kind = "responsibility"

    class ResponsibilityChanged(RecordChanged):
        """Fields of a responsibility changed."""

        kind = "responsibility"

    class ResponsibilityRemoved(RecordRemoved):
        """A responsibility was removed."""

        kind = "responsibility"

    class SegmentAdded(RecordAdded):
        """A target customer segment was added."""

        kind = "segment"

    class SegmentChanged(RecordChanged):
        """Fields of a target segment changed."""

        kind = "segment"

    class SegmentRemoved(RecordRemoved):
        """A target segment was removed."""

        kind = "segment"

    class BarrierAdded(RecordAdded):
        """An adoption barrier was added, with the strategy to overcome it."""

        kind = "barrier"

    class BarrierChanged(RecordChanged):
        """Fields of an adoption barrier changed."""

        kind = "barrier"

    class BarrierRemoved(RecordRemoved):
        """An adoption barrier was removed."""

        kind = "barrier"

    class OpportunityAdded(RecordAdded):
        """An opportunity entered the pipeline."""

        kind = "opportunity"

    class OpportunityChanged(RecordChanged):
        """An opportunity moved or changed."""

        kind = "opportunity"

    class OpportunityRemoved(RecordRemoved):
        """An opportunity was removed from the pipeline."""

        kind = "opportunity"

    class InitiativeLaunched(RecordAdded):
        """A strategic initiative was launched for a quarter."""

        kind = "initiative"

    class InitiativeChanged(RecordChanged):
        """Fields of an initiative changed."""

        kind = "initiative"

    class InitiativeRemoved(RecordRemoved):
        """An initiative was removed, with its actions and risks."""

        kind = "initiative"

    class ActionAdded(RecordAdded):
        """An action was added to an initiative."""

        kind = "action"

    class ActionChanged(RecordChanged):
        """Fields of an action changed."""

        kind = "action"

    class ActionRemoved(RecordRemoved):
        """An action was removed."""

        kind = "action"

    class RiskAdded(RecordAdded):
        """A risk to an initiative was recorded, with its mitigation."""

        kind = "risk"

    class RiskChanged(RecordChanged):
        """Fields of a risk changed."""

        kind = "risk"

    class RiskRemoved(RecordRemoved):
        """A risk was removed."""

        kind = "risk"

    class IndicatorRated(Event):
        """A Share of Heart indicator was rated for a quarter."""

        quarter: Quarter
        indicator: str
        rating: int
        rubric_version: int

        section: ClassVar[Section | None] = Section.HEALTH

        def apply(self, plan: AccountPlan) -> None:
            plan.ratings.append(
                Rating(
                    quarter=self.quarter,
                    indicator=self.indicator,
                    rating=self.rating,
                    actor=self.actor,
                    recorded_at=self.timestamp,
                    reason=self.reason,
                    plan_version=self.originator_version,
                )
            )

    class Reviewed(Event):
        """The plan was reviewed, on its monthly cadence or after an event."""

        reviewed_on: date
        summary: str | None

        def apply(self, plan: AccountPlan) -> None:
            plan.reviews.append(
                {
                    "reviewed_on": self.reviewed_on,
                    "summary": self.summary,
                    "actor": self.actor,
                    "recorded_at": self.timestamp,
                }
            )

    class HandedOver(Event):
        """The plan was handed over from one owner to another."""

        previous_owner: str
        new_owner: str
        notes: str | None

        def apply(self, plan: AccountPlan) -> None:
            plan.owner = self.new_owner
            plan.handovers.append(
                {
                    "previous_owner": self.previous_owner,
                    "new_owner": self.new_owner,
                    "notes": self.notes,
                    "actor": self.actor,
                    "recorded_at": self.timestamp,
                }
            )

    class Archived(Event):
        """The plan was archived; it stays readable but takes no edits."""

        def apply(self, plan: AccountPlan) -> None:
            plan.status = PlanStatus.ARCHIVED

    class Restored(Event):
        """An archived plan was brought back into use."""

        def apply(self, plan: AccountPlan) -> None:
            plan.status = PlanStatus.ACTIVE

    # Commands.

    @classmethod
    def open(
        cls, *, partner: str, owner: str, ctx: Context, plan_id: UUID | None = None
    ) -> AccountPlan:
        """Opens a plan for ``partner`` owned by ``owner``."""
        partner = cast(
            str,
            SECTION_FIELDS_BY_NAME[Section.PROFILE]["company_name"].clean(
                partner, path="partner"
            ),
        )
        if not partner:
            raise ValidationError("partner", "The partner's name is required.")
        return cls._create(
            cls.Opened,
            id=plan_id or uuid4(),
            partner=partner,
            owner=_clean_owner(owner, "owner"),
            timestamp=ctx.recorded_at,
            **ctx.as_event_fields(),
        )

    def edit_section(
        self, section: Section | str, values: Mapping[str, Any], *, ctx: Context
    ) -> None:
        """Sets fields of one section; None clears a field."""
        section = parse_section(section)
        self._check_active()
        fields = SECTION_FIELDS_BY_NAME[section]
        cleaned = clean_values(fields, values, complete=False, prefix="values.")
        if section is Section.PROFILE and cleaned.get("company_name", "") is None:
            raise ValidationError(
                "values.company_name", "The partner's name cannot be cleared."
            )
        current = self.sections[section.value]
        changes = {k: v for k, v in cleaned.items() if current.get(k) != v}
        if changes:
            self._trigger(self.SectionEdited, ctx, edited=section, values=changes)

    def add_record(
        self,
        kind: str,
        values: Mapping[str, Any],
        *,
        ctx: Context,
        record_id: str | None = None,
    ) -> str:
        """Adds a child record of ``kind`` and returns its id."""
        spec = record_kind(kind)
        self._check_active()
        cleaned = clean_values(
            spec.fields_by_name, values, complete=True, prefix="values."
        )
        cleaned = {k: v for k, v in cleaned.items() if v is not None}
        self._check_references(spec, cleaned)
        if spec.name == "initiative":
            self._check_initiative_room(cleaned["quarter"], exclude=None)
        record_id = record_id or str(uuid4())
        plain, personal = _split_personal(spec, cleaned, record_id)
        self._trigger(
            _record_event(spec, "added"),
            ctx,
            record_id=record_id,
            values=plain,
            personal=personal,
        )
        return record_id

    def change_record(
        self, kind: str, record_id: str, values: Mapping[str, Any], *, ctx: Context
    ) -> None:
        """Changes fields of a child record; None clears an optional field."""
        spec = record_kind(kind)
        self._check_active()
        record = self.record(spec.name, record_id)
        cleaned = clean_values(
            spec.fields_by_name, values, complete=False, prefix="values."
        )
        for name, value in cleaned.items():
            if value is None and spec.fields_by_name[name].required:
                raise ValidationError(f"values.{name}", f"{name} cannot be cleared.")
        self._check_references(spec, cleaned)
        shown = self.record_fields(spec.name, record_id)
        changes = {k: v for k, v in cleaned.items() if shown.get(k) != v}
        if not changes:
            return
        existing_personal = record.get("personal")
        if (
            isinstance(existing_personal, Personal)
            and existing_personal.erased
            and set(changes) & spec.personal_fields
        ):
            raise ConflictError(
                "This stakeholder's personal data was erased and cannot be set again."
            )
        if spec.name == "initiative" and ("quarter" in changes or "status" in changes):
            merged = {**shown, **changes}
            if (
                merged.get("status", InitiativeStatus.PLANNED)
                in OPEN_INITIATIVE_STATUSES
            ):
                self._check_initiative_room(merged["quarter"], exclude=record_id)
        plain, personal = _split_personal(spec, changes, record_id)
        self._trigger(
            _record_event(spec, "changed"),
            ctx,
            record_id=record_id,
            values=plain,
            personal=personal,
        )

    def remove_record(self, kind: str, record_id: str, *, ctx: Context) -> None:
        """Removes a child record (an initiative with its actions and risks)."""
        spec = record_kind(kind)
        self._check_active()
        self.record(spec.name, record_id)
        for other in RECORD_KINDS.values():
            for field_spec in other.fields:
                if field_spec.reference != spec.name or other.name in (
                    "action",
                    "risk",
                ):
                    continue
                for key, record in self.records[other.name].items():
                    if record.get(field_spec.name) == record_id:
                        raise ConflictError(
                            f"The {spec.name} {record_id!r} is referenced by "
                            f"{other.name} {key!r}; change or remove that first."
                        )
        self._trigger(_record_event(spec, "removed"), ctx, record_id=record_id)

    def erase_stakeholder(self, record_id: str, *, ctx: Context) -> None:
        """Records that a stakeholder's personal data is erased (archived or not)."""
        record = self.record("stakeholder", record_id)
        personal = record.get("personal")
        if isinstance(personal, Personal) and personal.erased:
            return
        self._trigger(self.StakeholderErased, ctx, record_id=record_id)

    def rate(
        self,
        quarter: Quarter,
        ratings: Mapping[str, Any],
        *,
        rubric: Rubric,
        ctx: Context,
        calendar: FiscalCalendar = DEFAULT_CALENDAR,
    ) -> None:
        """Rates indicators for ``quarter``; all of them are stored or none."""
        self._check_active()
        if not isinstance(ratings, Mapping) or not ratings:
            raise ValidationError("ratings", "Give at least one indicator rating.")
        now = self._next_timestamp(ctx)
        if quarter > calendar.quarter_of(now):
            raise ValidationError(
                "quarter",
                f"{quarter} has not started yet; rate the current or a past quarter.",
            )
        for key, value in ratings.items():
            if key not in rubric.keys:
                accepted = ", ".join(rubric.keys)
                raise ValidationError(
                    f"ratings.{key}",
                    f"Unknown indicator {key!r} for {quarter}; accepted: {accepted}.",
                )
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not RATING_MIN <= value <= RATING_MAX
            ):
                raise ValidationError(
                    f"ratings.{key}",
                    f"A rating is a whole number {RATING_MIN} to {RATING_MAX}, "
                    f"not {value!r}.",
                )
        in_force = {r.indicator: r.rating for r in self.ratings if r.quarter == quarter}
        for key in rubric.keys:
            if key in ratings and in_force.get(key) != ratings[key]:
                self._trigger(
                    self.IndicatorRated,
                    ctx,
                    quarter=quarter,
                    indicator=key,
                    rating=ratings[key],
                    rubric_version=rubric.version,
                )

    def review(self, *, reviewed_on: date, summary: str | None, ctx: Context) -> None:
        """Records a review of the plan."""
        self._check_active()
        if not isinstance(reviewed_on, date) or isinstance(reviewed_on, datetime):
            raise ValidationError("reviewed_on", f"{reviewed_on!r} is not a date.")
        if reviewed_on > self._next_timestamp(ctx).date():
            raise ValidationError(
                "reviewed_on", f"{reviewed_on} is in the future; record reviews held."
            )
        summary = _clean_note(summary, "summary")
        self._trigger(self.Reviewed, ctx, reviewed_on=reviewed_on, summary=summary)

    def hand_over(self, *, new_owner: str, notes: str | None, ctx: Context) -> None:
        """Hands the plan to ``new_owner``; handing it to its owner changes nothing."""
        self._check_active()
        new_owner = _clean_owner(new_owner, "new_owner")
        notes = _clean_note(notes, "notes")
        if new_owner == self.owner:
            return
        self._trigger(
            self.HandedOver,
            ctx,
            previous_owner=self.owner,
            new_owner=new_owner,
            notes=notes,
        )

    def archive(self, *, ctx: Context) -> None:
        """Archives the plan; archiving an archived plan changes nothing."""
        if self.status is PlanStatus.ACTIVE:
            self._trigger(self.Archived, ctx)

    def restore(self, *, ctx: Context) -> None:
        """Brings an archived plan back into use."""
        if self.status is PlanStatus.ARCHIVED:
            self._trigger(self.Restored, ctx)

    # Queries.

    def record(self, kind: str, record_id: str) -> dict[str, Any]:
        """Returns the stored record, or raises NotFoundError."""
        try:
            return self.records[kind][record_id]
        except KeyError:
            raise NotFoundError(f"The plan has no {kind} {record_id!r}.") from None

    def record_fields(self, kind: str, record_id: str) -> dict[str, Any]:
        """Returns a record's fields with its personal data merged in."""
        return flatten_record(RECORD_KINDS[kind], self.record(kind, record_id))

    def ratings_for(self, quarter: Quarter) -> list[Rating]:
        """Returns the ratings recorded for ``quarter``, oldest first."""
        return [r for r in self.ratings if r.quarter == quarter]

    # Helpers.

    def _trigger(self, event_class: type[Any], ctx: Context, **values: Any) -> None:
        self.trigger_event(
            event_class,
            timestamp=self._next_timestamp(ctx),
            **ctx.as_event_fields(),
            **values,
        )

    def _next_timestamp(self, ctx: Context) -> datetime:
        # Recorded times never go backwards within a plan, so the version
        # recorded at or before an instant is always a prefix of the stream.
        now = ctx.recorded_at or datetime.now(UTC)
        return max(now, self.modified_on)

    def _check_active(self) -> None:
        if self.status is PlanStatus.ARCHIVED:
            raise ConflictError("The plan is archived; restore it before editing.")

    def _check_references(self, spec: RecordKind, values: Mapping[str, Any]) -> None:
        for field_spec in spec.fields:
            target = field_spec.reference
            value = values.get(field_spec.name)
            if target and value is not None and value not in self.records[target]:
                raise ValidationError(
                    f"values.{field_spec.name}",
                    f"The plan has no {target} {value!r}.",
                )

    def _check_initiative_room(self, quarter: Quarter, *, exclude: str | None) -> None:
        open_ones = [
            key
            for key, record in self.records["initiative"].items()
            if key != exclude
            and record["quarter"] == quarter
            and record.get("status", InitiativeStatus.PLANNED)
            in OPEN_INITIATIVE_STATUSES
        ]
        if len(open_ones) >= MAX_INITIATIVES_PER_QUARTER:
            raise ConflictError(
                f"{quarter} already has {len(open_ones)} open initiatives; "
                f"a quarter holds at most {MAX_INITIATIVES_PER_QUARTER}."
            )


_RECORD_EVENTS: dict[tuple[str, str], type[Any]] = {}


def _record_event(spec: RecordKind, change: str) -> type[Any]:
    """Returns the event class for adding, changing or removing a record kind."""
    if not _RECORD_EVENTS:
        for value in vars(AccountPlan).values():
            if not isinstance(value, type) or "kind" not in vars(value):
                continue
            if issubclass(value, AccountPlan.RecordAdded):
                _RECORD_EVENTS[value.kind, "added"] = value
            elif issubclass(value, AccountPlan.RecordChanged):
                _RECORD_EVENTS[value.kind, "changed"] = value
            elif issubclass(value, AccountPlan.RecordRemoved):
                _RECORD_EVENTS[value.kind, "removed"] = value
    return _RECORD_EVENTS[spec.name, change]


def _split_personal(
    spec: RecordKind, values: Mapping[str, Any], record_id: str
) -> tuple[dict[str, Any], Personal | None]:
    plain = {k: v for k, v in values.items() if k not in spec.personal_fields}
    personal = {k: v for k, v in values.items() if k in spec.personal_fields}
    return plain, Personal(record_id, personal) if personal else None


def _merge_personal(existing: Any, change: Personal) -> Personal:
    if change.data is None or (isinstance(existing, Personal) and existing.erased):
        return Personal(change.subject, None)
    merged = dict(existing.data or {}) if isinstance(existing, Personal) else {}
    for name, value in change.data.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return Personal(change.subject, merged)


ERASED = "[erased]"


def flatten_record(spec: RecordKind, record: Mapping[str, Any]) -> dict[str, Any]:
    """Returns a record's fields with personal ones shown, or marked as erased."""
    shown = {k: v for k, v in record.items() if k != "personal"}
    personal = record.get("personal")
    if isinstance(personal, Personal):
        if personal.erased:
            shown.update({name: ERASED for name in sorted(spec.personal_fields)})
        else:
            shown.update(personal.data or {})
    return shown


RUBRIC_REGISTER_ID = uuid5(NAMESPACE_URL, "soh-es:rubric-register")


class RubricRegister(Aggregate):
    """The register of adopted scoring rubrics; there is one per store."""

    def __init__(self) -> None:
        self.adopted: list[Rubric] = []

    class Event(Aggregate.Event):
        """Base of rubric events, with the same metadata as plan events."""

        actor: str
        reason: str | None
        source: Source
        correlation_id: str

    class Started(Event, Aggregate.Created):
        """The register was started (before its first adoption)."""

    class RubricAdopted(Event):
        """A new rubric version was adopted from a quarter on."""

        rubric: dict[str, Any]

        def apply(self, register: RubricRegister) -> None:
            register.adopted.append(Rubric.from_data(self.rubric))

    @classmethod
    def start(cls, *, ctx: Context) -> RubricRegister:
        """Starts the store's register."""
        return cls._create(
            cls.Started,
            id=RUBRIC_REGISTER_ID,
            timestamp=ctx.recorded_at,
            **ctx.as_event_fields(),
        )

    def schedule(self) -> RubricSchedule:
        """Returns the rubrics in force over time."""
        return RubricSchedule(self.adopted)

    def adopt(
        self,
        rubric: Rubric,
        *,
        ctx: Context,
        calendar: FiscalCalendar = DEFAULT_CALENDAR,
    ) -> Rubric:
        """Adopts ``rubric`` from its first quarter on; past quarters keep theirs.

        The version number is assigned here and the adopted rubric returned.
        """
        if rubric.effective_from is None:
            raise ValidationError(
                "effective_from", "Say from which quarter it applies."
            )
        now = max(ctx.recorded_at or datetime.now(UTC), self.modified_on)
        current = calendar.quarter_of(now)
        latest = self.schedule().latest
        if rubric.effective_from < current or (
            latest.effective_from and rubric.effective_from < latest.effective_from
        ):
            raise ValidationError(
                "effective_from",
                f"{rubric.effective_from} is in the past; a rubric applies from the "
                f"current quarter ({current}) or a later one.",
            )
        adopted = Rubric(
            version=latest.version + 1,
            indicators=rubric.indicators,
            bands=rubric.bands,
            trajectory_threshold=rubric.trajectory_threshold,
            effective_from=rubric.effective_from,
        )
        adopted.check()
        self.trigger_event(
            self.RubricAdopted,
            timestamp=now,
            rubric=adopted.as_data(),
            **ctx.as_event_fields(),
        )
        return adopted

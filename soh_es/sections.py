"""The seven sections of an account plan and the child records they hold.

Each section and each kind of child record is described here once, as data:
its fields, their types and their limits. The plan aggregate validates
commands against these descriptions and the API derives its schemas from them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import Enum
from typing import Any

from soh_es.errors import ValidationError
from soh_es.quarters import Quarter

MAX_TEXT = 2000
MAX_NAME = 200
MAX_LIST = 50


class Section(Enum):
    """The seven sections of an account plan."""

    PROFILE = "profile"
    GOALS = "goals"
    ROLES = "roles"
    MARKET_DEMAND = "market_demand"
    PIPELINE = "pipeline"
    HEALTH = "health"
    INITIATIVES = "initiatives"


class PartnershipStatus(Enum):
    """Where the partnership stands."""

    PROSPECT = "prospect"
    ACTIVE = "active"
    STRATEGIC = "strategic"
    AT_RISK = "at_risk"
    DORMANT = "dormant"


class Level(Enum):
    """How much weight a stakeholder or a risk carries."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class DecisionRole(Enum):
    """The part a stakeholder plays in the partner's decisions."""

    DECISION_MAKER = "decision_maker"
    INFLUENCER = "influencer"
    CHAMPION = "champion"
    GATEKEEPER = "gatekeeper"
    USER = "user"


class GoalLevel(Enum):
    """The level of the partner's organisation a goal belongs to."""

    CORPORATE = "corporate"
    BUSINESS_UNIT = "business_unit"
    STAKEHOLDER = "stakeholder"


class Party(Enum):
    """Who owns or delivers something: us, the partner, or both."""

    OURS = "ours"
    PARTNER = "partner"
    JOINT = "joint"


class OpportunityKind(Enum):
    """The kind of pipeline item."""

    DEAL = "deal"
    PROSPECT = "prospect"
    STRATEGIC = "strategic"


class OpportunityStage(Enum):
    """The stage of a pipeline item; won and lost items are closed."""

    IDENTIFIED = "identified"
    QUALIFIED = "qualified"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"
    WON = "won"
    LOST = "lost"


CLOSED_STAGES = frozenset({OpportunityStage.WON, OpportunityStage.LOST})


class InitiativeStatus(Enum):
    """The progress of a strategic initiative."""

    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


OPEN_INITIATIVE_STATUSES = frozenset(
    {InitiativeStatus.PLANNED, InitiativeStatus.IN_PROGRESS}
)


class ActionStatus(Enum):
    """Whether an action is still to do."""

    OPEN = "open"
    DONE = "done"
    DROPPED = "dropped"


ENUMS: tuple[type[Enum], ...] = (
    Section,
    PartnershipStatus,
    Level,
    DecisionRole,
    GoalLevel,
    Party,
    OpportunityKind,
    OpportunityStage,
    InitiativeStatus,
    ActionStatus,
)


@dataclass(frozen=True)
class Field:
    """One field of a section or a child record.

    ``kind`` is one of text, texts (a list of short texts), choice, date,
    money, percent or rating (1 to 5); ``reference`` names the record kind a
    text field points at; quarter fields hold a Quarter; ``personal`` marks
    data about a person, stored encrypted under that person's key.
    """

    name: str
    kind: str
    required: bool = False
    choices: type[Enum] | None = None
    max_length: int = MAX_TEXT
    reference: str | None = None
    personal: bool = False

    def clean(self, value: Any, *, path: str) -> Any:
        """Returns ``value`` in its domain type, or raises ValidationError."""
        if value is None:
            if self.required:
                raise ValidationError(path, f"{self.name} is required.")
            return None
        cleaner: Callable[[Field, Any, str], Any] = _CLEANERS[self.kind]
        return cleaner(self, value, path)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean_text(spec: Field, value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(path, f"Expected text, got {value!r}.")
    value = value.strip()
    if _CONTROL.search(value):
        raise ValidationError(
            path, "Text may not hold control characters other than tab and newline."
        )
    if spec.required and not value:
        raise ValidationError(path, f"{spec.name} must not be empty.")
    if len(value) > spec.max_length:
        raise ValidationError(
            path, f"Text is {len(value)} characters; at most {spec.max_length}."
        )
    return value


def _clean_texts(spec: Field, value: Any, path: str) -> list[str]:
    if not isinstance(value, list | tuple):
        raise ValidationError(path, f"Expected a list of texts, got {value!r}.")
    if len(value) > MAX_LIST:
        raise ValidationError(
            path, f"The list has {len(value)} items; at most {MAX_LIST}."
        )
    item = Field(spec.name, "text", required=True, max_length=MAX_NAME)
    return [_clean_text(item, v, f"{path}.{i}") for i, v in enumerate(value)]


def _clean_choice(spec: Field, value: Any, path: str) -> Enum:
    assert spec.choices is not None
    if isinstance(value, spec.choices):
        return value
    try:
        return spec.choices(value)
    except ValueError:
        accepted = ", ".join(repr(c.value) for c in spec.choices)
        raise ValidationError(path, f"{value!r} is not one of {accepted}.") from None


def _clean_date(spec: Field, value: Any, path: str) -> date:
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValidationError(path, f"{value!r} is not a date; write it as 2026-06-30.")


def _to_decimal(value: Any, path: str) -> Decimal:
    if isinstance(value, bool):
        raise ValidationError(path, f"{value!r} is not a number.")
    try:
        number = Decimal(str(value)) if isinstance(value, int | float | str) else value
    except InvalidOperation:
        number = None
    if not isinstance(number, Decimal) or not number.is_finite():
        raise ValidationError(path, f"{value!r} is not a number.")
    return number


def _clean_money(spec: Field, value: Any, path: str) -> Decimal:
    number = _to_decimal(value, path)
    if number < 0:
        raise ValidationError(path, f"An amount cannot be negative, got {value!r}.")
    if number >= Decimal("1e15"):
        raise ValidationError(path, f"{value!r} is too large an amount.")
    return number.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def _clean_percent(spec: Field, value: Any, path: str) -> Decimal:
    number = _to_decimal(value, path)
    if not 0 <= number <= 100:
        raise ValidationError(path, f"A percentage is 0 to 100, got {value!r}.")
    return number.quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)


def _clean_rating(spec: Field, value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise ValidationError(
            path, f"A rating is a whole number 1 to 5, not {value!r}."
        )
    return value


def _clean_quarter(spec: Field, value: Any, path: str) -> Quarter:
    if isinstance(value, Quarter):
        return value
    return Quarter.parse(value, field=path)


_CLEANERS: dict[str, Callable[[Field, Any, str], Any]] = {
    "text": _clean_text,
    "texts": _clean_texts,
    "choice": _clean_choice,
    "date": _clean_date,
    "money": _clean_money,
    "percent": _clean_percent,
    "rating": _clean_rating,
    "quarter": _clean_quarter,
}


def _text(name: str, **options: Any) -> Field:
    return Field(name, "text", **options)


@dataclass(frozen=True)
class RecordKind:
    """A kind of child record: its name, section, event names and fields."""

    name: str
    plural: str
    section: Section
    event_prefix: str
    fields: tuple[Field, ...]
    added_verb: str = "Added"
    removed_verb: str = "Removed"
    fields_by_name: Mapping[str, Field] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields_by_name", {f.name: f for f in self.fields})

    @property
    def personal_fields(self) -> frozenset[str]:
        """The names of the fields that hold personal data."""
        return frozenset(f.name for f in self.fields if f.personal)


SECTION_FIELDS: dict[Section, tuple[Field, ...]] = {
    Section.PROFILE: (
        _text("company_name", max_length=MAX_NAME),
        Field("locations", "texts"),
        _text("size", max_length=MAX_NAME),
        Field("partnership_status", "choice", choices=PartnershipStatus),
        Field("partner_since", "date"),
        Field("market_segments", "texts"),
        _text("customer_base"),
        _text("competitive_positioning"),
        Field("market_share", "percent"),
    ),
    Section.GOALS: (_text("summary"),),
    Section.ROLES: (
        _text("communication_protocol"),
        _text("escalation_path"),
        _text("review_mechanism"),
        _text("review_cadence", max_length=MAX_NAME),
    ),
    Section.MARKET_DEMAND: (
        Field("market_size", "money"),
        Field("market_growth", "percent"),
        _text("competitive_landscape"),
        Field("emerging_opportunities", "texts"),
        Field("threats", "texts"),
    ),
    Section.PIPELINE: (_text("summary"),),
    Section.HEALTH: (
        Field("partner_satisfaction", "rating"),
        Field("engagement", "rating"),
        Field("mindshare", "percent"),
        Field("recent_wins", "texts"),
        Field("challenges", "texts"),
    ),
    Section.INITIATIVES: (_text("summary"),),
}

RECORD_KINDS: dict[str, RecordKind] = {
    kind.name: kind
    for kind in (
        RecordKind(
            "stakeholder",
            "stakeholders",
            Section.PROFILE,
            "Stakeholder",
            (
                _text("name", required=True, max_length=MAX_NAME, personal=True),
                _text("email", max_length=MAX_NAME, personal=True),
                _text("phone", max_length=50, personal=True),
                _text("notes", personal=True),
                _text("title", max_length=MAX_NAME),
                Field("decision_role", "choice", choices=DecisionRole),
                Field("influence", "choice", choices=Level),
                Field("relationship_strength", "rating"),
            ),
        ),
        RecordKind(
            "goal",
            "goals",
            Section.GOALS,
            "Goal",
            (
                Field("level", "choice", required=True, choices=GoalLevel),
                _text("description", required=True),
                _text("partnership_contribution"),
                _text("success_metric"),
                _text("stakeholder_id", reference="stakeholder"),
            ),
        ),
        RecordKind(
            "responsibility",
            "responsibilities",
            Section.ROLES,
            "Responsibility",
            (
                Field("party", "choice", required=True, choices=Party),
                _text("description", required=True),
                _text("owner", max_length=MAX_NAME),
            ),
        ),
        RecordKind(
            "segment",
            "segments",
            Section.MARKET_DEMAND,
            "Segment",
            (
                _text("name", required=True, max_length=MAX_NAME),
                _text("needs"),
            ),
        ),
        RecordKind(
            "barrier",
            "barriers",
            Section.MARKET_DEMAND,
            "Barrier",
            (
                _text("description", required=True),
                _text("strategy"),
            ),
        ),
        RecordKind(
            "opportunity",
            "opportunities",
            Section.PIPELINE,
            "Opportunity",
            (
                _text("name", required=True, max_length=MAX_NAME),
                Field("kind", "choice", required=True, choices=OpportunityKind),
                Field("stage", "choice", required=True, choices=OpportunityStage),
                Field("value", "money"),
                Field("probability", "percent"),
                Field("close_date", "date"),
                _text("resources_required"),
                _text("support_provided"),
            ),
        ),
        RecordKind(
            "initiative",
            "initiatives",
            Section.INITIATIVES,
            "Initiative",
            (
                _text("title", required=True, max_length=MAX_NAME),
                Field("quarter", "quarter", required=True),
                _text("objective"),
                Field("owner_party", "choice", choices=Party),
                _text("owner", max_length=MAX_NAME),
                Field("deadline", "date"),
                _text("resources"),
                Field("budget", "money"),
                Field("success_metrics", "texts"),
                Field("status", "choice", choices=InitiativeStatus),
            ),
            added_verb="Launched",
        ),
        RecordKind(
            "action",
            "actions",
            Section.INITIATIVES,
            "Action",
            (
                _text("initiative_id", required=True, reference="initiative"),
                _text("description", required=True),
                _text("owner", max_length=MAX_NAME),
                Field("due_date", "date"),
                Field("status", "choice", choices=ActionStatus),
            ),
        ),
        RecordKind(
            "risk",
            "risks",
            Section.INITIATIVES,
            "Risk",
            (
                _text("initiative_id", required=True, reference="initiative"),
                _text("description", required=True),
                Field("likelihood", "choice", choices=Level),
                Field("impact", "choice", choices=Level),
                _text("mitigation"),
            ),
        ),
    )
}

SECTION_FIELDS_BY_NAME: dict[Section, dict[str, Field]] = {
    section: {f.name: f for f in fields} for section, fields in SECTION_FIELDS.items()
}


def parse_section(name: Any) -> Section:
    """Returns the section called ``name``, or raises ValidationError."""
    try:
        return name if isinstance(name, Section) else Section(name)
    except ValueError:
        accepted = ", ".join(repr(s.value) for s in Section)
        raise ValidationError(
            "section", f"{name!r} is not one of {accepted}."
        ) from None


def record_kind(name: str) -> RecordKind:
    """Returns the record kind called ``name``, or raises ValidationError."""
    try:
        return RECORD_KINDS[name]
    except KeyError:
        accepted = ", ".join(repr(k) for k in RECORD_KINDS)
        raise ValidationError("kind", f"{name!r} is not one of {accepted}.") from None


def clean_values(
    fields: Mapping[str, Field],
    values: Mapping[str, Any],
    *,
    complete: bool,
    prefix: str = "",
) -> dict[str, Any]:
    """Returns ``values`` validated and converted to their domain types.

    With ``complete`` (a new record) every required field must be present;
    otherwise only the given fields are checked, and a required field can be
    changed but not cleared.
    """
    if not isinstance(values, Mapping):
        raise ValidationError(prefix.rstrip(".") or "values", "Expected an object.")
    unknown = sorted(set(values) - set(fields))
    if unknown:
        accepted = ", ".join(sorted(fields))
        raise ValidationError(
            prefix + unknown[0], f"Unknown field {unknown[0]!r}; accepted: {accepted}."
        )
    cleaned = {
        name: fields[name].clean(value, path=prefix + name)
        for name, value in values.items()
    }
    if complete:
        for spec in fields.values():
            if spec.required and spec.name not in cleaned:
                raise ValidationError(prefix + spec.name, f"{spec.name} is required.")
    return cleaned

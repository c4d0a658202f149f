"""The application service: commands and time-travelling reads of account plans."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    JSONTranscoder,
    OperationalError,
    Transcoding,
)
from eventsourcing.utils import get_topic

from soh_es.domain import (
    RUBRIC_REGISTER_ID,
    AccountPlan,
    Context,
    PlanStatus,
    RubricRegister,
    Source,
)
from soh_es.errors import (
    ConflictError,
    NotFoundError,
    StaleVersionError,
    StoreUnavailableError,
    ValidationError,
)
from soh_es.history import Change, changes_of
from soh_es.integrity import (
    ChainReport,
    export_line,
    read_line,
    verify_export,
    verify_stream,
)
from soh_es.persistence import (
    DateAsISO,
    EnumAsValue,
    EventIndex,
    KeyedStore,
    QuarterAsText,
    from_micros,
)
from soh_es.personal import PersonalAsCiphertext
from soh_es.quarters import Point, Quarter
from soh_es.rubric import Rubric, RubricSchedule
from soh_es.scorecard import QuarterScore, Rating, score_quarters
from soh_es.sections import ENUMS
from soh_es.settings import Settings
from soh_es.views import diff_documents, plan_document

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = 50
SNAPSHOT_INTERVAL = 100
EXPORT_BATCH = 500


@dataclass(frozen=True)
class Outcome:
    """What a command did: the plan's version after it, and whether it changed.

    ``position`` is the notification id of the last event written, which a
    read model can be waited on to reach; None when nothing was written.
    """

    plan_id: UUID
    version: int
    changed: bool
    position: int | None = None
    record_id: str | None = None


@dataclass(frozen=True)
class HistoryPage:
    """A page of a plan's history and the number of matching changes."""

    changes: list[Change]
    total: int


class RatingAsData(Transcoding):
    """Stores a recorded rating (kept in plan snapshots) as an object."""

    type = Rating
    name = "rating"

    def encode(self, obj: Rating) -> dict[str, Any]:
        return {
            "quarter": obj.quarter,
            "indicator": obj.indicator,
            "rating": obj.rating,
            "actor": obj.actor,
            "recorded_at": obj.recorded_at,
            "reason": obj.reason,
            "plan_version": obj.plan_version,
        }

    def decode(self, data: dict[str, Any]) -> Rating:
        return Rating(**data)


class RubricAsData(Transcoding):
    """Stores a rubric (kept in register snapshots) as its plain data."""

    type = Rubric
    name = "rubric"

    def encode(self, obj: Rubric) -> dict[str, Any]:
        return obj.as_data()

    def decode(self, data: dict[str, Any]) -> Rubric:
        return Rubric.from_data(data)


class AccountPlans(Application[UUID]):
    """Takes commands for account plans and reads them at any point in time."""

    name = "soh"
    snapshotting_intervals = {AccountPlan: SNAPSHOT_INTERVAL}

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.calendar = self.settings.calendar
        # Plans are cached between commands and fast-forwarded with the events
        # other processes wrote since, so a command rarely replays anything.
        env = {**self.settings.event_store_env(), "AGGREGATE_CACHE_MAXSIZE": "1000"}
        with _store_errors():
            super().__init__(env=env)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        transcoder.register(QuarterAsText())
        enums: tuple[type[Enum], ...] = (*ENUMS, Source, PlanStatus)
        for enum in enums:
            transcoder.register(EnumAsValue(enum))
        transcoder.register(RatingAsData())
        transcoder.register(RubricAsData())
        self.keys = cast(KeyedStore, self.factory).key_store()
        transcoder.register(PersonalAsCiphertext(self.keys))

    @property
    def index(self) -> EventIndex:
        """The event index the store keeps beside the events."""
        return cast(EventIndex, self.recorder)

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """Saves pending events with their recorded times, for the event index."""
        kwargs.setdefault(
            "recorded",
            {
                (event.originator_id, event.originator_version): event.timestamp
                for obj in objs
                if obj is not None
                for event in getattr(obj, "pending_events", ())
            },
        )
        return super().save(*objs, **kwargs)

    # Commands.

    def open_plan(
        self,
        partner: str,
        *,
        ctx: Context,
        owner: str | None = None,
        plan_id: UUID | None = None,
    ) -> Outcome:
        """Opens a plan for ``partner``, owned by ``owner`` or else by the actor."""
        plan = AccountPlan.open(
            partner=partner, owner=owner or ctx.actor, ctx=ctx, plan_id=plan_id
        )
        try:
            position = self._save(plan)
        except IntegrityError:
            raise ConflictError(f"A plan with id {plan.id} already exists.") from None
        return Outcome(plan.id, plan.version, True, position)

    def edit_section(
        self,
        plan_id: UUID,
        section: str,
        values: Mapping[str, Any],
        *,
        ctx: Context,
        expected_version: int | None = None,
    ) -> Outcome:
        """Sets fields of one of the seven sections."""
        return self._change(
            plan_id,
            lambda plan: plan.edit_section(section, values, ctx=ctx),
            expected_version,
        )

    def add_record(
        self,
        plan_id: UUID,
        kind: str,
        values: Mapping[str, Any],
        *,
        ctx: Context,
        expected_version: int | None = None,
    ) -> Outcome:
        """Adds a child record (stakeholder, goal, opportunity, initiative, ...)."""
        return self._change(
            plan_id,
            lambda plan: plan.add_record(kind, values, ctx=ctx),
            expected_version,
        )

    def change_record(
        self,
        plan_id: UUID,
        kind: str,
        record_id: str,
        values: Mapping[str, Any],
        *,
        ctx: Context,
        expected_version: int | None = None,
    ) -> Outcome:
        """Changes fields of a child record."""
        return self._change(
            plan_id,
            lambda plan: plan.change_record(kind, record_id, values, ctx=ctx),
            expected_version,
        )

    def remove_record(
        self,
        plan_id: UUID,
        kind: str,
        record_id: str,
        *,
        ctx: Context,
        expected_version: int | None = None,
    ) -> Outcome:
        """Removes a child record."""
        return self._change(
            plan_id,
            lambda plan: plan.remove_record(kind, record_id, ctx=ctx),
            expected_version,
        )

    def rate_indicators(
        self,
        plan_id: UUID,
        quarter: Quarter | str,
        ratings: Mapping[str, Any],
        *,
        ctx: Context,
        expected_version: int | None = None,
    ) -> Outcome:
        """Rates indicators for a quarter, all in one transaction."""
        if not isinstance(quarter, Quarter):
            quarter = Quarter.parse(quarter)
        rubric = self.rubric_schedule().for_quarter(quarter)
        return self._change(
            plan_id,
            lambda plan: plan.rate(
                quarter, ratings, rubric=rubric, ctx=ctx, calendar=self.calendar
            ),
            expected_version,
        )

    def record_review(
        self,
        plan_id: UUID,
        *,
        reviewed_on: date,
        summary: str | None = None,
        ctx: Context,
        expected_version: int | None = None,
    ) -> Outcome:
        """Records a review of the plan."""
        return self._change(
            plan_id,
            lambda plan: plan.review(reviewed_on=reviewed_on, summary=summary, ctx=ctx),
            expected_version,
        )

    def hand_over(
        self,
        plan_id: UUID,
        *,
        new_owner: str,
        notes: str | None = None,
        ctx: Context,
        expected_version: int | None = None,
    ) -> Outcome:
        """Hands the plan over to a new owner."""
        return self._change(
            plan_id,
            lambda plan: plan.hand_over(new_owner=new_owner, notes=notes, ctx=ctx),
            expected_version,
        )

    def archive_plan(
        self, plan_id: UUID, *, ctx: Context, expected_version: int | None = None
    ) -> Outcome:
        """Archives the plan."""
        return self._change(
            plan_id, lambda plan: plan.archive(ctx=ctx), expected_version
        )

    def restore_plan(
        self, plan_id: UUID, *, ctx: Context, expected_version: int | None = None
    ) -> Outcome:
        """Restores an archived plan."""
        return self._change(
            plan_id, lambda plan: plan.restore(ctx=ctx), expected_version
        )

    def erase_stakeholder(
        self,
        plan_id: UUID,
        record_id: str,
        *,
        ctx: Context,
        expected_version: int | None = None,
    ) -> Outcome:
        """Erases a stakeholder's personal data: records it, then destroys the key.

        Erasing again after a failure destroys the key without a second event.
        """
        outcome = self._change(
            plan_id,
            lambda plan: plan.erase_stakeholder(record_id, ctx=ctx),
            expected_version,
        )
        with _store_errors():
            self.keys.destroy(record_id)
        return outcome

    def adopt_rubric(self, rubric: Rubric, *, ctx: Context) -> Rubric:
        """Adopts a new rubric version from its first quarter on."""
        for attempt in range(MAX_ATTEMPTS):
            with _store_errors():
                try:
                    register: RubricRegister = self.repository.get(RUBRIC_REGISTER_ID)
                except AggregateNotFoundError:
                    register = RubricRegister.start(ctx=ctx)
                adopted = register.adopt(rubric, ctx=ctx, calendar=self.calendar)
                try:
                    self._save(register)
                except IntegrityError:
                    _back_off(attempt)
                    continue
            return adopted
        raise ConflictError("The rubric register is busy; try again.")

    # Reads.

    def rubric_schedule(self, at: datetime | None = None) -> RubricSchedule:
        """Returns the rubrics in force, as the register stood at ``at``."""
        with _store_errors():
            version = None
            if at is not None:
                version = self.index.version_at(RUBRIC_REGISTER_ID, at)
                if version is None:
                    return RubricSchedule()
            try:
                register: RubricRegister = self.repository.get(
                    RUBRIC_REGISTER_ID, version=version
                )
            except AggregateNotFoundError:
                return RubricSchedule()
        return register.schedule()

    def plan_ids(self) -> list[UUID]:
        """Returns the ids of every plan, oldest first."""
        with _store_errors():
            return self.index.originator_ids(get_topic(AccountPlan.Opened))

    def version_at(self, plan_id: UUID, point: Point) -> int:
        """Returns the plan's version at ``point``, or raises NotFoundError."""
        with _store_errors():
            head = self.index.head_version(plan_id)
            if head is None:
                raise NotFoundError(f"There is no plan {plan_id}.")
            if point.version is not None:
                if point.version > head:
                    raise NotFoundError(
                        f"Plan {plan_id} has {head} versions; there is no {point}."
                    )
                return point.version
            cutoff = point.cutoff(self.calendar)
            assert cutoff is not None
            version = self.index.version_at(plan_id, cutoff)
        if version is None:
            raise NotFoundError(f"Plan {plan_id} was not open yet at {point}.")
        return int(version)

    def get_plan(self, plan_id: UUID, at: Point | None = None) -> AccountPlan:
        """Returns the plan now, or as it stood at ``at``."""
        version = None if at is None else self.version_at(plan_id, at)
        with _store_errors():
            try:
                plan: AccountPlan = self.repository.get(plan_id, version=version)
            except AggregateNotFoundError:
                raise NotFoundError(f"There is no plan {plan_id}.") from None
        if not isinstance(plan, AccountPlan):
            raise NotFoundError(f"There is no plan {plan_id}.")
        return plan

    def plan_document(self, plan_id: UUID, at: Point | None = None) -> dict[str, Any]:
        """Returns the plan as plain data, now or as it stood at ``at``."""
        plan = self.get_plan(plan_id, at)
        schedule = self.rubric_schedule(None if at is None else plan.modified_on)
        return plan_document(plan, schedule)

    def scores(self, plan_id: UUID, at: Point | None = None) -> list[QuarterScore]:
        """Returns the quarterly scores, as they were known at ``at`` if given."""
        return self.scored_plan(plan_id, at)[1]

    def scored_plan(
        self, plan_id: UUID, at: Point | None = None
    ) -> tuple[AccountPlan, list[QuarterScore]]:
        """Returns the plan and its quarterly scores, now or as known at ``at``.

        Now, the rubrics in force are today's; at a point, those adopted by
        the time of the plan's last change before it.
        """
        plan = self.get_plan(plan_id, at)
        schedule = self.rubric_schedule(None if at is None else plan.modified_on)
        return plan, score_quarters(plan.ratings, schedule)

    def history(
        self,
        plan_id: UUID,
        *,
        section: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> HistoryPage:
        """Returns the plan's changes, oldest first, filtered and paginated.

        ``since`` is inclusive and ``until`` exclusive.
        """
        if offset < 0 or not 1 <= limit <= 500:
            raise ValidationError("limit", "limit is 1 to 500 and offset at least 0.")
        self.get_plan(plan_id, None)
        with _store_errors():
            events = self.events.get(plan_id)
            matching = [
                change
                for change in changes_of(events)  # type: ignore[arg-type]
                if (section is None or change.section == section)
                and (actor is None or change.actor == actor)
                and (since is None or change.recorded_at >= since)
                and (until is None or change.recorded_at < until)
            ]
        return HistoryPage(matching[offset : offset + limit], len(matching))

    def diff(self, plan_id: UUID, before: Point, after: Point) -> list[dict[str, Any]]:
        """Returns the field-level differences between two points of a plan."""
        first = self.plan_document(plan_id, before)
        second = self.plan_document(plan_id, after)
        return diff_documents(first, second)

    def stream_ids(self, plan_id: UUID | None = None) -> list[UUID]:
        """Returns ``plan_id`` alone, or every plan and the rubric register."""
        if plan_id is not None:
            self.version_at(plan_id, Point(version=1))
            return [plan_id]
        with _store_errors():
            register = self.index.head_version(RUBRIC_REGISTER_ID)
        return self.plan_ids() + ([RUBRIC_REGISTER_ID] if register else [])

    def verify(self, plan_id: UUID | None = None) -> list[ChainReport]:
        """Walks the hash chain of one plan, or of every stream, and reports."""
        reports = []
        for stream_id in self.stream_ids(plan_id):
            with _store_errors():
                events = self.recorder.select_events(stream_id)
                index = self.index.index_of(stream_id)
            reports.append(verify_stream(stream_id, events, index))
        return reports

    def export(self, plan_id: UUID | None = None) -> Iterator[str]:
        """Yields one plan's events, or the whole log in order, as JSON lines."""
        if plan_id is not None:
            self.stream_ids(plan_id)
            with _store_errors():
                events = self.recorder.select_events(plan_id)
                index = self.index.index_of(plan_id)
            yield from map(export_line, events, index)
            return
        position = 0
        while True:
            with _store_errors():
                rows = self.index.export_rows(position, EXPORT_BATCH)
            if not rows:
                return
            for _, event, row in rows:
                yield export_line(event, row)
            position = rows[-1][0]

    def import_lines(
        self, lines: Iterable[str], *, keys: Mapping[str, str | None] | None = None
    ) -> int:
        """Loads an export into this empty store and returns the events loaded.

        Ids, versions, actors, reasons and recorded times are kept as they
        were, and every chain is checked before anything is written. ``keys``
        (from :meth:`export_keys`) are stored first; without them personal
        data arrives erased.
        """
        lines = [line for line in lines if line.strip()]
        broken = [r for r in verify_export(lines) if not r.intact]
        if broken:
            raise ValidationError(
                "file",
                f"Stream {broken[0].originator_id} does not verify: "
                f"{broken[0].problem}.",
            )
        with _store_errors():
            if self.recorder.max_notification_id():
                raise ConflictError("Import into an empty store only.")
            if keys:
                self._import_keys(keys)
            for start in range(0, len(lines), EXPORT_BATCH):
                batch = [
                    read_line(line) for line in lines[start : start + EXPORT_BATCH]
                ]
                self.recorder.insert_events(
                    [event for event, _ in batch],
                    recorded={
                        (row.originator_id, row.originator_version): from_micros(
                            row.recorded_us
                        )
                        for _, row in batch
                    },
                )
            for plan_id in self.plan_ids():
                head = self.index.head_version(plan_id) or 0
                for version in range(SNAPSHOT_INTERVAL, head + 1, SNAPSHOT_INTERVAL):
                    self.take_snapshot(plan_id, version=version)
        logger.info("Imported %s events", len(lines))
        return len(lines)

    def export_keys(self) -> dict[str, str | None]:
        """Returns every stakeholder key in hex (None once destroyed), for backups."""
        with _store_errors():
            keys = self.keys.all_keys()
        return {subject: None if k is None else k.hex() for subject, k in keys.items()}

    def _import_keys(self, keys: Mapping[str, str | None]) -> None:
        try:
            parsed = {
                str(subject): None if k is None else bytes.fromhex(k)
                for subject, k in keys.items()
            }
        except (ValueError, TypeError, AttributeError):
            raise ValidationError("keys", "Keys are hex strings or null.") from None
        with _store_errors():
            self.keys.restore_keys(parsed)

    # Helpers.

    def _save(self, *aggregates: AccountPlan | RubricRegister) -> int | None:
        with _store_errors():
            recordings = self.save(*aggregates)
        return recordings[-1].notification.id if recordings else None

    def _change(
        self,
        plan_id: UUID,
        command: Callable[[AccountPlan], T],
        expected_version: int | None,
    ) -> Outcome:
        """Runs ``command`` on the current plan and saves what it triggered.

        With an expected version a stale plan is refused. Without one, a save
        that loses a race to another writer is retried on the fresh plan, so
        no concurrent change is lost.
        """
        for attempt in range(MAX_ATTEMPTS):
            plan = self.get_plan(plan_id)
            if expected_version is not None and plan.version != expected_version:
                raise StaleVersionError(expected_version, plan.version)
            result = command(plan)
            record_id = result if isinstance(result, str) else None
            if not plan.pending_events:
                return Outcome(plan_id, plan.version, False, None, record_id)
            pending = list(plan.pending_events)
            try:
                position = self._save(plan)
            except IntegrityError:
                if self._were_written(pending):
                    return Outcome(plan_id, plan.version, True, None, record_id)
                if expected_version is not None:
                    raise StaleVersionError(
                        expected_version, self.get_plan(plan_id).version
                    ) from None
                logger.debug("Retrying a change of plan %s after a race", plan_id)
                _back_off(attempt)
                continue
            return Outcome(plan_id, plan.version, True, position, record_id)
        raise ConflictError(
            f"Plan {plan_id} is changing too fast to apply this change; try again."
        )

    def _were_written(self, pending: list[Any]) -> bool:
        """Tells whether a save that reported a conflict had in fact been stored.

        A commit whose acknowledgement was lost is retried by the store and
        then conflicts with itself; recorded time and correlation id tell the
        events apart from any other writer's.
        """
        first, last = pending[0].originator_version, pending[-1].originator_version
        with _store_errors():
            stored = list(
                self.events.get(pending[0].originator_id, gt=first - 1, lte=last)
            )

        def key(event: Any) -> tuple[Any, ...]:
            return (type(event), event.timestamp, event.correlation_id, event.actor)

        return [key(e) for e in stored] == [key(e) for e in pending]


def _back_off(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))


@contextmanager
def _store_errors() -> Iterator[None]:
    """Translates a lost or refused database connection into StoreUnavailableError."""
    try:
        yield
    except (OperationalError, InterfaceError) as error:
        raise StoreUnavailableError(
            f"The database cannot be reached: {error}"
        ) from error

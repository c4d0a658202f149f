"""The projection runner: reads the notification log in order and feeds projections.

Each projection keeps its position in ``soh_projection_positions``. A batch of
events is written in one transaction that first moves the position from the
value the batch started at to the batch's last notification id; if another
runner moved it meanwhile, nothing is written. So each event is applied
exactly once, across crashes, restarts and competing runners.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    InterfaceError,
    Notification,
    OperationalError,
    ProgrammingError,
)
from eventsourcing.utils import get_topic
from psycopg import sql

from projections.store import POSITIONS_TABLE, ReadCursor, ReadStore, Table
from soh_es.application import AccountPlans
from soh_es.domain import AccountPlan, RubricRegister
from soh_es.history import Change, describe
from soh_es.rubric import RubricSchedule

logger = logging.getLogger(__name__)

NEXT = "_next"
DEFAULT_BATCH_SIZE = 500
DEFAULT_CACHE_SIZE = 1000

PlanLoader = Callable[[UUID, int], AccountPlan]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ProjectedEvent:
    """One decoded event and its place in the log.

    ``change`` tells a plan event as field-level changes, given the plan
    before it; it is None for events of the rubric register.
    """

    position: int
    event: Any
    plan_id: UUID | None
    change: Change | None


@dataclass(frozen=True)
class Batch:
    """The events a projection applies in one transaction, and their outcome.

    ``plans`` holds the state after the batch of every plan the decoded
    batch touched; ``schedule`` is the rubric schedule after the batch.
    """

    events: Sequence[ProjectedEvent]
    plans: Mapping[UUID, AccountPlan]
    schedule: RubricSchedule
    load_plan: PlanLoader

    @property
    def last_position(self) -> int:
        """The notification id of the batch's last event."""
        return self.events[-1].position

    def touched_plans(self) -> dict[UUID, AccountPlan]:
        """Returns the final state of each plan these events changed, in order."""
        return {
            e.plan_id: self.plans[e.plan_id]
            for e in self.events
            if e.plan_id is not None
        }

    def rubric_changed(self) -> bool:
        """Whether the rubric register changed in these events."""
        return any(isinstance(e.event, RubricRegister.Event) for e in self.events)

    def plans_at(self, versions: Mapping[UUID, int]) -> dict[UUID, AccountPlan]:
        """Returns plans at the given versions, unless the batch has newer ones."""
        return {
            plan_id: self.plans.get(plan_id) or self.load_plan(plan_id, version)
            for plan_id, version in versions.items()
        }


class Projection(ABC):
    """A read model kept from the event log.

    A projection owns tables whose names start with ``soh_read_``. It can
    be built aside under a suffix (``_next``), then swapped in.
    """

    name: ClassVar[str]
    tables: ClassVar[tuple[Table, ...]]

    def __init__(self, *, suffix: str = "") -> None:
        self.suffix = suffix

    @property
    def position_name(self) -> str:
        """The name of this projection's row in the positions table."""
        return self.name + self.suffix

    def aside(self) -> Projection:
        """Returns the same projection writing to its ``_next`` tables."""
        return type(self)(suffix=NEXT)

    def table_name(self, table: Table) -> str:
        """Returns the name ``table`` has for this projection."""
        return table.name + self.suffix

    @abstractmethod
    def apply(self, cursor: ReadCursor, store: ReadStore, batch: Batch) -> None:
        """Writes the rows that ``batch`` changes, inside the given transaction."""


@dataclass(frozen=True)
class ProjectionStatus:
    """Where a projection stands: its position, the log's head, and the lag."""

    name: str
    position: int
    head: int
    lag: int


@dataclass(frozen=True)
class RebuildReport:
    """How long a rebuild took for how many events."""

    names: tuple[str, ...]
    events: int
    seconds: float
    events_per_second: float


class _PositionMoved(Exception):
    """Another runner applied this batch first; nothing was written."""


class _PlanCache:
    """Plans by id, least recently used evicted first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._plans: OrderedDict[UUID, AccountPlan] = OrderedDict()

    def get(self, plan_id: UUID) -> AccountPlan | None:
        plan = self._plans.get(plan_id)
        if plan is not None:
            self._plans.move_to_end(plan_id)
        return plan

    def put(self, plan: AccountPlan) -> None:
        self._plans[plan.id] = plan
        self._plans.move_to_end(plan.id)
        while len(self._plans) > self.size:
            self._plans.popitem(last=False)


@dataclass
class _Decoded:
    events: list[ProjectedEvent] = field(default_factory=list)
    plans: dict[UUID, AccountPlan] = field(default_factory=dict)


class _Decoder:
    """Decodes notifications once and tells each plan event with its prior plan."""

    register_topics = (
        get_topic(RubricRegister.Started),
        get_topic(RubricRegister.RubricAdopted),
    )

    def __init__(self, app: AccountPlans, cache_size: int) -> None:
        self.app = app
        self.cache = _PlanCache(cache_size)
        self.position: int | None = None
        self.register: RubricRegister | None = None

    @property
    def schedule(self) -> RubricSchedule:
        """The rubric schedule as of the decoder's position."""
        return RubricSchedule() if self.register is None else self.register.schedule()

    def load_plan(self, plan_id: UUID, version: int) -> AccountPlan:
        """Returns the plan at ``version``, from the cache when it is there."""
        cached = self.cache.get(plan_id)
        if cached is not None and cached.version == version:
            return cached
        plan: AccountPlan = self.app.repository.get(plan_id, version=version)
        self.cache.put(plan)
        return plan

    def decode(self, after: int, notifications: Sequence[Notification]) -> _Decoded:
        """Decodes the notifications that follow position ``after``."""
        if self.position != after:
            self._load_register(after)
        decoded = _Decoded()
        mapper = self.app.mapper
        for notification in notifications:
            event = mapper.to_domain_event(notification)
            if isinstance(event, AccountPlan.Event):
                plan_id = event.originator_id
                before = self._plan_before(event)
                # The history module tells one event given the plan before
                # it; its only public entry replays a whole stream.
                change = describe(event, before)
                plan = event.mutate(before)
                assert plan is not None
                self.cache.put(plan)
                decoded.plans[plan_id] = plan
                decoded.events.append(
                    ProjectedEvent(notification.id, event, plan_id, change)
                )
            else:
                if isinstance(event, RubricRegister.Event):
                    self.register = event.mutate(self.register)
                decoded.events.append(
                    ProjectedEvent(notification.id, event, None, None)
                )
            self.position = notification.id
        return decoded

    def _plan_before(self, event: AccountPlan.Event) -> AccountPlan | None:
        if event.originator_version == 1:
            return None
        return self.load_plan(event.originator_id, event.originator_version - 1)

    def _load_register(self, position: int) -> None:
        """Replays the rubric register's few events up to ``position``."""
        register: RubricRegister | None = None
        recorder = self.app.recorder
        start: int | None = None
        while position > 0:
            found = recorder.select_notifications(
                start,
                100,
                stop=position,
                topics=self.register_topics,
                inclusive_of_start=False,
            )
            for notification in found:
                event = self.app.mapper.to_domain_event(notification)
                if isinstance(event, RubricRegister.Event):
                    register = event.mutate(register)
            if len(found) < 100:
                break
            start = found[-1].id
        self.register = register
        self.position = position


class ProjectionRunner:
    """Feeds projections from the application's notification log, in batches."""

    def __init__(
        self,
        app: AccountPlans,
        projections: Iterable[Projection],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"A batch holds at least one event, not {batch_size!r}.")
        self.app = app
        self.projections = list(projections)
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.store = ReadStore.of(app)
        self._decoder = _Decoder(app, cache_size)
        self._ready = False

    # Setup.

    def setup(self) -> None:
        """Creates the read tables and position rows that are missing."""
        if self._ready:
            return
        with self.store.transaction(commit=True) as cursor:
            self.store.lock_schema(cursor)
            # Positions before read tables: the order a batch locks them in,
            # so a setup and a running batch cannot deadlock.
            self.store.create_positions_table(cursor)
            for projection in self.projections:
                cursor.execute(
                    sql.SQL(
                        "INSERT INTO {} (name, position) VALUES (%s, 0) "
                        "ON CONFLICT (name) DO NOTHING"
                    ).format(self.store.table(POSITIONS_TABLE)),
                    (projection.position_name,),
                )
            for projection in self.projections:
                for table in projection.tables:
                    self.store.create_table(cursor, table)
        self._ready = True

    def projection(self, name: str) -> Projection:
        """Returns the projection called ``name``, or raises KeyError."""
        for projection in self.projections:
            if projection.name == name:
                return projection
        names = ", ".join(p.name for p in self.projections)
        raise KeyError(f"There is no projection {name!r}; there are: {names}.")

    # Running.

    def run_once(self) -> int:
        """Applies the next batch of events; returns how many events it read."""
        self.setup()
        return self._step(self.projections, self._decoder)

    def catch_up(self) -> int:
        """Applies batches until the projections reach the head; returns events."""
        total = 0
        while applied := self.run_once():
            total += applied
        return total

    def run_forever(
        self,
        stop: threading.Event,
        *,
        poll_interval: float = 1.0,
        wake: threading.Event | None = None,
    ) -> None:
        """Applies batches until ``stop`` is set, waiting between empty polls.

        On PostgreSQL an idle runner wakes as soon as events are written; on
        SQLite it wakes when ``wake`` is set (by a writer in this process).
        """
        self.setup()
        waiter = _Waiter(self.app, stop, poll_interval, wake)
        logger.info("Projection runner started: %s", self._names(self.projections))
        try:
            while not stop.is_set():
                try:
                    applied = self.run_once()
                except (OperationalError, InterfaceError):
                    # A lost connection: wait, then carry on from the
                    # positions, which the failed batch did not move.
                    logger.exception("Projecting failed; retrying")
                    stop.wait(poll_interval)
                    continue
                if not applied:
                    waiter.wait()
        finally:
            waiter.close()
            logger.info("Projection runner stopped")

    def start_in_background(self, *, poll_interval: float = 1.0) -> BackgroundRunner:
        """Runs the projections in a daemon thread of this process.

        Call the returned runner's ``wake`` after writing events, so an idle
        thread projects them at once instead of at its next poll.
        """
        return BackgroundRunner(self, poll_interval)

    def _step(self, projections: Sequence[Projection], decoder: _Decoder) -> int:
        started = time.perf_counter()
        positions = self._positions(p.position_name for p in projections)
        start = min(positions.values())
        notifications = self.app.recorder.select_notifications(
            start, self.batch_size, inclusive_of_start=False
        )
        if not notifications:
            return 0
        decoded = decoder.decode(start, notifications)
        last = notifications[-1].id
        for projection in projections:
            position = positions[projection.position_name]
            if position >= last:
                continue
            batch = Batch(
                [e for e in decoded.events if e.position > position],
                decoded.plans,
                decoder.schedule,
                decoder.load_plan,
            )
            try:
                self._apply(projection, position, last, batch)
            except _PositionMoved:
                logger.warning(
                    "Projection %s moved past %s elsewhere; batch skipped",
                    projection.position_name,
                    position,
                )
        logger.info(
            "Projected %s events (%s to %s) in %.3fs",
            len(notifications),
            notifications[0].id,
            last,
            time.perf_counter() - started,
        )
        return len(notifications)

    def _apply(
        self, projection: Projection, position: int, last: int, batch: Batch
    ) -> None:
        with self.store.transaction(commit=True) as cursor:
            # Claim the batch first: this also takes the write lock early.
            cursor.execute(
                sql.SQL(
                    "UPDATE {} SET position = %s WHERE name = %s AND position = %s"
                ).format(self.store.table(POSITIONS_TABLE)),
                (last, projection.position_name, position),
            )
            if cursor.rowcount != 1:
                raise _PositionMoved(projection.position_name)
            if batch.events:
                projection.apply(cursor, self.store, batch)

    # Rebuilding.

    def rebuild(
        self, name: str | None = None, *, progress: Progress | None = None
    ) -> RebuildReport:
        """Rebuilds one projection, or all, from the first event.

        The new rows are written to ``_next`` tables while reads go on; one
        transaction then replaces the old tables and the position.
        ``progress`` is called after each batch with (events, head).
        """
        self.setup()
        chosen = self.projections if name is None else [self.projection(name)]
        aside = [projection.aside() for projection in chosen]
        started = time.perf_counter()
        with self.store.transaction(commit=True) as cursor:
            self.store.lock_schema(cursor)
            for projection in aside:
                for table in projection.tables:
                    self.store.drop_table(cursor, table, suffix=NEXT)
                    self.store.create_table(cursor, table, suffix=NEXT)
                cursor.execute(
                    self.store.upsert(POSITIONS_TABLE, ("name", "position"), ("name",)),
                    (projection.position_name, 0),
                )

        decoder = _Decoder(self.app, self.cache_size)
        head = self.app.recorder.max_notification_id() or 0
        events = 0
        while applied := self._step(aside, decoder):
            events += applied
            head = max(head, decoder.position or 0)
            if progress is not None:
                progress(events, head)

        self._swap(chosen)
        seconds = time.perf_counter() - started
        report = RebuildReport(
            tuple(p.name for p in chosen),
            events,
            seconds,
            events / seconds if seconds > 0 else 0.0,
        )
        logger.info(
            "Rebuilt %s from %s events in %.2fs (%.0f events/s)",
            self._names(chosen),
            report.events,
            report.seconds,
            report.events_per_second,
        )
        return report

    def _swap(self, projections: Sequence[Projection]) -> None:
        positions = self.store.table(POSITIONS_TABLE)
        with self.store.transaction(commit=True) as cursor:
            self.store.lock_schema(cursor)
            for projection in projections:
                # The position row first, in the order runners lock things.
                cursor.execute(
                    sql.SQL(
                        "UPDATE {} SET position = ("
                        "SELECT position FROM {} WHERE name = %s) WHERE name = %s"
                    ).format(positions, positions),
                    (projection.name + NEXT, projection.name),
                )
                cursor.execute(
                    sql.SQL("DELETE FROM {} WHERE name = %s").format(positions),
                    (projection.name + NEXT,),
                )
                for table in projection.tables:
                    self.store.replace_table(cursor, table, suffix=NEXT)

    # Status.

    def status(self) -> list[ProjectionStatus]:
        """Returns each projection's position, the log's head, and the lag.

        A projection that never ran is at position 0.
        """
        head = self.app.recorder.max_notification_id() or 0
        positions = self._positions(p.name for p in self.projections)
        return [
            ProjectionStatus(name, position, head, max(0, head - position))
            for name, position in positions.items()
        ]

    def wait_for(
        self,
        position: int | None,
        timeout: float,
        *,
        names: Iterable[str] | None = None,
        interval: float = 0.02,
    ) -> bool:
        """Waits until the projections (or those named) reached ``position``.

        Returns whether they did within ``timeout`` seconds. A None position
        (a command that wrote nothing) is reached at once.
        """
        if position is None:
            return True
        chosen = [p.name for p in self.projections] if names is None else list(names)
        deadline = time.monotonic() + timeout
        while True:
            if min(self._positions(chosen).values()) >= position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(interval, remaining))

    def _positions(self, names: Iterable[str]) -> dict[str, int]:
        """Returns the positions of the projections named, 0 for those not set up.

        Reading never creates tables, so readers can ask before any runner ran.
        """
        wanted = list(names)
        found: dict[str, int] = {}
        try:
            with self.store.transaction(commit=False) as cursor:
                cursor.execute(
                    sql.SQL("SELECT name, position FROM {}").format(
                        self.store.table(POSITIONS_TABLE)
                    )
                )
                found = {r["name"]: int(r["position"]) for r in cursor.fetchall()}
        except (ProgrammingError, OperationalError):
            if self._ready:
                raise
        return {name: found.get(name, 0) for name in wanted}

    @staticmethod
    def _names(projections: Iterable[Projection]) -> str:
        return ", ".join(p.name for p in projections)


class _Waiter:
    """Waits for new events: LISTEN on PostgreSQL, a plain sleep on SQLite."""

    def __init__(
        self,
        app: AccountPlans,
        stop: threading.Event,
        poll_interval: float,
        wake: threading.Event | None = None,
    ) -> None:
        self.stop = stop
        self.wake = wake
        self.poll_interval = poll_interval
        self._connection: Any = None
        self._context: Any = None
        channel = getattr(app.recorder, "channel_name", None)
        datastore = app.factory.datastore  # type: ignore[attr-defined]
        if channel is not None and hasattr(datastore, "get_connection"):
            self._context = datastore.get_connection()
            self._connection = self._context.__enter__()
            self._connection.execute(
                sql.SQL("LISTEN {}").format(sql.Identifier(channel))
            )

    def wait(self) -> None:
        """Returns when events may have arrived, or after the poll interval."""
        if self._connection is None:
            if self.wake is None:
                self.stop.wait(self.poll_interval)
            else:
                # Cleared only after waking: a write during the batch that
                # just ended leaves it set, so that write is not missed.
                self.wake.wait(self.poll_interval)
                self.wake.clear()
            return
        # Listen in short spells, so that a stop request is seen promptly.
        deadline = time.monotonic() + self.poll_interval
        try:
            while not self.stop.is_set():
                spell = min(0.25, deadline - time.monotonic())
                if spell <= 0:
                    return
                for _ in self._connection.notifies(timeout=spell, stop_after=1):
                    return
        except psycopg.Error as error:
            # The database went away (a restart, say): from now on this
            # runner polls at its interval instead of listening.
            logger.warning("Stopped listening for new events: %s", error)
            self._give_back()

    def close(self) -> None:
        """Gives the listening connection back."""
        if self._context is not None:
            with contextlib.suppress(psycopg.Error):
                self._connection.execute(sql.SQL("UNLISTEN *"))
            self._give_back()

    def _give_back(self) -> None:
        # The pool discards a broken connection it is given back.
        with contextlib.suppress(psycopg.Error, OperationalError, InterfaceError):
            self._context.__exit__(None, None, None)
        self._context = None
        self._connection = None


class BackgroundRunner:
    """A projection runner in a daemon thread, stopped with :meth:`stop`."""

    def __init__(self, runner: ProjectionRunner, poll_interval: float) -> None:
        self.runner = runner
        self.stop_event = threading.Event()
        self.wake_event = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(poll_interval,), name="projections", daemon=True
        )
        self.thread.start()

    def _run(self, poll_interval: float) -> None:
        try:
            self.runner.run_forever(
                self.stop_event, poll_interval=poll_interval, wake=self.wake_event
            )
        except Exception:
            logger.exception("The projection runner thread failed")

    def wake(self) -> None:
        """Tells an idle thread that events were written."""
        self.wake_event.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Asks the thread to stop and waits for it."""
        self.stop_event.set()
        self.wake_event.set()
        self.thread.join(timeout)

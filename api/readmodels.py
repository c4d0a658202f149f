"""The read side as the API uses it: read store, waits for a position, operations.

Reads that come from read models accept ``after``, the ``Soh-Position`` a
write answered with: the read waits until the projections it reads from have
reached that position, up to ``SOH_READ_WAIT_SECONDS``, or answers 503
``/problems/projection-lagging`` with Retry-After.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Iterable

from api.errors import ProblemError
from projections import default_projections
from projections.runner import (
    BackgroundRunner,
    ProjectionRunner,
    ProjectionStatus,
    RebuildReport,
)
from projections.store import ReadStore
from soh_es.application import AccountPlans
from soh_es.settings import Settings

logger = logging.getLogger(__name__)

POSITION_HEADER = "Soh-Position"
IN_PROCESS_POLL_SECONDS = 1.0
LAGGING_RETRY_SECONDS = 2


class ReadModels:
    """The projections of one app: their store, status, waits and rebuilds.

    When asked, a runner thread keeps them in this process (the SQLite
    default); otherwise a separate worker does (``soh projections run``).
    """

    def __init__(
        self, plans: AccountPlans, settings: Settings, *, wait_seconds: float
    ) -> None:
        self.plans = plans
        self.settings = settings
        self.wait_seconds = wait_seconds
        self.runner = ProjectionRunner(plans, default_projections())
        self.background: BackgroundRunner | None = None
        self._rebuilding = threading.Lock()

    @property
    def store(self) -> ReadStore:
        """The store the read tables live in."""
        return self.runner.store

    @property
    def in_process(self) -> bool:
        """Whether a runner thread of this process keeps the read models."""
        return self.background is not None

    def setup(self) -> None:
        """Creates the read tables and positions that are missing."""
        self.runner.setup()

    def start_in_process(self) -> None:
        """Starts a runner thread; it is stopped by :meth:`stop` or at exit."""
        if self.background is not None:
            return
        # Its own runner, so the thread's decoder is not shared with requests;
        # the same application, so SQLite writers in this process take turns.
        worker = ProjectionRunner(self.plans, default_projections())
        self.background = worker.start_in_background(
            poll_interval=IN_PROCESS_POLL_SECONDS
        )
        self._stop_before_close()
        atexit.register(self.stop)
        logger.info("Projections run in this process")

    def stop(self) -> None:
        """Stops the runner thread of this process, if there is one."""
        background, self.background = self.background, None
        if background is None:
            return
        atexit.unregister(self.stop)
        background.stop()
        if background.thread.is_alive():
            logger.warning("The projection runner thread did not stop in time")

    def _stop_before_close(self) -> None:
        """Makes closing the application stop the thread first.

        A pooled connection closed while the thread uses it can crash the
        process, so whoever closes the application stops the thread first.
        """
        close = self.plans.close

        def stop_then_close() -> None:
            self.stop()
            close()

        self.plans.close = stop_then_close  # type: ignore[method-assign]

    def head(self) -> int:
        """The notification id of the last event in the log (0 when empty)."""
        return int(self.plans.recorder.max_notification_id() or 0)

    def written(self) -> None:
        """Wakes the runner thread, if any: events were just written."""
        if self.background is not None:
            self.background.wake()

    def wait_for(self, position: int | None, names: Iterable[str]) -> None:
        """Returns once the named projections reached ``position``, or raises 503."""
        if position is None:
            return
        chosen = list(names)
        if self.runner.wait_for(position, self.wait_seconds, names=chosen):
            return
        raise ProblemError(
            503,
            "projection-lagging",
            f"The read models have not reached position {position!r} within "
            f"{self.wait_seconds:g}s; try again shortly, or ask GET /projections "
            "how far they are.",
            headers={"Retry-After": str(LAGGING_RETRY_SECONDS)},
        )

    def status(self) -> list[ProjectionStatus]:
        """Each projection's position, the head of the log and the lag."""
        return self.runner.status()

    def rebuild(self, name: str | None) -> RebuildReport:
        """Rebuilds one projection or all, aside, then swaps them in.

        One rebuild at a time in this process; a second is refused with 409.
        """
        if name is not None:
            try:
                self.runner.projection(name)
            except KeyError as error:
                raise ProblemError(404, "not-found", str(error.args[0])) from None
        if not self._rebuilding.acquire(blocking=False):
            raise ProblemError(
                409, "conflict", "A rebuild is running already; try again later."
            )
        try:
            return self.runner.rebuild(name)
        finally:
            self._rebuilding.release()

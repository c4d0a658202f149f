"""Health, readiness, correlation ids and Prometheus metrics of the API.

``/healthz`` says the process answers; ``/readyz`` that the database answers
and the read models are at most ``SOH_READY_MAX_LAG`` events behind;
``/metrics`` serves request counts and latencies by route and status, the
events appended, and each projection's position and lag (read at scrape).

Under gunicorn each worker counts in files of ``PROMETHEUS_MULTIPROC_DIR``
(set by ``gunicorn.conf.py``) and a scrape of any worker sums them all.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import uuid4

from eventsourcing.persistence import InterfaceError, OperationalError, Recording
from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from api.auth import Access, access
from api.config import ObservabilitySettings
from api.errors import ProblemError
from projections import default_projections
from projections.runner import ProjectionRunner, ProjectionStatus
from soh_es.application import AccountPlans
from soh_es.errors import StoreUnavailableError

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID = 200
NOT_READY_RETRY_SECONDS = 5
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "unmatched"

_STORE_ERRORS = (OperationalError, InterfaceError, StoreUnavailableError)


class ObservedPlans(AccountPlans):
    """The plans application, telling its listeners of each save's events."""

    # The same name, hence the same tables, as the application it extends.
    name = AccountPlans.name

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.saved_listeners: list[Any] = []
        super().__init__(*args, **kwargs)

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """Saves as the plans application does, then tells the listeners."""
        recordings = super().save(*objs, **kwargs)
        if recordings:
            for listener in self.saved_listeners:
                listener(recordings)
        return recordings


def request_id(raw: str | None) -> str:
    """Returns the caller's request id if usable, otherwise a new one.

    A usable id is printable text of 1 to 200 characters, spaces trimmed.
    """
    text = (raw or "").strip()
    if 1 <= len(text) <= MAX_REQUEST_ID and text.isprintable():
        return text
    return uuid4().hex


def multiprocess_directory() -> str | None:
    """Returns where worker processes share their metrics, if they do.

    prometheus_client decides this from the same variable when it is first
    imported; ``gunicorn.conf.py`` sets it before any worker starts.
    """
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The counters and histograms the API updates as it answers."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.registry = registry
        self.requests = Counter(
            "soh_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.latency = Histogram(
            "soh_http_request_duration_seconds",
            "Time to answer HTTP requests, by method, route template and status.",
            ("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.events = Counter(
            "soh_events_appended",
            "Events appended to the log by this API, by event type.",
            ("event",),
            registry=registry,
        )

    def count_events(self, recordings: Sequence[Recording[Any]]) -> None:
        """Counts the events of one successful save."""
        for recording in recordings:
            self.events.labels(type(recording.domain_event).__qualname__).inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Counts one answered request and its duration."""
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)


class ProjectionCollector(Collector):
    """Reads each projection's position and lag when metrics are scraped."""

    def __init__(self, runner: ProjectionRunner) -> None:
        self.runner = runner

    def collect(self) -> Iterator[Metric]:
        """Yields the position, lag and log head gauges, or nothing if unknown."""
        try:
            statuses = self.runner.status()
        except _STORE_ERRORS as error:
            logger.warning("Projection status unavailable for metrics: %s", error)
            return
        position = GaugeMetricFamily(
            "soh_projection_position",
            "The last event each projection applied.",
            labels=["projection"],
        )
        lag = GaugeMetricFamily(
            "soh_projection_lag",
            "Events written but not yet applied by each projection.",
            labels=["projection"],
        )
        for status in statuses:
            position.add_metric([status.name], status.position)
            lag.add_metric([status.name], status.lag)
        head = max((status.head for status in statuses), default=0)
        yield position
        yield lag
        yield GaugeMetricFamily(
            "soh_event_log_head", "The position of the last event in the log.", head
        )


class Observability:
    """What one app observes: its plans, projections and (maybe) metrics."""

    def __init__(self, plans: AccountPlans, settings: ObservabilitySettings) -> None:
        self.plans = plans
        self.settings = settings
        self.runner = ProjectionRunner(plans, default_projections())
        self.collector = ProjectionCollector(self.runner)
        self.metrics: Metrics | None = None
        if settings.metrics:
            registry = None if multiprocess_directory() else CollectorRegistry()
            self.metrics = Metrics(registry)
            if registry is not None:
                registry.register(self.collector)

    def scrape(self) -> bytes:
        """Returns the metrics in Prometheus' text format."""
        assert self.metrics is not None
        registry = self.metrics.registry
        if registry is None:
            # Several workers: sum their files, then add the live gauges.
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            registry.register(self.collector)
        return generate_latest(registry)

    def readiness(self) -> list[ProjectionStatus]:
        """Returns the projection statuses, or raises 503 when not ready."""
        try:
            self.plans.recorder.max_notification_id()
            statuses = self.runner.status()
        except _STORE_ERRORS as error:
            logger.warning("Not ready: %s", error)
            raise ProblemError(
                503,
                "store-unavailable",
                "The database cannot be reached just now; try again shortly.",
                headers={"Retry-After": str(NOT_READY_RETRY_SECONDS)},
            ) from None
        behind = [s for s in statuses if s.lag > self.settings.ready_max_lag]
        if behind:
            worst = max(behind, key=lambda s: s.lag)
            raise ProblemError(
                503,
                "not-ready",
                f"The projection {worst.name!r} is {worst.lag} events behind the "
                f"log; at most {self.settings.ready_max_lag} (SOH_READY_MAX_LAG) "
                "are allowed. Is the projection worker running?",
                headers={"Retry-After": str(NOT_READY_RETRY_SECONDS)},
            )
        return statuses


def install_observability(
    app: Flask, plans: AccountPlans, settings: ObservabilitySettings
) -> Observability:
    """Adds the health, readiness and metrics routes and the request hooks.

    Call it before other request hooks are added, so that every request has
    its correlation id before anything can refuse it.
    """
    observed = Observability(plans, settings)
    app.extensions["soh_observability"] = observed
    if observed.metrics is not None and isinstance(plans, ObservedPlans):
        plans.saved_listeners.append(observed.metrics.count_events)
    app.before_request(_begin_request)
    app.after_request(_finish_request)
    app.register_blueprint(_blueprint(observed))
    return observed


def _blueprint(observed: Observability) -> Blueprint:
    blueprint = Blueprint("observability", __name__)

    @blueprint.get("/healthz")
    @access(Access.PUBLIC)
    def healthz() -> dict[str, str]:
        """The process is up and answering."""
        return {"status": "up"}

    @blueprint.get("/readyz")
    @access(Access.PUBLIC)
    def readyz() -> dict[str, Any]:
        """The database answers and the read models are close enough to the log."""
        statuses = observed.readiness()
        return {
            "status": "ready",
            "max_lag": observed.settings.ready_max_lag,
            "projections": [
                {"name": s.name, "position": s.position, "head": s.head, "lag": s.lag}
                for s in statuses
            ],
        }

    if observed.metrics is not None:

        @blueprint.get("/metrics")
        @access(Access.PUBLIC)
        def metrics() -> Response:
            """The Prometheus metrics of the API and the projections."""
            return Response(observed.scrape(), mimetype=CONTENT_TYPE_LATEST)

    return blueprint


def _begin_request() -> None:
    g.soh_request_id = request_id(request.headers.get(REQUEST_ID_HEADER))
    g.soh_request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("soh_request_id") or request_id(None)
    observed: Observability = current_app.extensions["soh_observability"]
    if observed.metrics is not None:
        started = g.get("soh_request_started") or time.perf_counter()
        rule = request.url_rule
        observed.metrics.observe(
            request.method,
            UNMATCHED_ROUTE if rule is None else rule.rule,
            response.status_code,
            time.perf_counter() - started,
        )
    return response

"""Helpers the views share: the services, the command context, ETags and points."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import flask_smorest
import marshmallow as ma
from flask import current_app, g, request
from webargs.flaskparser import FlaskParser

from api.auth import current_user
from api.errors import ProblemError
from api.readmodels import POSITION_HEADER, ReadModels
from projections.store import ReadStore
from soh_es.application import AccountPlans, Outcome
from soh_es.domain import Context, Source
from soh_es.identity import Identities
from soh_es.quarters import Point, Quarter, parse_instant

_VERSION_TAG = re.compile(r'^(?:W/)?"?(\d{1,9})"?$')
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_QUARTER = re.compile(r"^\d{4}-Q[1-4]$")


class StrictParser(FlaskParser):
    """Reads arguments and refuses unknown query parameters, as it does fields."""

    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": ma.RAISE,
        "querystring": ma.RAISE,
    }


class Blueprint(flask_smorest.Blueprint):
    """A flask-smorest blueprint whose views refuse unknown query parameters."""

    ARGUMENTS_PARSER = StrictParser()


@dataclass(frozen=True)
class Services:
    """What the views call: the plans application, identities and read models."""

    plans: AccountPlans
    identities: Identities
    read_models: ReadModels

    def close(self) -> None:
        """Stops the runner thread, if any, then closes the store."""
        self.read_models.stop()
        self.plans.close()


def services() -> Services:
    """Returns the services wired into the current app."""
    found: Services = current_app.extensions["soh"]
    return found


def plans() -> AccountPlans:
    """Returns the plans application of the current app."""
    return services().plans


def read_models() -> ReadModels:
    """Returns the read models of the current app."""
    return services().read_models


def read_store(after: int | None, *names: str) -> ReadStore:
    """Returns the read store once the named projections reached ``after``.

    Without ``after`` the read models are read as they are; with it, the
    read waits (bounded) or answers 503 projection-lagging.
    """
    models = read_models()
    models.wait_for(after, names)
    return models.store


def written(outcome: Outcome) -> dict[str, str]:
    """Returns the headers of a write's response: the plan's ETag and position.

    ``Soh-Position`` is the position of the last event the request wrote, or,
    when it changed nothing, the head of the log when it answered; either
    way a read with ``after`` set to it sees the request's effect.
    """
    models = read_models()
    position = outcome.position
    if position is None:
        position = models.head()
    else:
        models.written()
    return {**etag(outcome.version), POSITION_HEADER: str(position)}


def context(body: dict[str, Any] | None = None) -> Context:
    """Returns the command context: the caller, the reason and the request id."""
    reason = (body or {}).get("reason")
    options: dict[str, Any] = {}
    # The request's correlation id, from X-Request-ID or made at its start.
    if g.get("soh_request_id"):
        options["correlation_id"] = g.soh_request_id
    return Context(current_user().name, reason=reason, source=Source.API, **options)


def expected_version() -> int | None:
    """Returns the plan version named by If-Match, or None when there is none.

    ``*`` matches any version; a value that names no version can never match,
    so it is refused as stale.
    """
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    match = _VERSION_TAG.match(raw.strip())
    if match is None:
        raise ProblemError(
            412,
            "stale-version",
            f"If-Match {raw!r} names no plan version; send the ETag the plan "
            'was read with, as in If-Match: "7".',
        )
    return int(match.group(1))


def etag(version: int) -> dict[str, str]:
    """Returns the ETag header of a plan at ``version``."""
    return {"ETag": f'"{version}"'}


def point(text: str | None, *, field: str) -> Point | None:
    """Parses an optional point in time (version, quarter or instant)."""
    return None if text is None else Point.parse(text, field=field)


def bound(text: str | None, *, field: str, end: bool) -> datetime | None:
    """Parses a time-range bound: a quarter, a date or an instant.

    A quarter or a date covers its whole span: as a start it begins when the
    span begins, as an (exclusive) end it stops when the span ends.
    """
    if text is None:
        return None
    calendar = plans().calendar
    if _QUARTER.match(text):
        quarter = Quarter.parse(text, field=field)
        return calendar.end(quarter) if end else calendar.start(quarter)
    if _DATE.match(text):
        day = parse_instant(text, field=field).date()
        start = datetime.combine(day, time.min, tzinfo=UTC)
        return start + timedelta(days=1) if end else start
    return parse_instant(text, field=field)


# The documented answer of a read whose ``after`` the read models did not
# reach in time: 503 /problems/projection-lagging with Retry-After.
LAGGING = "SERVICE_UNAVAILABLE"

# The response header every write carries, as the OpenAPI document shows it.
POSITION_HEADERS = {
    POSITION_HEADER: {
        "description": "The position of the last event this request wrote (or "
        "the log's head when it changed nothing). Pass it as after=<position> "
        "to a read of the read models to see this write.",
        "schema": {"type": "integer", "minimum": 0},
    }
}

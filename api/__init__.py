"""The HTTP API: a Flask app factory that wires the plans application."""

from __future__ import annotations

import http
import logging
import time
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from api import (
    admin,
    audit,
    digest,
    docs,
    history,
    operations,
    plans,
    portfolio,
    records,
    rubrics,
    users,
)
from api.auth import authorise_request
from api.common import Services, services
from api.config import ApiSettings, ObservabilitySettings
from api.errors import PROBLEM_MEDIA_TYPE, ProblemError, register_error_handlers
from api.limits import WriteLimiter, check_page_size, limit_writes
from api.observability import ObservedPlans, install_observability
from api.readmodels import ReadModels
from api.schemas import ProblemSchema
from soh_es.identity import Identities
from soh_es.settings import Settings

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SohApi(Api):
    """flask-smorest's Api, answering and documenting errors as problems."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not 100 <= status < 200 and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "An error", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)

    def _register_error_handlers(self) -> None:
        register_error_handlers(self._app)


def create_app(
    settings: Settings | None = None,
    *,
    api_settings: ApiSettings | None = None,
    observability: ObservabilitySettings | None = None,
) -> Flask:
    """Returns the API app on the store the settings name (by default, the env)."""
    settings = settings or Settings.from_env()
    api_settings = api_settings or ApiSettings.from_env()
    observability = observability or ObservabilitySettings.from_env()
    app = Flask(__name__, static_folder=None)
    app.config.update(
        API_TITLE="soh-es account plans",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=api_settings.max_body_bytes,
        API_SPEC_OPTIONS={
            "info": {
                "description": "Account plans and Share of Heart scorecards for "
                "channel partners. Every request but this document and the API "
                "page needs a bearer token.",
            },
            "security": [{"bearerAuth": []}],
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}
            },
        },
    )

    application = ObservedPlans(settings)
    # First, so that every request has its correlation id before any
    # other hook can refuse it.
    install_observability(app, application, observability)
    identities = Identities.of(application)
    if settings.create_tables:
        identities.create_tables()
    read_models = ReadModels(
        application, settings, wait_seconds=api_settings.read_wait_seconds
    )
    if settings.create_tables:
        read_models.setup()
    if api_settings.runs_projections(settings):
        read_models.start_in_process()
    app.extensions["soh"] = Services(application, identities, read_models)
    limit = api_settings.write_rate_limit
    app.extensions["soh_limits"] = (
        None if limit is None else WriteLimiter(limit),
        api_settings.max_page_size,
    )

    api = SohApi(app)
    api.register_blueprint(plans.create_blueprint())
    api.register_blueprint(records.create_blueprint())
    api.register_blueprint(history.create_blueprint())
    api.register_blueprint(users.create_blueprint())
    api.register_blueprint(admin.create_blueprint())
    api.register_blueprint(audit.create_blueprint())
    api.register_blueprint(portfolio.create_blueprint())
    api.register_blueprint(digest.create_blueprint())
    api.register_blueprint(operations.create_blueprint())
    api.register_blueprint(rubrics.create_blueprint())
    app.register_blueprint(docs.create_blueprint())
    app.before_request(_start_request)
    app.after_request(_log_request)
    return app


def _start_request() -> None:
    g.soh_started = time.perf_counter()
    authorise_request(services().identities)
    limiter, max_page_size = current_app.extensions["soh_limits"]
    limit_writes(limiter)
    check_page_size(max_page_size)
    if request.method in BODY_METHODS and _has_body() and not request.is_json:
        raise ProblemError(
            400,
            "not-json",
            f"The body is {request.mimetype or 'untyped'!s}; send JSON with "
            "Content-Type: application/json.",
        )


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get(
        "Transfer-Encoding", ""
    )


def _log_request(response: Response) -> Response:
    started = g.get("soh_started")
    elapsed = 0.0 if started is None else (time.perf_counter() - started) * 1000
    actor = "-" if g.get("soh_user") is None else g.soh_user.name
    path = request.full_path.rstrip("?")
    correlation_id = g.get("soh_request_id", "-")
    logger.info(
        "%s %s %s %.1fms %s %s",
        request.method,
        path,
        response.status_code,
        elapsed,
        actor,
        correlation_id,
        extra={
            "method": request.method,
            "path": path,
            "status": response.status_code,
            "duration_ms": round(elapsed, 1),
            "actor": actor,
            "correlation_id": correlation_id,
        },
    )
    return response

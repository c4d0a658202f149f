"""The one error handler: every failure becomes an RFC 9457 problem document."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from soh_es.errors import (
    ConflictError,
    NotFoundError,
    SohError,
    StaleVersionError,
    StoreUnavailableError,
    ValidationError,
)

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 5

# The problem ``type`` of each HTTP status, when no finer type applies.
STATUS_TYPES = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    412: "stale-version",
    413: "body-too-large",
    415: "unsupported-media-type",
    422: "validation",
    503: "store-unavailable",
}

STATUS_MESSAGES = {
    401: "Send a bearer token in the Authorization header: Bearer <token>.",
    403: "Your token does not allow this request.",
    404: "There is nothing at this address.",
    405: "This address does not take that method.",
    413: "The request body is too large.",
}


class ProblemError(Exception):
    """Raised by the API layer to answer with a problem of a given type."""

    def __init__(
        self,
        status: int,
        problem: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.problem = problem
        self.detail = detail
        self.headers = dict(headers or {})


def problem_type(name: str) -> str:
    """Returns the stable ``type`` URI of a problem called ``name``."""
    return f"/problems/{name}"


def problem_response(
    status: int,
    name: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Returns a problem document response."""
    body: dict[str, Any] = {
        "type": problem_type(name),
        "title": _title(status),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register_error_handlers(app: Flask) -> None:
    """Answers every HTTP and domain error with a problem document."""
    app.register_error_handler(HTTPException, _http_problem)
    app.register_error_handler(SohError, _domain_problem)
    app.register_error_handler(ProblemError, _api_problem)


def _api_problem(error: ProblemError) -> Response:
    return problem_response(
        error.status, error.problem, error.detail, headers=error.headers
    )


def _domain_problem(error: SohError) -> Response:
    if isinstance(error, ValidationError):
        return problem_response(
            422,
            "validation",
            error.message,
            errors=[{"field": error.field, "message": error.message}],
        )
    if isinstance(error, NotFoundError):
        return problem_response(404, "not-found", str(error))
    if isinstance(error, StaleVersionError):
        return problem_response(
            412, "stale-version", str(error), headers={"ETag": f'"{error.actual}"'}
        )
    if isinstance(error, ConflictError):
        return problem_response(409, "conflict", str(error))
    if isinstance(error, StoreUnavailableError):
        logger.warning("Store unavailable: %s", error)
        return problem_response(
            503,
            "store-unavailable",
            "The database cannot be reached just now; try again shortly.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    logger.error("Unmapped domain error: %r", error)
    return problem_response(400, "bad-request", str(error))


def _http_problem(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if status == 422 and messages:
        errors = list(_field_errors(messages))
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem_response(
            422, "validation", f"The request is not valid: {detail}", errors=errors
        )
    if status == 400 and messages:
        return problem_response(
            400, "malformed-json", "The request body is not valid JSON."
        )
    if status >= 500:
        logger.error("Answered %s: %s", status, error)
        return problem_response(
            status, "internal", "The server failed to answer; the error is logged."
        )
    name = STATUS_TYPES.get(status, "bad-request")
    detail = (
        data.get("message")
        or STATUS_MESSAGES.get(status)
        or (error.description or _title(status))
    )
    headers = dict(data.get("headers") or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem_response(status, name, str(detail), headers=headers)


def _field_errors(messages: Any, path: str = "") -> Iterator[dict[str, str]]:
    """Flattens webargs' nested messages into dotted field paths."""
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            if not path and key in ("json", "query", "path", "headers", "form"):
                yield from _field_errors(value, "")
                continue
            if key in ("key", "value") and "." in path:
                # A dict field's entry (ratings.seeks_input) needs no suffix.
                yield from _field_errors(value, path)
                continue
            name = "body" if key == "_schema" else str(key)
            yield from _field_errors(value, f"{path}.{name}" if path else name)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        for message in messages:
            yield {"field": path or "body", "message": message}
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            yield from _field_errors(value, f"{path}.{index}" if path else str(index))
    else:
        yield {"field": path or "body", "message": str(messages)}


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"

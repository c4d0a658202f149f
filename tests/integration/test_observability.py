"""Probes, correlation ids, the request log line and the metrics, on both stores."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.cli import ensure_first_admin
from api.config import ApiSettings, ObservabilitySettings
from api.observability import request_id
from soh_es.settings import Settings
from tests.e2e.test_api_lifecycle import INDICATORS


@dataclass
class Served:
    """An app, its test client and an admin token."""

    app: Flask
    client: FlaskClient
    token: str

    def headers(self, **more: str) -> dict[str, str]:
        """The authorization header, and any others given."""
        return {"Authorization": f"Bearer {self.token}", **more}


def _serve(settings: Settings, observability: ObservabilitySettings) -> Served:
    app = create_app(
        settings,
        api_settings=ApiSettings(projections_in_process=False),
        observability=observability,
    )
    token = ensure_first_admin(app.extensions["soh"].identities)
    assert token is not None
    return Served(app, app.test_client(), token)


@pytest.fixture
def served(settings: Settings) -> Iterator[Served]:
    """The API with metrics on and no projection runner, so the lag stays."""
    running = _serve(settings, ObservabilitySettings(ready_max_lag=5, metrics=True))
    yield running
    running.app.extensions["soh"].close()


def _open_and_rate(served: Served, request_id: str | None = None) -> str:
    headers = (
        served.headers()
        if request_id is None
        else served.headers(**{"X-Request-ID": request_id})
    )
    opened = served.client.post("/plans", json={"partner": "Acme"}, headers=headers)
    assert opened.status_code == 201
    plan = opened.json["id"]
    rated = served.client.post(
        f"/plans/{plan}/ratings",
        json={"quarter": "2026-Q1", "ratings": dict.fromkeys(INDICATORS, 4)},
        headers=headers,
    )
    assert rated.status_code == 200
    return str(plan)


def _sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return None


def test_healthz_answers_without_a_token(served: Served) -> None:
    reply = served.client.get("/healthz")

    assert reply.status_code == 200
    assert reply.json == {"status": "up"}


def test_a_request_id_given_is_returned_and_stored_on_every_event(
    served: Served,
) -> None:
    plan = _open_and_rate(served, "checkout-42")

    history = served.client.get(
        f"/plans/{plan}/history", headers=served.headers(**{"X-Request-ID": "read-7"})
    )

    assert history.headers["X-Request-ID"] == "read-7"
    ids = {item["correlation_id"] for item in history.json["items"]}
    assert ids == {"checkout-42"}


def test_without_a_usable_request_id_one_is_made_returned_and_stored(
    served: Served,
) -> None:
    opened = served.client.post(
        "/plans",
        json={"partner": "Acme"},
        headers=served.headers(**{"X-Request-ID": "x" * 201}),
    )
    plan = opened.json["id"]

    history = served.client.get(f"/plans/{plan}/history", headers=served.headers())

    made = opened.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert history.json["items"][0]["correlation_id"] == made
    assert history.headers["X-Request-ID"] != made


@pytest.mark.parametrize(
    ("given", "kept"),
    [("abc-1", True), ("  abc-1  ", True), ("", False), ("a\tb", False)],
)
def test_a_request_id_is_kept_only_when_printable_and_short(
    given: str, kept: bool
) -> None:
    assert (request_id(given) == given.strip()) is kept


def test_one_log_line_per_request_carries_its_fields(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="api"):
        served.client.get(
            "/plans?limit=5", headers=served.headers(**{"X-Request-ID": "r-1"})
        )

    lines = [r for r in caplog.records if getattr(r, "correlation_id", None) == "r-1"]
    assert len(lines) == 1
    line = lines[0]
    fields = (line.method, line.path, line.status)  # type: ignore[attr-defined]
    assert fields == ("GET", "/plans?limit=5", 200)
    assert line.actor == "admin"  # type: ignore[attr-defined]
    assert line.duration_ms >= 0  # type: ignore[attr-defined]


def test_metrics_count_requests_events_and_projection_lag(served: Served) -> None:
    _open_and_rate(served)
    served.client.get("/plans/not-a-plan", headers=served.headers())
    served.client.get("/healthz")

    reply = served.client.get("/metrics")

    text = reply.get_data(as_text=True)
    assert reply.status_code == 200
    assert reply.mimetype == "text/plain"
    requests = "soh_http_requests_total"
    assert _sample(text, requests, method="POST", route="/plans", status="201") == 1
    rated = {"method": "POST", "route": "/plans/<uuid:plan_id>/ratings"}
    assert _sample(text, requests, **rated, status="200") == 1
    assert _sample(text, requests, method="GET", route="unmatched", status="404") == 1
    assert _sample(text, requests, method="GET", route="/healthz", status="200") == 1
    latency = "soh_http_request_duration_seconds_count"
    assert _sample(text, latency, method="POST", route="/plans", status="201") == 1
    events = "soh_events_appended_total"
    assert _sample(text, events, event="AccountPlan.Opened") == 1
    assert _sample(text, events, event="AccountPlan.IndicatorRated") == len(INDICATORS)
    assert _sample(text, "soh_event_log_head") == 1 + len(INDICATORS)
    assert _sample(text, "soh_projection_lag", projection="current_plans") == 1 + len(
        INDICATORS
    )
    assert _sample(text, "soh_projection_position", projection="scores") == 0


def test_readyz_answers_503_when_the_read_models_lag_too_far(served: Served) -> None:
    assert served.client.get("/readyz").status_code == 200

    _open_and_rate(served)
    reply = served.client.get("/readyz")

    assert reply.status_code == 503
    assert reply.json["type"] == "/problems/not-ready"
    assert "SOH_READY_MAX_LAG" in reply.json["detail"]
    assert reply.headers["Retry-After"]


def test_readyz_answers_ready_once_the_projections_caught_up(served: Served) -> None:
    _open_and_rate(served)
    served.app.extensions["soh"].read_models.runner.catch_up()

    reply = served.client.get("/readyz")

    assert reply.status_code == 200
    assert {p["lag"] for p in reply.json["projections"]} == {0}
    assert reply.json["max_lag"] == 5


def test_metrics_can_be_turned_off(settings: Settings) -> None:
    running = _serve(settings, ObservabilitySettings(metrics=False))
    try:
        _open_and_rate(running)

        assert running.client.get("/metrics").status_code == 404
        assert running.client.get("/healthz").status_code == 200
    finally:
        running.app.extensions["soh"].close()

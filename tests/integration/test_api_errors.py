"""Every refused request answers with a problem document and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.config import ApiSettings
from soh_es.errors import StoreUnavailableError
from soh_es.identity import Role
from soh_es.settings import Settings

MAX_BODY = 4096
ALL_RATINGS = {
    "brings_opportunities": 4,
    "recommends_solutions": 4,
    "seeks_input": 3,
    "invests_in_learning": 5,
    "responds_quickly": 4,
    "prioritizes_us": 3,
    "shares_intelligence": 4,
}


@dataclass
class World:
    """An app with a user of each role, two plans and a partner per plan."""

    app: Flask
    client: FlaskClient
    tokens: dict[str, str]
    plan_id: str
    other_plan_id: str
    initiative_id: str

    def call(
        self,
        method: str,
        path: str,
        *,
        role: str | None = "editor",
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> Any:
        """Sends a request as a user of ``role`` (None: no token at all)."""
        sent = dict(headers or {})
        if role is not None:
            sent.setdefault("Authorization", f"Bearer {self.tokens[role]}")
        return self.client.open(path, method=method, headers=sent, **options)

    def version(self, plan_id: str | None = None) -> int:
        """The plan's current version, read as an admin."""
        reply = self.call("GET", f"/plans/{plan_id or self.plan_id}", role="admin")
        return int(reply.headers["ETag"].strip('"'))


def build_world(settings: Settings, api_settings: ApiSettings | None = None) -> World:
    """Creates the app, its users and tokens, and two plans with records."""
    api_settings = api_settings or ApiSettings(max_body_bytes=MAX_BODY)
    app = create_app(settings, api_settings=api_settings)
    identities = app.extensions["soh"].identities
    client = app.test_client()
    tokens = {}
    for role in (Role.ADMIN, Role.EDITOR, Role.VIEWER):
        identities.add_user(role.value, role)
        tokens[role.value] = identities.create_token(role.value)[1]
    world = World(app, client, tokens, "", "", "")
    world.plan_id = world.call("POST", "/plans", json={"partner": "Acme"}).json["id"]
    world.other_plan_id = world.call("POST", "/plans", json={"partner": "Globex"}).json[
        "id"
    ]
    bound = (("partner", world.plan_id), ("outsider", world.other_plan_id))
    for name, plan_id in bound:
        identities.add_user(name, Role.PARTNER, plan_id)
        tokens[name] = identities.create_token(name)[1]
    world.initiative_id = world.call(
        "POST",
        f"/plans/{world.plan_id}/initiatives",
        json={"values": {"title": "Webinars", "quarter": "2026-Q4"}},
    ).json["id"]
    return world


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    """The world on an empty store of each kind."""
    built = build_world(settings)
    yield built
    built.app.extensions["soh"].close()


def assert_problem(reply: Any, status: int, problem: str) -> dict[str, Any]:
    """Checks a problem document's status, media type and stable type."""
    assert reply.status_code == status, reply.get_data(as_text=True)
    assert reply.mimetype == "application/problem+json"
    body: dict[str, Any] = reply.json
    assert body["type"] == f"/problems/{problem}"
    assert body["status"] == status
    assert body["detail"]
    return body


SECTION = "/plans/{plan}/sections/profile"
RATINGS = "/plans/{plan}/ratings"
INITIATIVE = "/plans/{plan}/initiatives/{initiative}"

REFUSED_WRITES = [
    pytest.param(
        "PATCH",
        SECTION,
        {"json": {"values": {"size": "x", "bogus": 1}}},
        422,
        "validation",
        "values.bogus",
        id="unknown-field",
    ),
    pytest.param(
        "PATCH",
        SECTION,
        {"json": {"values": {"size": "x"}, "actor": "mallory"}},
        422,
        "validation",
        "actor",
        id="actor-named-in-the-body",
    ),
    pytest.param(
        "PATCH",
        SECTION,
        {"json": {"values": {"market_share": "lots"}}},
        422,
        "validation",
        "values.market_share",
        id="wrong-type",
    ),
    pytest.param(
        "PATCH",
        SECTION,
        {"json": {"values": {"market_share": 140}}},
        422,
        "validation",
        "values.market_share",
        id="percent-out-of-range",
    ),
    pytest.param(
        "PATCH",
        SECTION,
        {"json": {"values": {"partner_since": "2026-13-01"}}},
        422,
        "validation",
        "values.partner_since",
        id="malformed-date",
    ),
    pytest.param(
        "PATCH",
        SECTION,
        {"json": ["not", "an", "object"]},
        422,
        "validation",
        None,
        id="body-not-an-object",
    ),
    pytest.param(
        "POST",
        RATINGS,
        {"json": {"quarter": "2026-Q4", "ratings": {**ALL_RATINGS, "seeks_input": 6}}},
        422,
        "validation",
        "ratings.seeks_input",
        id="rating-out-of-range",
    ),
    pytest.param(
        "POST",
        RATINGS,
        {"json": {"quarter": "2026-Q4", "ratings": {**ALL_RATINGS, "charm": 3}}},
        422,
        "validation",
        "ratings.charm",
        id="unknown-indicator",
    ),
    pytest.param(
        "POST",
        RATINGS,
        {"json": {"quarter": "2026-Q5", "ratings": ALL_RATINGS}},
        422,
        "validation",
        "quarter",
        id="malformed-quarter",
    ),
    pytest.param(
        "POST",
        RATINGS,
        {"json": {"quarter": "2099-Q1", "ratings": ALL_RATINGS}},
        422,
        "validation",
        "quarter",
        id="quarter-not-started",
    ),
    pytest.param(
        "POST",
        RATINGS,
        {"json": {"quarter": "2026-Q4", "ratings": {"seeks_input": "4"}}},
        422,
        "validation",
        "ratings.seeks_input",
        id="rating-as-text",
    ),
    pytest.param(
        "PATCH",
        INITIATIVE,
        {"json": {"values": {"quarter": "Q4 2026"}}},
        422,
        "validation",
        "values.quarter",
        id="malformed-record-quarter",
    ),
    pytest.param(
        "PATCH",
        SECTION,
        {
            "data": '{"values": {"size": "' + "x" * MAX_BODY + '"}}',
            "content_type": "application/json",
        },
        413,
        "body-too-large",
        None,
        id="oversized-body",
    ),
    pytest.param(
        "PATCH",
        SECTION,
        {"data": "size=big", "content_type": "text/plain"},
        400,
        "not-json",
        None,
        id="non-json-body",
    ),
    pytest.param(
        "PATCH",
        SECTION,
        {"data": '{"values": ', "content_type": "application/json"},
        400,
        "malformed-json",
        None,
        id="malformed-json",
    ),
    pytest.param(
        "PATCH",
        SECTION,
        {"json": {"values": {"size": "x"}}, "headers": {"If-Match": '"1"'}},
        412,
        "stale-version",
        None,
        id="stale-if-match",
    ),
    pytest.param(
        "PATCH",
        SECTION,
        {"json": {"values": {"size": "x"}}, "headers": {"If-Match": "yesterday"}},
        412,
        "stale-version",
        None,
        id="if-match-naming-no-version",
    ),
    pytest.param(
        "PATCH",
        "/plans/{plan}/initiatives/no-such-id",
        {"json": {"values": {"title": "x"}}},
        404,
        "not-found",
        None,
        id="unknown-child-record",
    ),
    pytest.param(
        "PATCH",
        SECTION,
        {"json": {"values": {"size": "x"}}, "role": None},
        401,
        "unauthenticated",
        None,
        id="no-token",
    ),
    pytest.param(
        "PATCH",
        SECTION,
        {
            "json": {"values": {"size": "x"}},
            "headers": {"Authorization": "Bearer soh_forged"},
        },
        401,
        "unauthenticated",
        None,
        id="unknown-token",
    ),
    pytest.param(
        "PATCH",
        SECTION,
        {"json": {"values": {"size": "x"}}, "role": "viewer"},
        403,
        "forbidden",
        None,
        id="viewer-writing",
    ),
    pytest.param(
        "PATCH",
        SECTION,
        {"json": {"values": {"size": "x"}}, "role": "partner"},
        403,
        "forbidden",
        None,
        id="partner-writing",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "options", "status", "problem", "field"), REFUSED_WRITES
)
def test_a_refused_write_answers_a_problem_and_writes_nothing(
    world: World,
    method: str,
    path: str,
    options: dict[str, Any],
    status: int,
    problem: str,
    field: str | None,
) -> None:
    before = world.version()
    url = path.format(plan=world.plan_id, initiative=world.initiative_id)
    reply = world.call(method, url, **options)

    body = assert_problem(reply, status, problem)
    if field is not None:
        assert field in [error["field"] for error in body["errors"]]
    assert world.version() == before


def test_an_unknown_plan_is_not_found(world: World) -> None:
    missing = "/plans/00000000-0000-4000-8000-000000000000"

    assert_problem(world.call("GET", missing), 404, "not-found")
    assert_problem(
        world.call("PATCH", missing + "/sections/goals", json={"values": {}}),
        404,
        "not-found",
    )


def test_editing_an_archived_plan_is_a_conflict(world: World) -> None:
    world.call("POST", f"/plans/{world.plan_id}/archive", json={})
    before = world.version()

    reply = world.call(
        "PATCH", SECTION.format(plan=world.plan_id), json={"values": {"size": "x"}}
    )

    assert_problem(reply, 409, "conflict")
    assert world.version() == before


def test_an_unreachable_store_answers_503_with_retry_after(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    plans = world.app.extensions["soh"].plans

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailableError("connection refused")

    monkeypatch.setattr(plans, "plan_document", unreachable)
    reply = world.call("GET", f"/plans/{world.plan_id}")

    assert_problem(reply, 503, "store-unavailable")
    assert reply.headers["Retry-After"] == "5"


def test_an_unexpected_failure_is_a_problem_without_details(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    plans = world.app.extensions["soh"].plans

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(plans, "plan_document", broken)
    reply = world.call("GET", f"/plans/{world.plan_id}")

    body = assert_problem(reply, 500, "internal")
    assert "secret" not in body["detail"]


def test_all_seven_ratings_are_stored_in_one_version_or_none(world: World) -> None:
    before = world.version()

    reply = world.call(
        "POST",
        RATINGS.format(plan=world.plan_id),
        json={"quarter": "2026-Q4", "ratings": ALL_RATINGS, "reason": "QBR"},
    )

    assert reply.status_code == 200
    assert int(reply.headers["ETag"].strip('"')) == before + 7
    latest = reply.json["latest_complete"]
    assert latest["total"] == 27 and latest["band"] == "healthy"
    assert {r["reason"] for r in latest["ratings"].values()} == {"QBR"}


def test_a_current_if_match_is_accepted_and_the_etag_moves(world: World) -> None:
    before = world.version()

    reply = world.call(
        "PATCH",
        SECTION.format(plan=world.plan_id),
        json={"values": {"size": "big"}, "reason": "Annual report"},
        headers={"If-Match": f'"{before}"'},
    )

    assert reply.status_code == 200
    assert reply.headers["ETag"] == f'"{before + 1}"'
    history = world.call("GET", f"/plans/{world.plan_id}/history?section=profile")
    last = history.json["items"][-1]
    assert (last["actor"], last["reason"]) == ("editor", "Annual report")


def test_a_new_record_answers_201_with_its_location(world: World) -> None:
    reply = world.call(
        "POST",
        f"/plans/{world.plan_id}/goals",
        json={"values": {"level": "corporate", "description": "Grow"}},
    )

    assert reply.status_code == 201
    assert reply.headers["Location"] == (
        f"/plans/{world.plan_id}/goals/{reply.json['id']}"
    )
    assert world.call("GET", reply.headers["Location"]).json["description"] == "Grow"


def test_a_removed_record_is_gone_and_answers_204(world: World) -> None:
    path = INITIATIVE.format(plan=world.plan_id, initiative=world.initiative_id)

    removed = world.call("DELETE", path, json={"reason": "Dropped"})

    assert removed.status_code == 204
    assert_problem(world.call("GET", path), 404, "not-found")

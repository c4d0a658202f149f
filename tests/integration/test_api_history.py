"""Reading a plan's history over HTTP: filters, pages and points in time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from soh_es.settings import Settings
from tests.integration.test_api_errors import World, assert_problem, build_world


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    """The world on an empty store of each kind, edited by two people."""
    built = build_world(settings)
    plan = built.plan_id
    built.call(
        "PATCH",
        f"/plans/{plan}/sections/goals",
        json={"values": {"summary": "Grow"}},
        role="admin",
    )
    built.call(
        "PATCH",
        f"/plans/{plan}/sections/roles",
        json={"values": {"review_cadence": "Monthly"}, "reason": "New cadence"},
    )
    yield built
    built.app.extensions["soh"].close()


def history(world: World, query: str) -> dict:
    reply = world.call("GET", f"/plans/{world.plan_id}/history?{query}")
    assert reply.status_code == 200, reply.json
    return reply.json


def test_history_is_filtered_by_actor_and_section(world: World) -> None:
    by_admin = history(world, "actor=admin")
    by_section = history(world, "section=roles")

    assert [i["event"] for i in by_admin["items"]] == ["SectionEdited"]
    assert by_admin["items"][0]["section"] == "goals"
    assert by_section["items"][0]["reason"] == "New cadence"
    assert by_section["items"][0]["changes"] == [
        {"field": "review_cadence", "before": None, "after": "Monthly"}
    ]


def test_history_is_paginated_with_a_total(world: World) -> None:
    everything = history(world, "limit=500")
    page = history(world, "offset=1&limit=2")

    assert page["total"] == everything["total"] == 4
    assert page["items"] == everything["items"][1:3]


def test_history_is_filtered_by_a_time_range(world: World) -> None:
    past = history(world, "until=2020-01-01")
    now = history(world, "since=2020-Q1")

    assert past["total"] == 0
    assert now["total"] == 4


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("until=2026-Q7", "until"),
        ("limit=0", "limit"),
        ("section=gossip", "section"),
        ("surprise=1", "surprise"),
    ],
)
def test_a_malformed_history_query_is_refused(
    world: World, query: str, field: str
) -> None:
    reply = world.call("GET", f"/plans/{world.plan_id}/history?{query}")

    body = assert_problem(reply, 422, "validation")
    assert field in [error["field"] for error in body["errors"]]


def test_a_diff_between_two_versions_lists_the_changed_fields(world: World) -> None:
    reply = world.call("GET", f"/plans/{world.plan_id}/diff?from=v3&to=v4")

    assert reply.status_code == 200
    changed = {d["path"] for d in reply.json["differences"]}
    assert "sections.roles.review_cadence" in changed
    assert "sections.goals.summary" not in changed


def test_a_point_beyond_the_plan_is_not_found(world: World) -> None:
    reply = world.call("GET", f"/plans/{world.plan_id}?at=v99")

    assert_problem(reply, 404, "not-found")


def test_a_malformed_point_is_refused(world: World) -> None:
    reply = world.call("GET", f"/plans/{world.plan_id}?at=2026-08-01T12:00")

    body = assert_problem(reply, 422, "validation")
    assert body["errors"][0]["field"] == "at"

"""Rubrics over HTTP: the versions in force, and adopting a new one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from soh_es.quarters import DEFAULT_CALENDAR
from soh_es.rubric import DEFAULT_RUBRIC
from soh_es.settings import Settings
from tests.integration.test_api_errors import World, build_world

CURRENT = DEFAULT_CALENDAR.quarter_of(datetime.now(UTC))


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    built = build_world(settings)
    yield built
    built.app.extensions["soh"].close()


def stricter(effective_from: str) -> dict[str, Any]:
    return {
        "effective_from": effective_from,
        "indicators": [i.__dict__ for i in DEFAULT_RUBRIC.indicators],
        "bands": [
            {"label": "intervention", "minimum": 7, "maximum": 24},
            {"label": "healthy", "minimum": 25, "maximum": 30},
            {"label": "strong", "minimum": 31, "maximum": 35},
        ],
        "trajectory_threshold": 3,
        "reason": "Stricter bands agreed with leadership",
    }


def test_the_built_in_rubric_is_version_one(world: World) -> None:
    reply = world.call("GET", "/rubrics", role="viewer")
    assert reply.status_code == 200
    (rubric,) = reply.json["items"]
    assert rubric["version"] == 1
    assert [b["label"] for b in rubric["bands"]] == [
        "intervention",
        "healthy",
        "strong",
    ]


def test_an_admin_adopts_a_rubric_that_labels_the_current_quarter(
    world: World,
) -> None:
    ratings = {key: 4 for key in DEFAULT_RUBRIC.keys}
    rated = world.call(
        "POST",
        f"/plans/{world.plan_id}/ratings",
        json={"quarter": str(CURRENT), "ratings": ratings},
    )
    assert rated.status_code == 200

    adopted = world.call("POST", "/rubrics", role="admin", json=stricter(str(CURRENT)))
    scorecard = world.call("GET", f"/plans/{world.plan_id}/scorecard", role="viewer")

    assert adopted.status_code == 201
    assert adopted.json["version"] == 2
    latest = scorecard.json["latest_complete"]
    assert (latest["rubric_version"], latest["band"]) == (2, "healthy")
    listed = world.call("GET", "/rubrics", role="viewer").json["items"]
    assert [r["version"] for r in listed] == [1, 2]


def test_a_rubric_for_a_past_quarter_or_with_gaps_is_refused(world: World) -> None:
    past = world.call(
        "POST", "/rubrics", role="admin", json=stricter(str(CURRENT.previous()))
    )
    gappy = stricter(str(CURRENT))
    gappy["bands"][1]["minimum"] = 26
    with_gap = world.call("POST", "/rubrics", role="admin", json=gappy)

    assert (past.status_code, past.json["errors"][0]["field"]) == (
        422,
        "effective_from",
    )
    assert with_gap.status_code == 422
    assert with_gap.json["errors"][0]["field"].startswith("bands")
    assert len(world.call("GET", "/rubrics", role="viewer").json["items"]) == 1

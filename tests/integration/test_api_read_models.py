"""Reads served from the read models, read-your-writes, and projection operations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.cli import main
from api.config import ApiSettings
from soh_es.settings import Settings, SettingsError
from tests.integration.test_api_errors import (
    ALL_RATINGS,
    MAX_BODY,
    World,
    assert_problem,
    build_world,
)

WAIT = 0.3
LOWER = {**ALL_RATINGS, "seeks_input": 1, "responds_quickly": 2}


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    """The role world with the runner in the API process, on each store."""
    api_settings = ApiSettings(
        max_body_bytes=MAX_BODY, projections_in_process=True, read_wait_seconds=WAIT
    )
    built = build_world(settings, api_settings)
    yield built
    built.app.extensions["soh"].close()


def position(reply: Any) -> int:
    """The Soh-Position a write answered with."""
    assert reply.status_code < 300, reply.get_data(as_text=True)
    return int(reply.headers["Soh-Position"])


def write(world: World, method: str, path: str, body: Any = None) -> int:
    """Sends a write as the editor and returns its position."""
    return position(world.call(method, path, json={} if body is None else body))


def read(world: World, path: str, after: int, **params: Any) -> Any:
    """Reads as the viewer once the read models reached ``after``."""
    query = "&".join(f"{k}={v}" for k, v in {"after": after, **params}.items())
    reply = world.call("GET", f"{path}?{query}", role="viewer")
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return reply.json


def days_ago(days: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


# Read-your-writes.


def test_every_write_answers_a_position_a_list_read_after_it_sees(
    world: World,
) -> None:
    opened = world.call("POST", "/plans", json={"partner": "Initech"})
    first = position(opened)
    plan = opened.json["id"]

    listed = read(world, "/plans", first)
    unchanged = write(world, "PATCH", f"/plans/{plan}/sections/goals", {"values": {}})
    removed = world.call(
        "DELETE", f"/plans/{world.plan_id}/initiatives/{world.initiative_id}"
    )

    assert plan in [item["id"] for item in listed["items"]]
    assert unchanged >= first
    assert removed.status_code == 204 and position(removed) > first
    acme = read(world, "/plans", position(removed), owner="editor", limit=10)
    assert [p["open_initiatives"] for p in acme["items"] if p["partner"] == "Acme"] == [
        0
    ]


def test_a_read_after_the_head_answers_503_projection_lagging(world: World) -> None:
    head = write(world, "POST", "/plans", {"partner": "Initech"})

    reply = world.call("GET", f"/plans?after={head + 1000}", role="viewer")

    assert_problem(reply, 503, "projection-lagging")
    assert int(reply.headers["Retry-After"]) >= 1
    assert read(world, "/plans", head)["total"] == 3


def test_text_with_nul_characters_is_refused_and_looked_up_harmlessly(
    world: World,
) -> None:
    log = world.app.extensions["soh"].plans.recorder
    head = log.max_notification_id()

    refused = world.call("POST", "/plans", json={"partner": "Nul\u0000Corp"})
    looked_up = world.call("GET", "/plans?owner=a%00b", role="viewer")

    assert refused.status_code == 422
    assert refused.json["errors"][0]["field"] == "partner"
    assert looked_up.status_code == 200 and looked_up.json["total"] == 0
    assert log.max_notification_id() == head


# The plan list.


def test_the_plan_list_filters_and_pages_from_the_read_model(world: World) -> None:
    hooli = world.call("POST", "/plans", json={"partner": "Hooli", "owner": "dana"})
    third = hooli.json["id"]
    rating = {"quarter": "2026-Q2", "ratings": ALL_RATINGS}
    write(world, "POST", f"/plans/{third}/ratings", rating)
    write(world, "POST", f"/plans/{third}/reviews", {"reviewed_on": days_ago(60)})
    write(world, "POST", f"/plans/{world.other_plan_id}/archive")
    last = write(
        world, "POST", f"/plans/{world.plan_id}/reviews", {"reviewed_on": days_ago(3)}
    )

    everything = read(world, "/plans", last)
    page = read(world, "/plans", last, offset=1, limit=1)
    healthy = read(world, "/plans", last, band="healthy")
    danas = read(world, "/plans", last, owner="dana")
    archived = read(world, "/plans", last, status="archived")
    overdue = read(world, "/plans", last, review_overdue="true")
    on_time = read(world, "/plans", last, review_overdue="false")

    assert [p["partner"] for p in everything["items"]] == ["Acme", "Globex", "Hooli"]
    assert (page["total"], page["offset"], page["limit"]) == (3, 1, 1)
    assert [p["partner"] for p in page["items"]] == ["Globex"]
    assert [(p["partner"], p["total"]) for p in healthy["items"]] == [("Hooli", 27)]
    assert [p["partner"] for p in danas["items"]] == ["Hooli"]
    assert [p["partner"] for p in archived["items"]] == ["Globex"]
    assert [p["partner"] for p in overdue["items"]] == ["Hooli"]
    assert [p["partner"] for p in on_time["items"]] == ["Acme", "Globex"]
    assert everything["items"][2]["quarter"] == "2026-Q2"
    assert everything["items"][0]["last_review_on"] == days_ago(3)
    refused = world.call("GET", "/plans?limit=501", role="viewer")
    assert refused.status_code == 422


# Scores.


def test_score_history_and_its_explanation_come_from_the_scores_model(
    world: World,
) -> None:
    plan = world.plan_id
    write(
        world,
        "POST",
        f"/plans/{plan}/ratings",
        {"quarter": "2026-Q2", "ratings": ALL_RATINGS},
    )
    last = position(
        world.call(
            "POST",
            f"/plans/{plan}/ratings",
            role="admin",
            json={"quarter": "2026-Q3", "ratings": LOWER, "reason": "Slow replies"},
        )
    )

    history = read(world, f"/plans/{plan}/scores", last)
    explained = read(
        world,
        f"/plans/{plan}/scorecard/explain",
        last,
        **{"from": "2026-Q2", "to": "2026-Q3"},
    )
    missing = world.call(
        "GET", f"/plans/{plan}/scorecard/explain?from=2025-Q1&to=2026-Q3", role="viewer"
    )

    assert [q["quarter"] for q in history["quarters"]] == ["2026-Q2", "2026-Q3"]
    assert history["latest_complete"]["quarter"] == "2026-Q3"
    assert history["quarters"][1]["trajectory"] == "declining"
    assert sorted(explained["moved"]) == ["responds_quickly", "seeks_input"]
    assert explained["change"] == sum(LOWER.values()) - sum(ALL_RATINGS.values())
    seeks = next(i for i in explained["indicators"] if i["indicator"] == "seeks_input")
    assert (seeks["before"], seeks["after"], seeks["change"]) == (3, 1, -2)
    assert (seeks["rated_by"], seeks["reason"]) == ("admin", "Slow replies")
    assert_problem(missing, 404, "not-found")


# Audit and portfolio.


def test_the_audit_log_filters_by_actor_plan_section_and_time(world: World) -> None:
    edit = {"values": {"summary": "Grow together"}, "reason": "kick-off"}
    world.call(
        "PATCH", f"/plans/{world.other_plan_id}/sections/goals", role="admin", json=edit
    )
    last = write(world, "PATCH", f"/plans/{world.plan_id}/sections/goals", edit)
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()

    everything = read(world, "/audit", last)
    by_admin = read(world, "/audit", last, actor="admin")
    on_plan = read(world, "/audit", last, plan=world.plan_id, section="goals")
    paged = read(world, "/audit", last, offset=1, limit=2)
    from_tomorrow = read(world, "/audit", last, since=tomorrow)
    until_tomorrow = read(world, "/audit", last, until=tomorrow)

    assert everything["total"] == 5
    assert [e["position"] for e in everything["items"]] == sorted(
        e["position"] for e in everything["items"]
    )
    assert [(e["plan_id"], e["section"]) for e in by_admin["items"]] == [
        (world.other_plan_id, "goals")
    ]
    assert by_admin["items"][0]["reason"] == "kick-off"
    assert by_admin["items"][0]["changes"][0]["after"] == "Grow together"
    assert [e["actor"] for e in on_plan["items"]] == ["editor"]
    assert (paged["total"], len(paged["items"])) == (5, 2)
    assert from_tomorrow["total"] == 0
    assert until_tomorrow["total"] == 5


def test_the_portfolio_counts_active_plans_and_their_pipeline(world: World) -> None:
    deal = {"name": "Fleet", "kind": "deal", "stage": "proposal", "value": "1000"}
    deal["probability"] = "50"
    write(world, "POST", f"/plans/{world.plan_id}/opportunities", {"values": deal})
    last = write(world, "POST", f"/plans/{world.other_plan_id}/archive")

    portfolio = read(world, "/portfolio", last)

    assert portfolio["plans"] == 1
    assert portfolio["pipeline"] == {
        "open_value": "1000.00",
        "weighted_forecast": "500.00",
        "active_opportunities": 1,
    }
    assert portfolio["bands"] == {"unscored": 1}


# Briefings.


def plan_with_work(world: World) -> tuple[str, int]:
    """Gives the world's plan ratings, an overdue action, a risk and a late deal."""
    plan = world.plan_id
    initiative = world.initiative_id
    write(
        world,
        "POST",
        f"/plans/{plan}/ratings",
        {"quarter": "2026-Q2", "ratings": ALL_RATINGS},
    )
    write(
        world,
        "POST",
        f"/plans/{plan}/ratings",
        {"quarter": "2026-Q3", "ratings": LOWER},
    )
    action = {"initiative_id": initiative, "description": "Book room", "owner": "eve"}
    write(
        world,
        "POST",
        f"/plans/{plan}/actions",
        {"values": {**action, "due_date": days_ago(10)}},
    )
    later = {**action, "description": "Send agenda", "due_date": days_ago(-10)}
    write(world, "POST", f"/plans/{plan}/actions", {"values": later})
    risk = {"initiative_id": initiative, "description": "No budget", "impact": "high"}
    write(
        world,
        "POST",
        f"/plans/{plan}/risks",
        {"values": {**risk, "mitigation": "Co-fund"}},
    )
    deal = {
        "name": "Fleet",
        "kind": "deal",
        "stage": "proposal",
        "close_date": days_ago(5),
    }
    last = write(world, "POST", f"/plans/{plan}/opportunities", {"values": deal})
    return plan, last


def test_the_handover_digest_groups_changes_and_shows_open_work(world: World) -> None:
    plan, last = plan_with_work(world)

    digest = read(world, f"/plans/{plan}/digest", last, since=days_ago(1))
    later = read(world, f"/plans/{plan}/digest", last, since=days_ago(-1))

    sections = {s["section"]: s for s in digest["changes"]["sections"]}
    assert list(sections) == ["pipeline", "health", "initiatives", "lifecycle"]
    assert sections["initiatives"]["count"] == 4
    assert sections["health"]["count"] == 14
    assert sections["health"]["actors"] == ["editor"]
    assert digest["changes"]["total"] == 20
    assert [i["title"] for i in digest["open_initiatives"]] == ["Webinars"]
    assert digest["open_initiatives"][0]["open_actions"] == 2
    assert [a["description"] for a in digest["overdue_actions"]] == ["Book room"]
    assert digest["overdue_actions"][0]["days_overdue"] == 10
    assert [(q["quarter"], q["trajectory"]) for q in digest["health_trend"]] == [
        ("2026-Q2", "new"),
        ("2026-Q3", "declining"),
    ]
    assert later["changes"] == {"total": 0, "sections": []}
    assert later["open_initiatives"] == digest["open_initiatives"]
    unbounded = world.call("GET", f"/plans/{plan}/digest", role="viewer")
    assert_problem(unbounded, 422, "validation")


def test_review_preparation_lists_progress_topics_and_open_risks(
    world: World, settings: Settings
) -> None:
    plan, _ = plan_with_work(world)
    review = {"reviewed_on": days_ago(1), "summary": "First QBR"}
    write(world, "POST", f"/plans/{plan}/reviews", review)
    edit = {"values": {"summary": "Grow together"}}
    last = write(world, "PATCH", f"/plans/{plan}/sections/goals", edit)

    prepared = read(world, f"/plans/{plan}/review-preparation", last)

    assert prepared["last_review"]["summary"] == "First QBR"
    assert prepared["since"].startswith(days_ago(1))
    sections = [s["section"] for s in prepared["progress"]["sections"]]
    assert "goals" in sections and "health" in sections
    topics = prepared["topics"]
    assert sorted(i["indicator"] for i in topics["declining_indicators"]) == [
        "responds_quickly",
        "seeks_input",
    ]
    assert [a["description"] for a in topics["overdue_actions"]] == ["Book room"]
    assert [o["name"] for o in topics["stale_opportunities"]] == ["Fleet"]
    current = str(settings.calendar.quarter_of(datetime.now(UTC)))
    assert topics["incomplete_quarter"]["quarter"] == current
    assert len(topics["incomplete_quarter"]["missing"]) == 7
    assert [(r["description"], r["initiative"]) for r in prepared["open_risks"]] == [
        ("No budget", "Webinars")
    ]


def test_a_briefing_of_a_plan_the_read_models_lack_is_404(world: World) -> None:
    missing = "00000000-0000-4000-8000-000000000000"

    reply = world.call("GET", f"/plans/{missing}/review-preparation", role="viewer")

    assert_problem(reply, 404, "not-found")


# Operations.


def test_projection_status_shows_no_lag_and_a_rebuild_reports_its_speed(
    world: World,
) -> None:
    last = write(world, "POST", "/plans", {"partner": "Initech"})
    for path in ("/portfolio", "/audit", f"/plans/{world.plan_id}/scores"):
        read(world, path, last)

    status = world.call("GET", "/projections", role="admin").json
    rebuilt = world.call("POST", "/projections/rebuild", role="admin", json={})
    one = world.call(
        "POST", "/projections/rebuild", role="admin", json={"name": "audit"}
    )
    unknown = world.call(
        "POST", "/projections/rebuild", role="admin", json={"name": "nope"}
    )

    assert status["in_process"] is True
    assert {p["name"]: p["lag"] for p in status["items"]} == {
        "current_plans": 0,
        "scores": 0,
        "audit": 0,
        "portfolio": 0,
    }
    assert rebuilt.status_code == 200
    assert rebuilt.json["events"] == last and rebuilt.json["events_per_second"] > 0
    assert one.json["names"] == ["audit"]
    assert_problem(unknown, 404, "not-found")
    assert read(world, "/plans", last)["total"] == 3


# Settings and the command line.


def test_projections_run_in_process_by_default_on_sqlite_only() -> None:
    sqlite = Settings("sqlite:///soh.sqlite3")
    postgres = Settings("postgresql://postgres@127.0.0.1:5432/soh")
    by_store = ApiSettings.from_env({})
    forced = ApiSettings.from_env({"SOH_PROJECTIONS_IN_PROCESS": "yes"})
    never = ApiSettings.from_env({"SOH_PROJECTIONS_IN_PROCESS": "off"})

    assert by_store.runs_projections(sqlite) and not by_store.runs_projections(postgres)
    assert forced.runs_projections(postgres)
    assert not never.runs_projections(sqlite)
    assert (
        ApiSettings.from_env({"SOH_READ_WAIT_SECONDS": "0.5"}).read_wait_seconds == 0.5
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("SOH_PROJECTIONS_IN_PROCESS", "maybe"), ("SOH_READ_WAIT_SECONDS", "61")],
)
def test_a_bad_read_model_setting_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        ApiSettings.from_env({name: value})

    assert raised.value.variable == name
    assert repr(value) in str(raised.value)


def test_soh_projections_rebuilds_and_shows_status(
    settings: Settings,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SOH_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SOH_DATA_DIR", str(tmp_path))
    assert main(["demo"]) == 0
    capsys.readouterr()

    assert main(["projections", "rebuild"]) == 0
    rebuilt = capsys.readouterr().err
    assert main(["projections", "status"]) == 0
    status = capsys.readouterr().out.splitlines()

    assert "events/s" in rebuilt and "Rebuilt current_plans" in rebuilt
    assert [line.split()[-1] for line in status[1:]] == ["0", "0", "0", "0"]
    assert main(["projections", "rebuild", "nope"]) == 2

"""A whole plan's life over HTTP against the real service, on both stores."""

from __future__ import annotations

import subprocess
from pathlib import Path

from soh_es.settings import Settings
from tests.e2e.conftest import (
    BIN,
    Server,
    environment,
    free_port,
    start_soh_serve,
    stop,
    wait_until_ready,
)

INDICATORS = (
    "brings_opportunities",
    "recommends_solutions",
    "seeks_input",
    "invests_in_learning",
    "responds_quickly",
    "prioritizes_us",
    "shares_intelligence",
)

SECTIONS = {
    "profile": {
        "locations": ["Utrecht"],
        "size": "250 employees",
        "partnership_status": "active",
        "partner_since": "2022-05-01",
        "market_segments": ["Retail"],
        "customer_base": "Regional retailers",
        "competitive_positioning": "Fast deployments",
        "market_share": 8.5,
    },
    "goals": {"summary": "Grow recurring revenue"},
    "roles": {
        "communication_protocol": "Weekly call",
        "escalation_path": "Channel lead",
        "review_mechanism": "QBR",
        "review_cadence": "Quarterly",
    },
    "market_demand": {
        "market_size": "12000000",
        "market_growth": 6,
        "competitive_landscape": "Two large vendors",
        "emerging_opportunities": ["AI"],
        "threats": ["Price pressure"],
    },
    "pipeline": {"summary": "Expansion deals"},
    "health": {
        "partner_satisfaction": 4,
        "engagement": 3,
        "mindshare": 40,
        "recent_wins": ["Two deals"],
        "challenges": ["Slow replies"],
    },
    "initiatives": {"summary": "Joint marketing"},
}


def rate(server: Server, plan: str, quarter: str, value: int) -> None:
    reply = server.call(
        "POST",
        f"/plans/{plan}/ratings",
        {"quarter": quarter, "ratings": dict.fromkeys(INDICATORS, value)},
    )
    assert reply.status == 200, reply.body


def test_a_plan_lives_through_edits_ratings_and_a_handover(server: Server) -> None:
    opened = server.call(
        "POST", "/plans", {"partner": "Acme Resellers", "reason": "New partner"}
    )
    assert opened.status == 201
    plan = opened.body["id"]
    assert opened.headers["Location"] == f"/plans/{plan}"
    assert opened.version == 1

    for section, values in SECTIONS.items():
        edited = server.call(
            "PATCH", f"/plans/{plan}/sections/{section}", {"values": values}
        )
        assert edited.status == 200, (section, edited.body)
    stakeholder = server.call(
        "POST",
        f"/plans/{plan}/stakeholders",
        {"values": {"name": "Ada Lovelace", "decision_role": "decision_maker"}},
    )
    assert stakeholder.status == 201
    initiative = server.call(
        "POST",
        f"/plans/{plan}/initiatives",
        {"values": {"title": "Joint webinar series", "quarter": "2026-Q4"}},
    )
    assert initiative.status == 201
    initiative_path = initiative.headers["Location"]
    assert server.call("GET", initiative_path).body["title"] == "Joint webinar series"

    rate(server, plan, "2026-Q3", 3)
    after_first = server.call("GET", f"/plans/{plan}").version
    rate(server, plan, "2026-Q4", 4)

    changed = server.call(
        "PATCH",
        initiative_path,
        {"values": {"status": "in_progress"}, "reason": "Kick-off held"},
        headers={"If-Match": f'"{after_first + 7}"'},
    )
    assert changed.status == 200, changed.body
    assert changed.body["status"] == "in_progress"
    handed = server.call(
        "POST",
        f"/plans/{plan}/handovers",
        {"new_owner": "bob", "notes": "Watch the pricing", "reason": "Team move"},
    )
    assert handed.status == 200
    assert handed.body["owner"] == "bob"

    scorecard = server.call("GET", f"/plans/{plan}/scorecard").body
    assert [q["total"] for q in scorecard["quarters"]] == [21, 28]
    assert scorecard["latest_complete"]["band"] == "strong"
    assert scorecard["latest_complete"]["trajectory"] == "improving"

    history = server.call("GET", f"/plans/{plan}/history?limit=500").body
    events = [item["event"] for item in history["items"]]
    assert events[0] == "Opened" and events[-1] == "HandedOver"
    assert history["total"] == len(events) == handed.version
    assert {item["actor"] for item in history["items"]} == {"admin"}
    change = next(i for i in history["items"] if i["event"] == "InitiativeChanged")
    assert change["reason"] == "Kick-off held"
    assert change["changes"] == [
        {"field": "status", "before": None, "after": "in_progress"}
    ]
    health = server.call("GET", f"/plans/{plan}/history?section=health").body
    assert health["total"] == 1 + 2 * len(INDICATORS)

    as_first = server.call("GET", f"/plans/{plan}?at=v{after_first}")
    assert as_first.version == after_first
    quarters = as_first.body["sections"]["health"]["scorecard"]["quarters"]
    assert [q["quarter"] for q in quarters] == ["2026-Q3"]
    assert as_first.body["owner"] == "admin"
    before_opening = server.call("GET", f"/plans/{plan}?at=2026-Q3")
    assert before_opening.status == 404

    diff = server.call("GET", f"/plans/{plan}/diff?from=v{after_first}").body
    paths = {d["path"]: d for d in diff["differences"]}
    assert paths["owner"] == {"path": "owner", "before": "admin", "after": "bob"}
    second = "sections.health.scorecard.quarters.2026-Q4"
    assert any(p.startswith(second) for p in paths)
    assert diff["to_version"] == handed.version


def test_the_demo_portfolio_replays_as_of_a_past_quarter(
    settings: Settings, tmp_path: Path
) -> None:
    env = environment(settings, tmp_path)
    subprocess.run([str(BIN / "soh"), "demo"], env=env, check=True, capture_output=True)
    # On PostgreSQL a worker keeps the read models; on SQLite the server does.
    worker = [str(BIN / "soh"), "projections", "run", "--until-idle"]
    subprocess.run(worker, env=env, check=True, capture_output=True)
    server = start_soh_serve(settings, tmp_path)
    try:
        head = server.call("GET", "/projections").body["items"][0]["head"]
        plans = server.call("GET", f"/plans?after={head}").body["items"]
        assert len(plans) == 4
        trajectories = {p["partner"]: p["trajectory"] for p in plans}
        assert trajectories["Contoso Systems"] == "declining"
        assert trajectories["Northwind Distribution"] == "improving"

        contoso = next(p for p in plans if p["partner"] == "Contoso Systems")
        now = server.call("GET", f"/plans/{contoso['id']}").body
        past = server.call("GET", f"/plans/{contoso['id']}?at=2026-Q2")
        assert past.status == 200
        assert past.version < now["version"]
        assert past.body["owner"] == "david.okafor" and now["owner"] == "priya.nair"
        rated = past.body["sections"]["health"]["scorecard"]["quarters"]
        assert rated[-1]["quarter"] == "2026-Q2"
    finally:
        stop(server)


def test_gunicorn_serves_the_app_with_a_token_made_on_the_command_line(
    tmp_path: Path,
) -> None:
    settings = Settings(f"sqlite:///{tmp_path / 'soh.sqlite3'}")
    env = environment(settings, tmp_path)
    soh = str(BIN / "soh")
    subprocess.run(
        [soh, "users", "add", "erin", "--role", "editor"],
        env=env,
        check=True,
        capture_output=True,
    )
    token = subprocess.run(
        [soh, "tokens", "create", "erin"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "api:create_app()",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    server = Server(f"http://127.0.0.1:{port}", process, token)
    try:
        wait_until_ready(server.url, process)
        opened = server.call("POST", "/plans", {"partner": "Gamma"})
        assert opened.status == 201
        read = server.call("GET", opened.headers["Location"])
        assert read.body["owner"] == "erin"
        assert server.call("GET", "/plans", token="soh_wrong").status == 401
    finally:
        stop(server)

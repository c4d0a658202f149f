"""Who may call what: every endpoint against every role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from soh_es.settings import Settings
from tests.integration.test_api_errors import World, build_world

ROLES = ("anonymous", "admin", "editor", "viewer", "partner", "outsider")
PUBLIC = {("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/docs/assets/{}")}
# Probes and metrics answer without a token (SOH_METRICS=no turns metrics off).
PUBLIC |= {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
ADMIN_ONLY = {
    ("GET", "/users"),
    ("POST", "/users"),
    ("POST", "/users/{}/tokens"),
    ("DELETE", "/tokens/{}"),
    ("GET", "/projections"),
    ("POST", "/projections/rebuild"),
    ("GET", "/admin/verify"),
    ("GET", "/plans/{plan}/verify"),
    ("POST", "/rubrics"),
}
# What a partner may read of its own plan: the plan itself (cut to the shared
# sections) and the goals and market demand records.
SHARED_READS = {
    ("GET", "/plans/{plan}"),
    ("GET", "/plans/{plan}/goals"),
    ("GET", "/plans/{plan}/goals/{}"),
    ("GET", "/plans/{plan}/segments"),
    ("GET", "/plans/{plan}/segments/{}"),
    ("GET", "/plans/{plan}/barriers"),
    ("GET", "/plans/{plan}/barriers/{}"),
}


def allowed(role: str, method: str, pattern: str) -> bool:
    """The role table of the API, written out independently of its code."""
    if (method, pattern) in PUBLIC:
        return True
    if role == "anonymous":
        return False
    if role == "admin":
        return True
    if (method, pattern) in ADMIN_ONLY:
        return False
    if role in ("partner", "outsider"):
        # The outsider is bound to another plan than the one called.
        return role == "partner" and (method, pattern) in SHARED_READS
    return method == "GET" or role == "editor"


def endpoints(world: World) -> list[tuple[str, str]]:
    """Every method and rule the app serves, with placeholders."""
    found = []
    for rule in world.app.url_map.iter_rules():
        pattern = re.sub(r"<uuid:plan_id>", "{plan}", rule.rule)
        pattern = re.sub(r"<[^>]+>", "{}", pattern)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, pattern))
    return sorted(found)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One world on SQLite: roles do not depend on the store."""
    path: Path = tmp_path_factory.mktemp("roles") / "soh.sqlite3"
    built = build_world(Settings(f"sqlite:///{path}"))
    yield built
    built.app.extensions["soh"].close()


def test_every_endpoint_answers_each_role_as_the_role_table_says(world: World) -> None:
    served = endpoints(world)
    assert len(served) > 60
    wrong = []
    for role in ROLES:
        for method, pattern in served:
            path = pattern.replace("{plan}", world.plan_id).replace("{}", "x")
            if pattern == "/docs/assets/{}":
                path = "/docs/assets/swagger-ui.css"
            body = {} if method != "GET" else None
            reply = world.call(
                method, path, role=None if role == "anonymous" else role, json=body
            )
            status = reply.status_code
            if allowed(role, method, pattern):
                ok = status not in (401, 403) and status < 500
            else:
                ok = status == (401 if role == "anonymous" else 403)
            if not ok:
                wrong.append((role, method, pattern, status))
    assert wrong == [], wrong


@pytest.mark.parametrize("role", ["anonymous", "viewer", "partner", "outsider"])
def test_a_refusal_does_not_reveal_whether_a_plan_exists(
    world: World, role: str
) -> None:
    missing = "/plans/00000000-0000-4000-8000-000000000000"
    token_role = None if role == "anonymous" else role
    expected = 401 if role == "anonymous" else 403

    for path in (f"/plans/{world.other_plan_id}", missing):
        reply = world.call(
            "PATCH", path + "/sections/goals", role=token_role, json={"values": {}}
        )
        assert reply.status_code == expected
    if role in ("partner", "outsider"):
        mine = world.tokens[role]
        other = world.other_plan_id if role == "partner" else world.plan_id
        for path in (f"/plans/{other}", missing):
            reply = world.call(
                "GET", path, role=None, headers={"Authorization": f"Bearer {mine}"}
            )
            assert reply.status_code == 403


def test_a_partner_reads_only_the_shared_sections_of_its_plan(world: World) -> None:
    reply = world.call("GET", f"/plans/{world.plan_id}", role="partner")

    assert reply.status_code == 200
    assert set(reply.json["sections"]) == {"goals", "market_demand"}
    assert "owner" not in reply.json
    history = world.call("GET", f"/plans/{world.plan_id}/history", role="partner")
    assert history.status_code == 403


def test_an_admin_manages_users_and_tokens_over_http(world: World) -> None:
    added = world.call(
        "POST", "/users", role="admin", json={"name": "carol", "role": "viewer"}
    )
    assert added.status_code == 201
    token = world.call("POST", "/users/carol/tokens", role="admin").json
    secret = {"Authorization": f"Bearer {token['secret']}"}
    assert world.call("GET", "/plans", role=None, headers=secret).status_code == 200

    revoked = world.call("DELETE", f"/tokens/{token['token_id']}", role="admin")

    assert revoked.json["revoked_at"] is not None
    assert world.call("GET", "/plans", role=None, headers=secret).status_code == 401

"""The verify endpoints: every chain, or one plan's, intact or where it breaks."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from soh_es.settings import Settings
from tests.integration.test_api_errors import World, assert_problem, build_world


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    """The API world on an empty store of each kind."""
    built = build_world(settings)
    yield built
    built.app.extensions["soh"].plans.close()


def test_an_untouched_store_verifies_intact_stream_by_stream(world: World) -> None:
    body = world.call("GET", "/admin/verify", role="admin").json
    assert (body["intact"], body["streams"], body["broken"]) == (True, 2, 0)
    assert {item["kind"] for item in body["items"]} == {"plan"}
    assert all(item["first_bad_version"] is None for item in body["items"])

    one = world.call("GET", f"/plans/{world.plan_id}/verify", role="admin").json
    (item,) = one["items"]
    assert (item["stream_id"], item["intact"], item["events"]) == (
        world.plan_id,
        True,
        2,
    )


def test_verifying_an_unknown_plan_is_not_found(world: World) -> None:
    reply = world.call(
        "GET", "/plans/00000000-0000-4000-8000-000000000000/verify", role="admin"
    )
    assert_problem(reply, 404, "not-found")


@pytest.mark.postgres
def test_a_changed_byte_is_reported_with_the_plan_and_first_bad_version(
    postgres_settings: Settings,
) -> None:
    world = build_world(postgres_settings)
    try:
        for size in ("small", "medium", "large"):
            world.call(
                "PATCH",
                f"/plans/{world.plan_id}/sections/profile",
                json={"values": {"size": size}},
            )
        with psycopg.connect(postgres_settings.database_url, autocommit=True) as c:
            c.execute(
                "UPDATE soh_events SET state = overlay(state placing '\\x20'::bytea "
                "from 30 for 1) WHERE originator_id = %s AND originator_version = 4",
                (world.plan_id,),
            )

        body = world.call("GET", "/admin/verify", role="admin").json
        broken = [item for item in body["items"] if not item["intact"]]
        assert (body["intact"], body["broken"]) == (False, 1)
        assert broken[0]["stream_id"] == world.plan_id
        assert broken[0]["first_bad_version"] == 4
        assert "version 4" in broken[0]["problem"]
        other = world.call("GET", f"/plans/{world.other_plan_id}/verify", role="admin")
        assert other.json["intact"] is True
    finally:
        world.app.extensions["soh"].plans.close()

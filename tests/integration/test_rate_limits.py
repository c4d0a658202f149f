"""Limits on hostile input: write rate per token, page size, body fields."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.config import ApiSettings, parse_rate_limit
from api.limits import RateLimit, WriteLimiter
from soh_es.settings import Settings, SettingsError
from tests.integration.test_api_errors import World, assert_problem, build_world

BURST = 5


@pytest.fixture
def limited(settings: Settings) -> Iterator[World]:
    """A world whose tokens may write five times, then one write a minute."""
    built = build_world(settings)
    api_settings = ApiSettings(
        write_rate_limit=RateLimit(1 / 60, BURST, "1/minute, burst 5"),
        max_page_size=20,
    )
    # The world's setup writes ran unlimited; limits apply from here on.
    built.app.extensions["soh_limits"] = (
        WriteLimiter(api_settings.write_rate_limit),  # type: ignore[arg-type]
        api_settings.max_page_size,
    )
    yield built
    built.app.extensions["soh"].plans.close()


def event_count(world: World) -> int:
    """The number of events in the whole log, counted through the export."""
    return sum(1 for _ in world.app.extensions["soh"].plans.export())


def rename(world: World, size: str, role: str = "editor") -> Any:
    """Sends one profile edit as ``role``."""
    return world.call(
        "PATCH",
        f"/plans/{world.plan_id}/sections/profile",
        role=role,
        json={"values": {"size": size}},
    )


def test_writes_over_the_burst_get_429_with_retry_after_and_write_nothing(
    limited: World,
) -> None:
    for number in range(BURST):
        assert rename(limited, f"size {number}").status_code == 200
    before = event_count(limited)

    reply = rename(limited, "one too many")

    body = assert_problem(reply, 429, "rate-limited")
    assert "1/minute" in body["detail"]
    assert 1 <= int(reply.headers["Retry-After"]) <= 60
    assert event_count(limited) == before


def test_each_token_has_its_own_bucket_and_reads_are_not_limited(
    limited: World,
) -> None:
    for number in range(BURST + 1):
        rename(limited, f"size {number}")
    assert rename(limited, "refused").status_code == 429

    assert rename(limited, "by the admin", role="admin").status_code == 200
    for _ in range(BURST * 2):
        reply = limited.call("GET", f"/plans/{limited.plan_id}", role="editor")
        assert reply.status_code == 200


def test_a_refused_token_is_not_counted_against_anyone(limited: World) -> None:
    for _ in range(BURST * 2):
        reply = limited.call("POST", "/plans", role=None, json={"partner": "Nobody"})
        assert reply.status_code == 401
    assert rename(limited, "still allowed").status_code == 200


def test_a_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    limiter = WriteLimiter(RateLimit(2.0, 2, "2/second"), clock=lambda: now[0])
    assert [limiter.take("t"), limiter.take("t")] == [0.0, 0.0]
    assert limiter.take("t") == pytest.approx(0.5)
    now[0] = 0.5
    assert limiter.take("t") == 0.0
    assert limiter.take("t") > 0
    now[0] = 100.0
    assert [limiter.take("t"), limiter.take("t")] == [0.0, 0.0]
    assert limiter.take("t") > 0


@pytest.mark.parametrize(
    ("text", "burst", "rate", "size"),
    [
        ("60/minute", None, 1.0, 60),
        ("10/second", "50", 10.0, 50),
        (" 3600 / hour ", None, 1.0, 3600),
    ],
)
def test_rate_limits_are_read_from_the_environment(
    text: str, burst: str | None, rate: float, size: int
) -> None:
    limit = parse_rate_limit(text, burst)
    assert limit is not None
    assert (limit.rate, limit.burst) == (pytest.approx(rate), size)


@pytest.mark.parametrize("text", ["0", "off", "OFF"])
def test_a_rate_limit_of_zero_or_off_switches_the_limit_off(text: str) -> None:
    settings = ApiSettings.from_env({"SOH_WRITE_RATE_LIMIT": text})
    assert settings.write_rate_limit is None


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"SOH_WRITE_RATE_LIMIT": "fast"}, "SOH_WRITE_RATE_LIMIT"),
        ({"SOH_WRITE_RATE_LIMIT": "60/day"}, "SOH_WRITE_RATE_LIMIT"),
        ({"SOH_WRITE_BURST": "0"}, "SOH_WRITE_BURST"),
        ({"SOH_MAX_PAGE_SIZE": "501"}, "SOH_MAX_PAGE_SIZE"),
        ({"SOH_MAX_BODY_BYTES": "12"}, "SOH_MAX_BODY_BYTES"),
    ],
)
def test_a_bad_limit_setting_names_its_variable_and_the_value(
    environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        ApiSettings.from_env(environ)
    assert raised.value.variable == variable
    assert repr(next(iter(environ.values()))) in str(raised.value)


def test_the_default_limits_are_on() -> None:
    settings = ApiSettings.from_env({})
    assert settings.write_rate_limit is not None
    assert str(settings.write_rate_limit) == "600/minute, burst 600"
    assert settings.max_page_size == 500


def test_a_page_above_the_configured_size_is_refused_and_one_at_it_served(
    limited: World,
) -> None:
    history = f"/plans/{limited.plan_id}/history"
    reply = limited.call("GET", f"{history}?limit=21")
    body = assert_problem(reply, 422, "validation")
    assert body["errors"][0]["field"] == "limit"
    assert "21" in body["detail"] and "20" in body["detail"]

    assert limited.call("GET", f"{history}?limit=20").status_code == 200


def request_schemas(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yields every JSON request body schema of the document, by operation."""
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            body = operation.get("requestBody")
            if body:
                schema = body["content"]["application/json"]["schema"]
                yield f"{method.upper()} {path}", schema


def unbounded(
    schema: dict[str, Any], spec: dict[str, Any], path: str, seen: set[str]
) -> Iterator[str]:
    """Yields the paths of strings without a bound and lists without a length."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return
        seen = seen | {name}
        schema = spec["components"]["schemas"][name]
    kind = schema.get("type")
    if kind == "string":
        bounded = {"maxLength", "enum", "pattern", "format"} & set(schema)
        if not bounded:
            yield path
    elif kind == "array":
        if "maxItems" not in schema:
            yield path
        yield from unbounded(schema.get("items", {}), spec, f"{path}[]", seen)
    elif kind == "object" or "properties" in schema:
        for name, field in schema.get("properties", {}).items():
            yield from unbounded(field, spec, f"{path}.{name}", seen)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            yield from unbounded(extra, spec, f"{path}.*", seen)


def test_every_text_and_list_a_body_accepts_has_a_maximum(limited: World) -> None:
    spec = limited.client.get("/openapi.json").json
    found = [
        f"{operation}: {path}"
        for operation, schema in request_schemas(spec)
        for path in unbounded(schema, spec, "body", set())
    ]
    assert found == []

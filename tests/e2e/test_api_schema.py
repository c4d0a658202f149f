"""Property-based requests against the served OpenAPI document.

Every operation gets a bounded number of generated requests, valid ones and
invalid ones; none may answer 500, and every answer must match what the
document says of its status, content type and body.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import Server

EXAMPLES_PER_OPERATION = 6


@schemathesis.check
def no_server_error_but_lagging(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, except the documented 503 of a read after a position not reached.

    Generated reads ask for positions never written; they wait, then answer
    /problems/projection-lagging, as the document says.
    """
    if response.status_code == 503:
        body = response.json()
        if body.get("type") == "/problems/projection-lagging":
            return None
    result: bool | None = not_a_server_error(ctx, response, case)
    return result


CHECKS = [
    no_server_error_but_lagging,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def seeded(module_server: Server) -> dict[str, str]:
    """A plan with an initiative, so generated requests reach real records."""
    plan = module_server.call("POST", "/plans", {"partner": "Seeded"}).body["id"]
    initiative = module_server.call(
        "POST",
        f"/plans/{plan}/initiatives",
        {"values": {"title": "Seeded", "quarter": "2026-Q4"}},
    ).body["id"]
    return {"plan_id": plan, "record_id": initiative}


def exercise(
    operation: Any,
    mode: GenerationMode,
    server: Server,
    session: requests.Session,
    known: dict[str, str],
) -> None:
    """Sends generated requests to one operation and checks every answer."""
    names = {p.name for p in operation.path_parameters}
    fixed = {name: value for name, value in known.items() if name in names}
    strategy = operation.as_strategy(mode, path_parameters=fixed or None)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(
            base_url=server.url,
            session=session,
            headers={"Authorization": f"Bearer {server.token}"},
            checks=CHECKS,
        )

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_breaks_the_server_or_the_schema(
    module_server: Server, seeded: dict[str, str], mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{module_server.url}/openapi.json")
    failures = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            try:
                exercise(operation, mode, module_server, session, seeded)
            except Exception as error:  # noqa: BLE001 - reported all together
                failures.append(f"{operation.label}: {str(error)[:160]}")
    assert failures == [], "\n".join(failures)

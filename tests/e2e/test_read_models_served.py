"""``soh serve`` on SQLite keeps its read models itself: lists are fresh at once."""

from __future__ import annotations

from pathlib import Path

from soh_es.settings import Settings
from tests.e2e.conftest import start_soh_serve, stop


def test_soh_serve_on_sqlite_lists_a_plan_right_after_it_was_opened(
    tmp_path: Path,
) -> None:
    server = start_soh_serve(
        Settings(f"sqlite:///{tmp_path / 'soh.sqlite3'}"), tmp_path
    )
    try:
        opened = server.call("POST", "/plans", {"partner": "Umbrella"})
        position = int(opened.headers["Soh-Position"])

        listed = server.call("GET", f"/plans?after={position}")
        status = server.call("GET", "/projections").body

        assert listed.status == 200
        assert [p["partner"] for p in listed.body["items"]] == ["Umbrella"]
        assert listed.body["items"][0]["id"] == opened.body["id"]
        assert status["in_process"] is True
        positions = {p["name"]: p["position"] for p in status["items"]}
        assert positions["current_plans"] >= position
    finally:
        stop(server)

"""The API page renders its operations in a real headless browser, offline."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from soh_es.settings import Settings
from tests.e2e.conftest import Server, start_soh_serve, stop

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    """Returns the headless browser to use; CI must have one installed."""
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("CI needs chromium installed to check the API page.")
    pytest.skip("No chromium on this machine; CI installs it.")


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[Server]:
    """The service on SQLite: the page does not depend on the store."""
    running = start_soh_serve(
        Settings(f"sqlite:///{tmp_path / 'soh.sqlite3'}"), tmp_path
    )
    yield running
    stop(running)


def test_the_api_page_lists_the_operations_without_internet(
    sqlite_server: Server, tmp_path: Path
) -> None:
    rendered = subprocess.run(
        [
            browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{sqlite_server.url}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout

    assert 'class="opblock' in rendered
    assert "/plans/{plan_id}/history" in rendered
    assert "Rate indicators for a quarter" in rendered

"""Fixtures that run the real service as a separate process on a loopback port."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from soh_es.settings import Settings
from tests.conftest import empty_postgres

BIN = Path(sys.executable).parent
START_TIMEOUT = 30.0


def free_port() -> int:
    """Returns a loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Reply:
    """An HTTP response: status, headers and the decoded JSON body, if any."""

    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def version(self) -> int:
        """The plan version the ETag names."""
        return int(self.headers["ETag"].strip('"'))


@dataclass
class Server:
    """A running service: its base URL, its process and the admin token."""

    url: str
    process: subprocess.Popen[str]
    token: str = ""
    output: list[str] = field(default_factory=list)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Sends one request and returns the reply, whatever its status."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {token or self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw, found = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, found = error.code, error.read(), error.headers
        decoded = json.loads(raw) if raw else None
        return Reply(status, dict(found.items()), decoded)


def environment(settings: Settings, data_dir: Path) -> dict[str, str]:
    """The environment a service process runs with: the store and a data dir."""
    env = dict(os.environ)
    env["SOH_DATABASE_URL"] = settings.database_url
    env["SOH_DATA_DIR"] = str(data_dir)
    return env


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)


def wait_until_ready(url: str, process: subprocess.Popen[str]) -> None:
    """Polls the OpenAPI document until the service answers."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The service exited with {process.returncode}.")
        try:
            with urllib.request.urlopen(url + "/openapi.json", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("The service did not answer in time.")


def start_soh_serve(
    settings: Settings, data_dir: Path, *, extra_env: Mapping[str, str] | None = None
) -> Server:
    """Starts ``soh serve`` and reads the first-start admin token it prints."""
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "soh"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**environment(settings, data_dir), **(extra_env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    server = Server(f"http://127.0.0.1:{port}", process)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(process, lines), daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.token and time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        server.output.append(line)
        if line.startswith("    soh_"):
            server.token = line.strip()
    if not server.token:
        stop(server)
        raise RuntimeError(f"No first-start token was printed: {server.output}")
    wait_until_ready(server.url, process)
    return server


def stop(server: Server) -> None:
    """Stops the service process this fixture started."""
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[Server]:
    """``soh serve`` on an empty store of each kind, with its admin token."""
    running = start_soh_serve(settings, tmp_path)
    yield running
    stop(running)


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def module_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One ``soh serve`` per module and store, for the longer property runs."""
    data_dir = tmp_path_factory.mktemp("served")
    if request.param == "sqlite":
        settings = Settings(f"sqlite:///{data_dir / 'soh.sqlite3'}")
    else:
        url = request.getfixturevalue("postgres_database")
        empty_postgres(url)
        settings = Settings(url)
    # Generated reads ask for positions never written: keep their wait short.
    running = start_soh_serve(
        settings, data_dir, extra_env={"SOH_READ_WAIT_SECONDS": "0.1"}
    )
    yield running
    stop(running)

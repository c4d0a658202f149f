"""A throwaway PostgreSQL cluster of the test's own, which it may stop and start.

The shared server must never be stopped, so tests of outages start their
own cluster from the installed PostgreSQL binaries, on a free port with its
socket in the cluster's directory. Run as root (as in CI), the cluster runs
as the ``postgres`` user; otherwise as the current user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.e2e.conftest import free_port

DATABASE = "soh"


def postgres_bin() -> Path | None:
    """Returns the directory of the newest installed PostgreSQL binaries."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return None if on_path is None else Path(on_path).parent


@dataclass
class PrivateCluster:
    """A PostgreSQL cluster in a temporary directory, on a port of its own."""

    bin: Path
    directory: Path
    port: int

    @property
    def url(self) -> str:
        """The URL of the cluster's ``soh`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*prefix, *command],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )

    def init(self) -> None:
        """Creates the cluster's files, trusting local connections."""
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.directory / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
        )

    def start(self) -> None:
        """Starts the server and waits until it accepts connections."""
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.directory / "data"),
            "-l",
            str(self.directory / "server.log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stops the server: ``fast`` ends every session at once."""
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.directory / "data"),
            "-m",
            mode,
            "-w",
            "stop",
        )

    def create_database(self) -> None:
        """Creates the ``soh`` database."""
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE))
            )


@pytest.fixture
def private_postgres() -> Iterator[PrivateCluster]:
    """A running private cluster with an empty ``soh`` database; removed after."""
    binaries = postgres_bin()
    if binaries is None:
        if os.environ.get("SOH_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL binaries (initdb, pg_ctl) are required.")
        pytest.skip("No PostgreSQL binaries to start a private cluster with.")
    directory = Path(tempfile.mkdtemp(prefix="soh-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    cluster = PrivateCluster(binaries, directory, free_port())
    try:
        cluster.init()
        cluster.start()
        cluster.create_database()
        yield cluster
    finally:
        try:
            cluster.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(directory, ignore_errors=True)

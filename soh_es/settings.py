"""Settings read once from the environment, checked, and turned into store options."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from soh_es.errors import SohError
from soh_es.quarters import FiscalCalendar

VARIABLES = (
    "SOH_DATABASE_URL",
    "SOH_DATA_DIR",
    "SOH_FISCAL_YEAR_START",
    "SOH_DB_POOL_SIZE",
    "SOH_CREATE_TABLES",
)


class SettingsError(SohError):
    """Raised at start when an environment variable holds a value we cannot use."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    """Where events are stored and how quarters are counted."""

    database_url: str
    fiscal_year_start: int = 1
    pool_size: int = 5
    create_tables: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Reads ``SOH_*`` variables; see the README's configuration table."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("SOH_DATA_DIR") or "data")
        if data_dir.exists() and not data_dir.is_dir():
            raise SettingsError(
                "SOH_DATA_DIR", f"{str(data_dir)!r} exists and is not a directory."
            )
        url = env.get("SOH_DATABASE_URL") or f"sqlite:///{data_dir / 'soh.sqlite3'}"
        settings = cls(
            database_url=url,
            fiscal_year_start=integer_setting(env, "SOH_FISCAL_YEAR_START", 1, 1, 12),
            pool_size=integer_setting(env, "SOH_DB_POOL_SIZE", 5, 1, 100),
            create_tables=flag_setting(env, "SOH_CREATE_TABLES", True),
        )
        settings.event_store_env()
        return settings

    @property
    def calendar(self) -> FiscalCalendar:
        """The fiscal calendar quarters are counted in."""
        return FiscalCalendar(self.fiscal_year_start)

    @property
    def is_postgres(self) -> bool:
        """Whether the store is PostgreSQL (otherwise SQLite)."""
        return self.database_url.startswith(("postgresql://", "postgres://"))

    def event_store_env(self) -> dict[str, str]:
        """Returns the ``eventsourcing`` options for the configured store."""
        create = "y" if self.create_tables else "n"
        if self.database_url.startswith("sqlite:///"):
            path = self.database_url.removeprefix("sqlite:///")
            if not path:
                raise SettingsError("SOH_DATABASE_URL", "sqlite:/// needs a file path.")
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "soh_es.sqlite:SQLiteStore",
                "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": "30",
                "CREATE_TABLE": create,
            }
        if self.is_postgres:
            parts = urlsplit(self.database_url)
            database = parts.path.lstrip("/")
            try:
                port = parts.port or 5432
            except ValueError:
                raise SettingsError(
                    "SOH_DATABASE_URL",
                    "the port of the URL is not a number 0 to 65535.",
                ) from None
            if not parts.hostname or not database:
                raise SettingsError(
                    "SOH_DATABASE_URL",
                    "a PostgreSQL URL needs a host and a database, as in "
                    "postgresql://user:password@127.0.0.1:5432/soh.",
                )
            return {
                "PERSISTENCE_MODULE": "soh_es.postgres:PostgresStore",
                "POSTGRES_DBNAME": unquote(database),
                "POSTGRES_HOST": parts.hostname,
                "POSTGRES_PORT": str(port),
                "POSTGRES_USER": unquote(parts.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(parts.password or ""),
                "POSTGRES_POOL_SIZE": str(self.pool_size),
                "POSTGRES_MAX_OVERFLOW": str(self.pool_size),
                # Wait at most 2 s for a connection: the store retries an
                # insert several times, and a request must not hang for long
                # while the database is down.
                "POSTGRES_CONNECT_TIMEOUT": "2",
                "POSTGRES_LOCK_TIMEOUT": "10",
                "CREATE_TABLE": create,
            }
        # Only the scheme is shown: the rest of the URL may hold a password.
        scheme = self.database_url.partition(":")[0]
        raise SettingsError(
            "SOH_DATABASE_URL",
            f"the scheme {scheme!r} is neither sqlite:///PATH nor postgresql://...",
        )


def integer_setting(
    env: Mapping[str, str], name: str, default: int, lowest: int, highest: int
) -> int:
    """Reads a whole number from ``env``; unset or empty gives ``default``."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lowest - 1
    if not lowest <= value <= highest:
        raise SettingsError(
            name, f"{raw!r} is not a whole number {lowest} to {highest}."
        )
    return value


def flag_setting(env: Mapping[str, str], name: str, default: bool) -> bool:
    """Reads yes or no from ``env``; unset or empty gives ``default``."""
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "y", "yes", "true", "on"):
        return True
    if raw in ("0", "n", "no", "false", "off"):
        return False
    raise SettingsError(name, f"{raw!r} is not yes or no.")

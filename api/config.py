"""Settings of the HTTP layer, read from the environment like the store's."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from api.limits import RateLimit
from soh_es.settings import Settings, SettingsError, integer_setting

DEFAULT_MAX_BODY_BYTES = 256 * 1024
DEFAULT_WRITE_RATE_LIMIT = "600/minute"
DEFAULT_MAX_PAGE_SIZE = 500
DEFAULT_READ_WAIT_SECONDS = 5.0
MAX_READ_WAIT_SECONDS = 60.0
PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
_RATE = re.compile(r"^\s*(\d{1,7})\s*/\s*(second|minute|hour)\s*$")


@dataclass(frozen=True)
class ApiSettings:
    """Limits of the HTTP layer.

    ``write_rate_limit`` is None when writes are not rate limited.
    ``projections_in_process`` None means by store: yes on SQLite (one
    process runs everything), no on PostgreSQL (a worker keeps the read
    models). ``read_wait_seconds`` bounds how long a read given ``after``
    waits for the read models to reach that position.
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    write_rate_limit: RateLimit | None = None
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE
    projections_in_process: bool | None = None
    read_wait_seconds: float = DEFAULT_READ_WAIT_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        """Reads ``SOH_MAX_BODY_BYTES``, ``SOH_WRITE_RATE_LIMIT``,
        ``SOH_WRITE_BURST`` and ``SOH_MAX_PAGE_SIZE``."""
        env = os.environ if environ is None else environ
        return cls(
            max_body_bytes=integer_setting(
                env, "SOH_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1024, 16 * 1024**2
            ),
            write_rate_limit=parse_rate_limit(
                env.get("SOH_WRITE_RATE_LIMIT") or DEFAULT_WRITE_RATE_LIMIT,
                env.get("SOH_WRITE_BURST") or None,
            ),
            max_page_size=integer_setting(
                env, "SOH_MAX_PAGE_SIZE", DEFAULT_MAX_PAGE_SIZE, 1, 500
            ),
            projections_in_process=_by_store_flag(env, "SOH_PROJECTIONS_IN_PROCESS"),
            read_wait_seconds=_seconds(
                env, "SOH_READ_WAIT_SECONDS", DEFAULT_READ_WAIT_SECONDS
            ),
        )

    def runs_projections(self, settings: Settings) -> bool:
        """Whether the API process keeps the read models of this store itself."""
        if self.projections_in_process is None:
            return not settings.is_postgres
        return self.projections_in_process


DEFAULT_READY_MAX_LAG = 1000
_ON = ("1", "y", "yes", "true", "on")
_OFF = ("0", "n", "no", "false", "off")


@dataclass(frozen=True)
class ObservabilitySettings:
    """Readiness and metrics of the API.

    ``ready_max_lag`` is how many events the read models may be behind the
    log while ``/readyz`` still answers ready; ``metrics`` serves ``/metrics``.
    """

    ready_max_lag: int = DEFAULT_READY_MAX_LAG
    metrics: bool = True

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None
    ) -> ObservabilitySettings:
        """Reads ``SOH_READY_MAX_LAG`` (0 or more) and ``SOH_METRICS`` (yes/no)."""
        env = os.environ if environ is None else environ
        raw = (env.get("SOH_READY_MAX_LAG") or "").strip()
        lag = DEFAULT_READY_MAX_LAG
        if raw:
            lag = int(raw) if raw.isdigit() and len(raw) <= 12 else -1
            if lag < 0:
                raise SettingsError(
                    "SOH_READY_MAX_LAG", f"{raw!r} is not a whole number of events."
                )
        metrics = (env.get("SOH_METRICS") or "yes").strip().lower()
        if metrics not in _ON + _OFF:
            raise SettingsError("SOH_METRICS", f"{metrics!r} is not yes or no.")
        return cls(ready_max_lag=lag, metrics=metrics in _ON)


def parse_rate_limit(text: str, burst: str | None = None) -> RateLimit | None:
    """Parses ``N/second``, ``N/minute`` or ``N/hour``; ``0`` or ``off`` is None.

    The burst (writes allowed at once) defaults to N.
    """
    if text.strip().lower() in ("0", "off", "no", "none"):
        return None
    match = _RATE.match(text)
    if match is None or int(match.group(1)) < 1:
        raise SettingsError(
            "SOH_WRITE_RATE_LIMIT",
            f"{text!r} is not a rate such as 60/minute (a whole number of writes "
            "per second, minute or hour), nor off.",
        )
    count = int(match.group(1))
    size = count
    if burst is not None:
        size = integer_setting(
            {"SOH_WRITE_BURST": burst}, "SOH_WRITE_BURST", count, 1, 10**6
        )
    rate = count / PERIODS[match.group(2)]
    return RateLimit(rate, size, f"{count}/{match.group(2)}, burst {size}")


def _by_store_flag(env: Mapping[str, str], name: str) -> bool | None:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "auto"):
        return None
    if raw in ("1", "y", "yes", "true", "on"):
        return True
    if raw in ("0", "n", "no", "false", "off"):
        return False
    raise SettingsError(
        name, f"{raw!r} is not yes, no or auto (yes on SQLite, no on PostgreSQL)."
    )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_READ_WAIT_SECONDS:
        raise SettingsError(
            name, f"{raw!r} is not a number of seconds 0 to {MAX_READ_WAIT_SECONDS:g}."
        )
    return value

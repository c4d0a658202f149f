"""Settings of the HTTP layer, read from the environment like the store's."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from soh_es.settings import SettingsError

DEFAULT_MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class ApiSettings:
    """Limits of the HTTP layer."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        """Reads ``SOH_MAX_BODY_BYTES`` (1 KiB to 16 MiB)."""
        env = os.environ if environ is None else environ
        raw = env.get("SOH_MAX_BODY_BYTES") or str(DEFAULT_MAX_BODY_BYTES)
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if not 1024 <= value <= 16 * 1024 * 1024:
            raise SettingsError(
                "SOH_MAX_BODY_BYTES", f"{raw!r} is not a byte count 1024 to 16777216."
            )
        return cls(max_body_bytes=value)

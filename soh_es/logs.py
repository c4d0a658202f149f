"""Log output of every entry point: text for people or one JSON object a line.

Nothing here runs at import. The entry points (the ``soh`` command, the
gunicorn settings, ``python -m projections``) read :class:`LogSettings` and
install the handler; library modules only log through their own loggers.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from soh_es.settings import SettingsError

VARIABLES = ("SOH_LOG_FORMAT", "SOH_LOG_LEVEL")
FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The attributes every LogRecord has; anything else came from ``extra``.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName"}


@dataclass(frozen=True)
class LogSettings:
    """How log lines are written: their format and the lowest level shown."""

    format: str = "text"
    level: str = "INFO"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, default_format: str = "text"
    ) -> LogSettings:
        """Reads ``SOH_LOG_FORMAT`` (text or json) and ``SOH_LOG_LEVEL``."""
        env = os.environ if environ is None else environ
        chosen = (env.get("SOH_LOG_FORMAT") or default_format).strip().lower()
        if chosen not in FORMATS:
            raise SettingsError(
                "SOH_LOG_FORMAT", f"{chosen!r} is not one of: {', '.join(FORMATS)}."
            )
        level = (env.get("SOH_LOG_LEVEL") or "INFO").strip().upper()
        if level not in LEVELS:
            raise SettingsError(
                "SOH_LOG_LEVEL", f"{level!r} is not one of: {', '.join(LEVELS)}."
            )
        return cls(format=chosen, level=level)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, extras.

    Fields passed with ``extra=`` (method, path, status, correlation_id, ...)
    become keys of their own, so log collectors need no parsing.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Returns the record as a single line of JSON."""
        stamp = datetime.fromtimestamp(record.created, UTC)
        document: dict[str, Any] = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, separators=(",", ":"))


def log_config(settings: LogSettings) -> dict[str, Any]:
    """Returns a ``logging.config.dictConfig`` document for the settings.

    It also routes gunicorn's own loggers through the same handler and
    silences gunicorn's access log, which the API's request line replaces.
    """
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if settings.format == "json"
        else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"soh": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "soh",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": settings.level, "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": settings.level, "propagate": True},
            "gunicorn.access": {"level": "WARNING", "propagate": False},
        },
    }


def configure_logging(settings: LogSettings) -> None:
    """Installs the one handler of the process, replacing any there was."""
    logging.config.dictConfig(log_config(settings))

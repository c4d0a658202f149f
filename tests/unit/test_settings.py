"""Each environment variable the code reads is checked at start, by name."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from api.config import ApiSettings, ObservabilitySettings
from soh_es.logs import JsonFormatter, LogSettings
from soh_es.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("api", "projections", "soh_es")
VARIABLE = re.compile(r"^SOH_[A-Z0-9_]+$")

Reader = Callable[[Mapping[str, str]], Any]


def read_all(env: Mapping[str, str]) -> None:
    """Reads every settings class, as the entry points do at start."""
    Settings.from_env(env)
    ApiSettings.from_env(env)
    ObservabilitySettings.from_env(env)
    LogSettings.from_env(env)


def variables_the_code_reads() -> set[str]:
    """Every ``SOH_*`` name written as a string in the source and gunicorn.conf.py."""
    files = [p for source in SOURCES for p in (ROOT / source).rglob("*.py")]
    files.append(ROOT / "gunicorn.conf.py")
    found = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if VARIABLE.match(node.value):
                    found.add(node.value)
    return found


# Variable, a bad value, and words its message must hold.
BAD_VALUES = [
    ("SOH_DATABASE_URL", "mysql://db/soh", "neither sqlite:///PATH nor postgresql"),
    ("SOH_DATABASE_URL", "sqlite:///", "needs a file path"),
    ("SOH_DATABASE_URL", "postgresql://user@/", "needs a host and a database"),
    ("SOH_DATABASE_URL", "postgresql://u@db:port/soh", "port of the URL"),
    ("SOH_FISCAL_YEAR_START", "13", "'13' is not a whole number 1 to 12"),
    ("SOH_FISCAL_YEAR_START", "April", "'April' is not a whole number 1 to 12"),
    ("SOH_DB_POOL_SIZE", "0", "'0' is not a whole number 1 to 100"),
    ("SOH_CREATE_TABLES", "maybe", "'maybe' is not yes or no"),
    ("SOH_MAX_BODY_BYTES", "10", "'10' is not a whole number 1024 to 16777216"),
    ("SOH_WRITE_RATE_LIMIT", "fast", "'fast' is not a rate such as 60/minute"),
    ("SOH_MAX_PAGE_SIZE", "501", "'501' is not a whole number 1 to 500"),
    ("SOH_PROJECTIONS_IN_PROCESS", "often", "'often' is not yes, no or auto"),
    ("SOH_READ_WAIT_SECONDS", "90", "'90' is not a number of seconds 0 to 60"),
    ("SOH_READY_MAX_LAG", "-1", "'-1' is not a whole number of events"),
    ("SOH_READY_MAX_LAG", "lots", "'lots' is not a whole number of events"),
    ("SOH_METRICS", "sometimes", "'sometimes' is not yes or no"),
    ("SOH_LOG_FORMAT", "xml", "'xml' is not one of: text, json"),
    ("SOH_LOG_LEVEL", "LOUD", "'LOUD' is not one of: DEBUG, INFO, WARNING, ERROR"),
]
# Variables whose bad values need more than one variable or a file system.
CHECKED_ELSEWHERE = {
    "SOH_DATA_DIR": "test_a_data_dir_that_is_a_file_is_refused",
    "SOH_WRITE_BURST": "test_a_burst_that_is_not_a_count_is_refused",
}


@pytest.mark.parametrize(("variable", "value", "words"), BAD_VALUES)
def test_a_bad_value_stops_the_start_with_a_message_naming_the_variable(
    variable: str, value: str, words: str, tmp_path: Path
) -> None:
    env = {"SOH_DATA_DIR": str(tmp_path), variable: value}

    with pytest.raises(SettingsError) as raised:
        read_all(env)

    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}: ")
    assert words in str(raised.value)


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    occupied = tmp_path / "data"
    occupied.write_text("not a directory")

    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"SOH_DATA_DIR": str(occupied)})

    assert raised.value.variable == "SOH_DATA_DIR"
    assert "exists and is not a directory" in str(raised.value)


def test_a_burst_that_is_not_a_count_is_refused(tmp_path: Path) -> None:
    env = {"SOH_WRITE_RATE_LIMIT": "60/minute", "SOH_WRITE_BURST": "many"}

    with pytest.raises(SettingsError) as raised:
        ApiSettings.from_env(env)

    assert raised.value.variable == "SOH_WRITE_BURST"
    assert "'many' is not a whole number" in str(raised.value)


def test_a_database_url_message_never_shows_the_password() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"SOH_DATABASE_URL": "postgres-x://soh:s3cret@db/soh"})

    assert "s3cret" not in str(raised.value)


def test_every_variable_the_code_reads_has_a_bad_value_test() -> None:
    tested = {variable for variable, _, _ in BAD_VALUES} | set(CHECKED_ELSEWHERE)

    untested = variables_the_code_reads() - tested

    assert untested == set(), f"add a bad-value case for {sorted(untested)}"


def test_defaults_hold_when_nothing_is_set(tmp_path: Path) -> None:
    env = {"SOH_DATA_DIR": str(tmp_path)}

    settings = Settings.from_env(env)
    observability = ObservabilitySettings.from_env(env)
    logs = LogSettings.from_env(env)

    assert settings.database_url == f"sqlite:///{tmp_path / 'soh.sqlite3'}"
    assert (settings.fiscal_year_start, settings.pool_size) == (1, 5)
    assert settings.create_tables is True
    assert ApiSettings.from_env(env).max_body_bytes == 256 * 1024
    assert (observability.ready_max_lag, observability.metrics) == (1000, True)
    assert (logs.format, logs.level) == ("text", "INFO")


def test_values_are_read_whatever_their_case_and_spaces(tmp_path: Path) -> None:
    env = {
        "SOH_DATA_DIR": str(tmp_path),
        "SOH_CREATE_TABLES": "NO",
        "SOH_METRICS": " off ",
        "SOH_LOG_FORMAT": "JSON",
        "SOH_LOG_LEVEL": "debug",
        "SOH_READY_MAX_LAG": "0",
    }

    assert Settings.from_env(env).create_tables is False
    assert ObservabilitySettings.from_env(env) == ObservabilitySettings(0, False)
    assert LogSettings.from_env(env) == LogSettings("json", "DEBUG")


def test_a_json_log_line_carries_the_fields_given_as_extra() -> None:
    import json
    import logging

    record = logging.LogRecord("api", logging.INFO, "x.py", 1, "GET %s", ("/",), None)
    record.__dict__.update({"status": 200, "correlation_id": "abc"})

    line = JsonFormatter().format(record)

    document = json.loads(line)
    assert "\n" not in line
    assert document["message"] == "GET /"
    assert document["level"] == "INFO" and document["logger"] == "api"
    assert (document["status"], document["correlation_id"]) == (200, "abc")
    assert document["time"].endswith("Z")

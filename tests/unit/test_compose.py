"""The compose file and the Dockerfile refer only to things the project has.

No Docker engine is needed: the files are parsed and every service, command,
variable, port and health check is checked against the code.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.config import ApiSettings, ObservabilitySettings
from soh_es.logs import LogSettings
from soh_es.settings import Settings
from tests.unit.test_settings import variables_the_code_reads

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("db", "init", "api", "worker")
# What the official postgres image reads.
POSTGRES_IMAGE_VARIABLES = {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"}
# Read by gunicorn.conf.py and prometheus_client, beside the SOH_* settings.
OTHER_VARIABLES = {"WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR"}
SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?P<rest>[^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as data."""
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    """pyproject.toml as data."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's variables, as compose passes them, with a stand-in password."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {
        name: INTERPOLATION.sub("Standin1", str(value)) for name, value in raw.items()
    }


def gunicorn_bind_port() -> int:
    """The port ``bind`` names in gunicorn.conf.py, read without running it."""
    tree = ast.parse((ROOT / "gunicorn.conf.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [
            t.id for t in node.targets if isinstance(t, ast.Name)
        ] == ["bind"]:
            assert isinstance(node.value, ast.Constant)
            return int(str(node.value.value).rsplit(":", 1)[1])
    raise AssertionError("gunicorn.conf.py sets no bind address")


def test_the_four_services_are_there(compose: dict[str, Any]) -> None:
    assert set(SERVICES) <= set(services(compose))


def test_the_database_keeps_its_data_in_a_named_volume_and_has_a_health_check(
    compose: dict[str, Any],
) -> None:
    db = services(compose)["db"]
    named = [v.split(":", 1)[0] for v in db["volumes"] if not v.startswith((".", "/"))]

    assert named and all(name in compose["volumes"] for name in named)
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    check = db["healthcheck"]["test"]
    assert check[:2] == ["CMD", "pg_isready"]
    assert check[check.index("-U") + 1] == db["environment"]["POSTGRES_USER"]
    assert check[check.index("-d") + 1] == db["environment"]["POSTGRES_DB"]


@pytest.mark.parametrize("name", ["init", "api", "worker"])
def test_every_command_runs_something_the_project_installs(
    compose: dict[str, Any], project: dict[str, Any], name: str
) -> None:
    command = services(compose)[name]["command"]
    scripts = project["project"]["scripts"]
    dependencies = " ".join(project["project"]["dependencies"])

    if command[0] == "python":
        assert command[1] == "-m"
        spec = importlib.util.find_spec(command[2])
        assert spec is not None and spec.submodule_search_locations
        assert importlib.util.find_spec(f"{command[2]}.__main__") is not None
    elif command[0] == "gunicorn":
        assert "gunicorn" in dependencies
    else:
        assert command[0] in scripts
        module, _, function = scripts[command[0]].partition(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_the_api_runs_gunicorn_with_the_repository_settings_and_a_real_app(
    compose: dict[str, Any],
) -> None:
    command = services(compose)["api"]["command"]

    config = command[command.index("-c") + 1]
    target = command[-1]
    module, _, call = target.partition(":")
    assert (ROOT / config).is_file()
    assert call.endswith("()")
    assert callable(getattr(importlib.import_module(module), call[:-2]))


def test_every_variable_set_is_one_the_code_reads(compose: dict[str, Any]) -> None:
    read = variables_the_code_reads() | OTHER_VARIABLES

    for name in ("init", "api", "worker"):
        unknown = set(environment(services(compose)[name])) - read
        assert unknown == set(), f"{name} sets {sorted(unknown)}, read by nothing"
    assert set(environment(services(compose)["db"])) <= POSTGRES_IMAGE_VARIABLES


@pytest.mark.parametrize("name", ["init", "api", "worker"])
def test_every_value_set_passes_the_settings_checks(
    compose: dict[str, Any], name: str, tmp_path: Path
) -> None:
    env = {"SOH_DATA_DIR": str(tmp_path), **environment(services(compose)[name])}

    settings = Settings.from_env(env)
    ApiSettings.from_env(env)
    ObservabilitySettings.from_env(env)
    LogSettings.from_env(env)

    assert settings.is_postgres
    assert "@db:5432/" in settings.database_url
    assert settings.create_tables is (name == "init")


def test_the_published_port_is_the_one_gunicorn_binds(compose: dict[str, Any]) -> None:
    api = services(compose)["api"]
    port = gunicorn_bind_port()

    assert [str(p).rsplit(":", 1)[1] for p in api["ports"]] == [str(port)]
    check = " ".join(api["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/healthz" in check


def test_the_api_health_check_asks_a_route_the_app_serves(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    from api import create_app

    check = " ".join(services(compose)["api"]["healthcheck"]["test"])
    path = re.search(r"https?://[^/]+(/[a-z]+)", check)
    app = create_app(Settings(f"sqlite:///{tmp_path / 'soh.sqlite3'}"))

    try:
        assert path is not None
        assert path.group(1) in {rule.rule for rule in app.url_map.iter_rules()}
        assert app.test_client().get(path.group(1)).status_code == 200
    finally:
        app.extensions["soh"].plans.close()


def test_dependencies_name_existing_services_with_sound_conditions(
    compose: dict[str, Any],
) -> None:
    found = services(compose)

    for name, service in found.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in found, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in found[target]
            else:
                assert condition == "service_completed_successfully"
                assert found[target].get("restart") == "no"
    assert found["api"]["depends_on"] == found["worker"]["depends_on"]
    assert "init" in found["api"]["depends_on"]


def test_no_secret_has_a_default(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()

    for match in INTERPOLATION.finditer(text):
        if SECRET.search(match.group("name")):
            assert match.group("rest").startswith(":?"), match.group(0)
    for service in services(compose).values():
        for name, value in (service.get("environment") or {}).items():
            if SECRET.search(name):
                assert str(value).startswith("${"), f"{name} is written out"
            for url in re.findall(r"\w+://[^@\s]+@", str(value)):
                assert "${" in url, f"{name} holds a written-out password"


def test_the_image_holds_the_packages_and_runs_as_an_unprivileged_user(
    project: dict[str, Any],
) -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = {
        part.strip("./")
        for line in lines
        if line.startswith("COPY ")
        for part in line.split()[1:-1]
    }
    packages = {
        p.rstrip("*")
        for p in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }

    assert packages <= copied
    assert {
        "pyproject.toml",
        project["project"]["readme"],
        "gunicorn.conf.py",
    } <= copied
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(line.startswith("FROM python:3.11") for line in lines)


def test_the_image_leaves_tests_and_local_data_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())

    assert {".git", ".venv", "data", "tests"} <= ignored

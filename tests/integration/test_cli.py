"""The ``soh`` command line: users, tokens and the first admin, on both stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.cli import ensure_first_admin, main
from soh_es.application import AccountPlans
from soh_es.identity import Identities, Role, hash_secret
from soh_es.settings import Settings


@pytest.fixture
def store(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """Points the command line at an empty store of each kind."""
    monkeypatch.setenv("SOH_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SOH_DATA_DIR", str(tmp_path))
    return settings


def identities_of(settings: Settings) -> tuple[AccountPlans, Identities]:
    plans = AccountPlans(settings)
    return plans, Identities.of(plans)


def test_a_token_created_on_the_command_line_authenticates_its_user(
    store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["users", "add", "alice", "--role", "editor"]) == 0
    assert main(["tokens", "create", "alice"]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]

    plans, identities = identities_of(store)
    user = identities.authenticate(secret)
    plans.close()

    assert user is not None and (user.name, user.role) == ("alice", Role.EDITOR)


def test_tokens_are_stored_only_as_hashes(store: Settings) -> None:
    plans, identities = identities_of(store)
    identities.create_tables()
    identities.add_user("bob", Role.VIEWER)
    _, secret = identities.create_token("bob")

    with identities.datastore.transaction(commit=False) as cursor:
        cursor.execute("SELECT token_hash FROM soh_tokens")
        stored = [row["token_hash"] for row in cursor.fetchall()]
    plans.close()

    assert stored == [hash_secret(secret)]
    assert secret not in stored


def test_a_revoked_token_no_longer_authenticates(
    store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["users", "add", "carol", "--role", "viewer"])
    main(["tokens", "create", "carol"])
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    plans, identities = identities_of(store)
    token_id = identities.tokens("carol")[0].token_id

    assert main(["tokens", "revoke", token_id]) == 0

    assert identities.authenticate(secret) is None
    plans.close()


def test_a_partner_needs_an_existing_plan(
    store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["users", "add", "globex", "--role", "partner"]) == 1
    missing = "00000000-0000-4000-8000-000000000000"
    assert main(["users", "add", "globex", "--role", "partner", "--plan", missing]) == 1
    assert "plan_id" not in capsys.readouterr().out


def test_the_first_admin_is_created_once(store: Settings) -> None:
    plans, identities = identities_of(store)
    identities.create_tables()

    first = ensure_first_admin(identities)
    second = ensure_first_admin(identities)

    assert first is not None and second is None
    admin = identities.authenticate(first)
    plans.close()
    assert admin is not None and admin.role is Role.ADMIN


def test_a_duplicate_user_is_refused_with_a_message(
    store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["users", "add", "dave", "--role", "viewer"])

    assert main(["users", "add", "dave", "--role", "admin"]) == 1
    assert "already a user 'dave'" in capsys.readouterr().err

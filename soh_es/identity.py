"""Users, their roles and their bearer tokens, kept beside the events.

Users and tokens are plain tables (``soh_users``, ``soh_tokens``), not event
sourced: they say who may act, while the plan events say who did. A token is
shown once when it is created; only its SHA-256 hash is stored.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg.sql import SQL, Composable, Identifier

from soh_es.errors import (
    ConflictError,
    NotFoundError,
    StoreUnavailableError,
    ValidationError,
)

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "soh_"
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")

_CREATE_STATEMENTS = (
    "CREATE TABLE IF NOT EXISTS {users} ("
    " name TEXT PRIMARY KEY,"
    " role TEXT NOT NULL,"
    " plan_id TEXT,"
    " created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {tokens} ("
    " token_id TEXT PRIMARY KEY,"
    " token_hash TEXT NOT NULL UNIQUE,"
    " user_name TEXT NOT NULL REFERENCES {users} (name),"
    " created_at TEXT NOT NULL,"
    " revoked_at TEXT)",
)


class Role(Enum):
    """What a user may do.

    An admin does everything, including managing users and tokens; an editor
    reads and writes plans; a viewer reads them; a partner reads the shared
    sections of the one plan it is bound to.
    """

    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"
    PARTNER = "partner"


@dataclass(frozen=True)
class User:
    """A person or system that holds tokens; ``plan_id`` binds a partner."""

    name: str
    role: Role
    plan_id: UUID | None
    created_at: datetime


@dataclass(frozen=True)
class Token:
    """A bearer token's public facts (never its secret)."""

    token_id: str
    user_name: str
    created_at: datetime
    revoked_at: datetime | None


def hash_secret(secret: str) -> str:
    """Returns the SHA-256 hex digest a token secret is stored as."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class Identities:
    """Reads and writes users and tokens in the event store's database."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
        self.is_postgres = isinstance(datastore, PostgresDatastore)

    @classmethod
    def of(cls, application: Any) -> Identities:
        """Returns the identities kept in ``application``'s database."""
        return cls(application.factory.datastore)

    def create_tables(self) -> None:
        """Creates the users and tokens tables if they do not exist yet."""
        with self._cursor(commit=True) as cursor:
            for statement in _CREATE_STATEMENTS:
                self._execute(cursor, statement, ())

    # Users.

    def add_user(
        self, name: str, role: Role | str, plan_id: UUID | None = None
    ) -> User:
        """Adds a user; a partner must be bound to a plan, the others must not."""
        role = _parse_role(role)
        if not isinstance(name, str) or not _USER_NAME.match(name):
            raise ValidationError(
                "name",
                f"{name!r} is not a user name: 1 to 100 letters, digits or ._@- "
                "starting with a letter or digit.",
            )
        if (role is Role.PARTNER) != (plan_id is not None):
            raise ValidationError(
                "plan_id", "A partner user needs a plan id; other roles take none."
            )
        user = User(name, role, plan_id, datetime.now(UTC))
        with self._cursor(commit=True) as cursor:
            if self._fetch(cursor, "SELECT name FROM {users} WHERE name = %s", (name,)):
                raise ConflictError(f"There is already a user {name!r}.")
            self._execute(
                cursor,
                "INSERT INTO {users} (name, role, plan_id, created_at) "
                "VALUES (%s, %s, %s, %s)",
                (
                    name,
                    role.value,
                    None if plan_id is None else str(plan_id),
                    user.created_at.isoformat(),
                ),
            )
        logger.info("Added user %s with role %s", name, role.value)
        return user

    def users(self) -> list[User]:
        """Returns every user, by name."""
        with self._cursor(commit=False) as cursor:
            rows = self._fetch(cursor, "SELECT * FROM {users} ORDER BY name", ())
        return [_user(row) for row in rows]

    def user(self, name: str) -> User:
        """Returns the user called ``name``, or raises NotFoundError."""
        with self._cursor(commit=False) as cursor:
            rows = self._fetch(cursor, "SELECT * FROM {users} WHERE name = %s", (name,))
        if not rows:
            raise NotFoundError(f"There is no user {name!r}.")
        return _user(rows[0])

    def has_users(self) -> bool:
        """Whether any user exists yet."""
        with self._cursor(commit=False) as cursor:
            return bool(self._fetch(cursor, "SELECT name FROM {users} LIMIT 1", ()))

    # Tokens.

    def create_token(self, user_name: str) -> tuple[Token, str]:
        """Creates a token for a user; returns it with its secret, shown only now."""
        self.user(user_name)
        token = Token(secrets.token_hex(6), user_name, datetime.now(UTC), None)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._cursor(commit=True) as cursor:
            self._execute(
                cursor,
                "INSERT INTO {tokens} (token_id, token_hash, user_name, created_at) "
                "VALUES (%s, %s, %s, %s)",
                (
                    token.token_id,
                    hash_secret(secret),
                    user_name,
                    token.created_at.isoformat(),
                ),
            )
        logger.info("Created token %s for user %s", token.token_id, user_name)
        return token, secret

    def tokens(self, user_name: str | None = None) -> list[Token]:
        """Returns the tokens, of one user or of all, oldest first."""
        query = "SELECT * FROM {tokens}"
        params: tuple[Any, ...] = ()
        if user_name is not None:
            query += " WHERE user_name = %s"
            params = (user_name,)
        with self._cursor(commit=False) as cursor:
            rows = self._fetch(cursor, query + " ORDER BY created_at", params)
        return [_token(row) for row in rows]

    def revoke_token(self, token_id: str) -> Token:
        """Revokes a token; revoking it again changes nothing."""
        now = datetime.now(UTC).isoformat()
        with self._cursor(commit=True) as cursor:
            rows = self._fetch(
                cursor, "SELECT * FROM {tokens} WHERE token_id = %s", (token_id,)
            )
            if not rows:
                raise NotFoundError(f"There is no token {token_id!r}.")
            self._execute(
                cursor,
                "UPDATE {tokens} SET revoked_at = %s "
                "WHERE token_id = %s AND revoked_at IS NULL",
                (now, token_id),
            )
            rows = self._fetch(
                cursor, "SELECT * FROM {tokens} WHERE token_id = %s", (token_id,)
            )
        logger.info("Revoked token %s", token_id)
        return _token(rows[0])

    def authenticate(self, secret: str) -> User | None:
        """Returns the user holding the unrevoked token ``secret``, if any."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        with self._cursor(commit=False) as cursor:
            rows = self._fetch(
                cursor,
                "SELECT u.* FROM {tokens} t JOIN {users} u ON u.name = t.user_name "
                "WHERE t.token_hash = %s AND t.revoked_at IS NULL",
                (hash_secret(secret),),
            )
        return _user(rows[0]) if rows else None

    # Helpers.

    @contextmanager
    def _cursor(self, *, commit: bool) -> Iterator[Any]:
        try:
            with self.datastore.transaction(commit=commit) as cursor:
                yield cursor
        except (OperationalError, InterfaceError) as error:
            raise StoreUnavailableError(
                f"The database cannot be reached: {error}"
            ) from error

    def _statement(self, template: str) -> str | Composable:
        if self.is_postgres:
            schema = Identifier(self.datastore.schema)  # type: ignore[union-attr]
            return SQL(template).format(
                users=SQL(".").join([schema, Identifier("soh_users")]),
                tokens=SQL(".").join([schema, Identifier("soh_tokens")]),
            )
        text = template.replace("%s", "?")
        return text.replace("{users}", "soh_users").replace("{tokens}", "soh_tokens")

    def _execute(self, cursor: Any, template: str, params: Sequence[Any]) -> None:
        cursor.execute(self._statement(template), tuple(params))

    def _fetch(self, cursor: Any, template: str, params: Sequence[Any]) -> list[Any]:
        self._execute(cursor, template, params)
        return list(cursor.fetchall())


def _parse_role(role: Role | str) -> Role:
    try:
        return role if isinstance(role, Role) else Role(role)
    except ValueError:
        accepted = ", ".join(repr(r.value) for r in Role)
        raise ValidationError("role", f"{role!r} is not one of {accepted}.") from None


def _user(row: Any) -> User:
    plan_id = row["plan_id"]
    return User(
        name=row["name"],
        role=Role(row["role"]),
        plan_id=None if plan_id is None else UUID(plan_id),
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def _token(row: Any) -> Token:
    revoked = row["revoked_at"]
    return Token(
        token_id=row["token_id"],
        user_name=row["user_name"],
        created_at=datetime.fromisoformat(row["created_at"]),
        revoked_at=None if revoked is None else datetime.fromisoformat(revoked),
    )

"""Bearer-token authentication and the role each endpoint needs.

Every request is authenticated and authorised before its arguments are read,
so an unauthenticated or forbidden request learns nothing, not even whether
a plan exists.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

from flask import current_app, g, request

from api.errors import ProblemError
from soh_es.identity import Identities, Role, User, hash_secret

F = TypeVar("F", bound=Callable[..., Any])

ACCESS_ATTRIBUTE = "soh_access"


class Access(Enum):
    """What an endpoint does, and so who may call it."""

    PUBLIC = "public"
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


ROLES_BY_ACCESS = {
    Access.READ: {Role.ADMIN, Role.EDITOR, Role.VIEWER},
    Access.WRITE: {Role.ADMIN, Role.EDITOR},
    Access.ADMIN: {Role.ADMIN},
}


def access(level: Access, *, shared: bool = False) -> Callable[[F], F]:
    """Marks a view with the access it needs.

    ``shared`` lets a partner read it, for the plan its token is bound to.
    """

    def mark(view: F) -> F:
        setattr(view, ACCESS_ATTRIBUTE, (level, shared))
        return view

    return mark


def current_user() -> User:
    """Returns the authenticated user of the request."""
    user: User = g.soh_user
    return user


def authorise_request(identities: Identities) -> None:
    """Authenticates the request and checks its role against the endpoint.

    An endpoint without an access mark (an unknown address, say) is left to
    Flask; marked endpoints other than public ones need a valid token.
    """
    view = current_app.view_functions.get(request.endpoint or "")
    level, shared = getattr(view, ACCESS_ATTRIBUTE, (None, False))
    if level is None or level is Access.PUBLIC:
        return

    user = _authenticate(identities)
    g.soh_user = user
    if user.role is Role.PARTNER:
        plan_id = (request.view_args or {}).get("plan_id")
        if level is Access.READ and shared and plan_id == user.plan_id:
            return
        raise ProblemError(
            403,
            "forbidden",
            "A partner token reads only the shared sections of its own plan.",
        )
    if user.role not in ROLES_BY_ACCESS[level]:
        raise ProblemError(
            403, "forbidden", f"The {user.role.value} role cannot do this."
        )


def _authenticate(identities: Identities) -> User:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    user = None
    if scheme.lower() == "bearer" and secret.strip():
        user = identities.authenticate(secret.strip())
    if user is None:
        raise ProblemError(
            401,
            "unauthenticated",
            "Send a valid bearer token in the Authorization header: "
            "Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Limits are counted per token; only the token's hash is kept.
    g.soh_token_key = hash_secret(secret.strip())
    return user

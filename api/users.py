"""Users and their bearer tokens, managed by admins."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import url_for

from api import schemas
from api.auth import Access, access
from api.common import Blueprint, services


def create_blueprint() -> Blueprint:
    """Returns the blueprint of users and tokens."""
    blp = Blueprint("users", __name__, description="Users, roles and tokens.")

    @blp.route("/users", methods=["GET"])
    @blp.response(200, schemas.UserListSchema)
    @access(Access.ADMIN)
    def list_users() -> Any:
        """List every user and its role."""
        users = services().identities.users()
        return {"items": [_user(asdict(user)) for user in users]}

    @blp.route("/users", methods=["POST"])
    @blp.arguments(schemas.NewUserSchema)
    @blp.response(201, schemas.UserSchema)
    @access(Access.ADMIN)
    def add_user(body: dict[str, Any]) -> Any:
        """Add a user; a partner user is bound to one plan."""
        user = services().identities.add_user(
            body["name"], body["role"], body.get("plan_id")
        )
        location = url_for(".list_users")
        return _user(asdict(user)), 201, {"Location": location}

    @blp.route("/users/<string(maxlength=100):name>/tokens", methods=["POST"])
    @blp.response(201, schemas.TokenSchema)
    @access(Access.ADMIN)
    def create_token(name: str) -> Any:
        """Create a bearer token for a user; its secret is shown only now."""
        token, secret = services().identities.create_token(name)
        return {**asdict(token), "secret": secret}, 201

    @blp.route("/tokens/<string(maxlength=100):token_id>", methods=["DELETE"])
    @blp.response(200, schemas.TokenSchema)
    @access(Access.ADMIN)
    def revoke_token(token_id: str) -> Any:
        """Revoke a token; it is refused from now on."""
        return asdict(services().identities.revoke_token(token_id))

    return blp


def _user(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "role": data["role"].value}
